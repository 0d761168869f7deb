"""(slow) The imported SmolLM2: one LoRA update -> export f16 and q8_0 with every gate on
(f16 parity, template, stop token, a generation that stops) -> registered -> the app's
engine loads the q8_0 file and makes a suggestion that ends at the end of the reply."""

from __future__ import annotations

import pytest

pytest.importorskip("peft")
pytest.importorskip("trl")

from therapist_app.core.dialogue_format import EmotionReading, SuggestionRequest  # noqa: E402
from therapist_app.core.engine import EngineConfig, SuggestionEngine  # noqa: E402
from therapist_app.core.model_manifest import verify_model  # noqa: E402
from trainer.export.model import ExportSettings, export_model  # noqa: E402
from trainer.sft import SFTSettings, run_sft  # noqa: E402


@pytest.mark.slow
def test_smollm2_trains_exports_and_suggests(smollm2, tmp_path):
    run_sft(
        SFTSettings(
            model=str(smollm2),
            output_dir=str(tmp_path / "runs"),
            run_name="smol",
            max_steps=1,
            batch_size=1,
            max_length=256,
            eval_steps=0,
            save_steps=100,
            logging_steps=1,
            num_threads=2,
            merge_lora=False,
            learning_rate=1e-5,
            warmup_ratio=0.0,
        )
    )
    result = export_model(
        ExportSettings(
            source=tmp_path / "runs" / "smol",
            output_dir=tmp_path / "out",
            license="apache-2.0",
            quantisations=("f16", "q8_0"),
        )
    )
    f16 = result.file("f16").manifest.verification
    assert f16.passed and f16.top1_agreement >= 0.99 and f16.generation_stopped
    q8 = result.file("q8_0").manifest.verification
    assert q8.passed and q8.template_matches and q8.stop_token_is_eog
    assert q8.top1_agreement >= 0.9  # reported; q8_0 rounding flips only near-ties

    verified = verify_model(result.file("q8_0").path)
    config = EngineConfig(model_path=verified.model_path, n_ctx=1024, n_threads=2, max_tokens=160, seed=7)
    with SuggestionEngine(config) as engine:
        assert engine.info.template_matches is True
        suggestions = engine.complete(
            SuggestionRequest(
                "I can't stop worrying about my exams next week.", emotion=EmotionReading("anxiety", 0.8)
            ),
            n=3,
        ).suggestions
    assert all(s.text for s in suggestions)
    assert any(s.finish_reason == "stop" for s in suggestions)
