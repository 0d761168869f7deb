"""GRPO on a tiny model: a few steps finish, log each reward component, and raise the
targeted reward; the trajectory-cache variant runs, and its advantages (which override
TRL internals) match hand-computed ones; settings are checked."""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict, deque
from pathlib import Path
from types import SimpleNamespace

import pytest

from trainer.cli import main
from trainer.config import ConfigError

pytest.importorskip("trl")

from trainer.grpo import GRPOSettings, cached_advantages, prompt_rows, trainer_class  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "assets" / "seed_corpus.jsonl"


def build_small_vocab_model(folder: Path, words: int = 40) -> Path:
    """A 2-layer, 32-wide random Llama whose vocabulary is the seed replies' most common
    words (everything else is <unk>): sampled replies then share words with the references
    often enough for a few GRPO steps to show a learning signal."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from trainer.models import CHATML_TEMPLATE
    from trainer.rewards.text import words as split

    counts = Counter(
        w for line in SEED.read_text(encoding="utf-8").splitlines() for w in split(json.loads(line)["reply"])
    )
    tokens = ["<unk>", "<|im_start|>", "<|im_end|>", "."] + [w for w, _ in counts.most_common(words)]
    backend = Tokenizer(models.WordLevel({t: i for i, t in enumerate(tokens)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="<unk>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
        bos_token="<|im_start|>",
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=1024,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        tie_word_embeddings=True,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def small_model(tmp_path_factory) -> Path:
    return build_small_vocab_model(tmp_path_factory.mktemp("small-vocab"))


def sampled_reward(model_dir: Path, count: int = 16, samples: int = 8) -> float:
    """Mean reference agreement of sampled replies to the first seed prompts (fixed seed)."""
    from trainer.data.records import read_jsonl
    from trainer.generation import HFGenerator, SamplingSettings
    from trainer.rewards.lexical import reference_agreement

    examples = list(read_jsonl(SEED).examples)[:count]
    generator = HFGenerator.load(model_dir, SamplingSettings(max_new_tokens=6, temperature=1.0, seed=1), batch_size=32)
    requests = [e.request() for e in examples for _ in range(samples)]
    scores = reference_agreement(generator(requests), reference=[e.reply for e in examples for _ in range(samples)])
    return sum(scores) / len(scores)


QUICK = [
    "--data",
    str(SEED),
    "--finetune",
    "full",
    "--batch-size",
    "2",
    "--num-generations",
    "8",
    "--max-completion-length",
    "6",
    "--max-length",
    "384",
    "--beta",
    "0",
    "--num-threads",
    "1",
    "--emotion-classifier",
    "none",
    "--learning-rate",
    "0.02",
]


def test_grpo_raises_the_targeted_reward(small_model, tmp_path, capsys):
    before = sampled_reward(small_model)
    code = main(
        [
            "grpo",
            "--model",
            str(small_model),
            "--output-dir",
            str(tmp_path),
            "--run-name",
            "r",
            "--rewards",
            "reference_agreement",
            "--reward-weights",
            "1",
            "--max-steps",
            "30",
            *QUICK,
        ]
    )
    assert code == 0, capsys.readouterr().err
    run = tmp_path / "r"
    after = sampled_reward(run / "final")
    assert after > before * 1.3, (before, after)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert sum("rewards/reference_agreement/mean" in r for r in rows) == 30
    assert (run / "reward_curves.png").stat().st_size > 1000
    info = json.loads((run / "run.json").read_text())["runs"][-1]
    assert info["rewards"] == ["reference_agreement"] and info["results"]["global_step"] == 30


def test_grpo_trajectory_cache_and_every_component_logged(small_model, tmp_path, capsys):
    rewards = "strategy_adherence,reference_agreement,safety,format_compliance,bilateral_length,repetition_penalty"
    code = main(
        [
            "grpo",
            "--model",
            str(small_model),
            "--output-dir",
            str(tmp_path),
            "--run-name",
            "c",
            "--rewards",
            rewards,
            "--reward-weights",
            "1,1,2,0.5,0.25,1",
            "--max-steps",
            "3",
            "--trajectory-cache",
            "2",
            "--finetune",
            "lora",
            *QUICK[4:],
        ]
    )
    assert code == 0, capsys.readouterr().err
    rows = [json.loads(line) for line in (tmp_path / "c" / "metrics.jsonl").read_text().splitlines()]
    logged = {k for r in rows for k in r}
    assert {f"rewards/{n}/mean" for n in rewards.split(",")} <= logged
    assert {"trajectory_cache/mean", "trajectory_cache/std"} <= logged
    assert (tmp_path / "c" / "merged" / "config.json").is_file()


def test_grpo_settings_are_checked(tmp_path, capsys):
    with pytest.raises(ConfigError, match="num_generations"):
        GRPOSettings(num_generations=1)
    assert main(["grpo", "--model", str(tmp_path / "nothing"), "--max-steps", "1"]) == 2
    assert "error:" in capsys.readouterr().err


def test_prompt_rows_carry_the_reward_columns():
    from trainer.data.records import read_jsonl

    example = next(iter(read_jsonl(SEED).examples))
    (row,) = prompt_rows([example], lambda text: len(text.split()), 10_000)
    assert row["prompt"].endswith("<|im_start|>assistant\n")
    assert (row["client_words"], row["reference"], row["emotion"], row["strategy"]) == (
        example.client_words,
        example.reply,
        example.emotion,
        example.strategy,
    )
    assert prompt_rows([example], lambda text: len(text.split()), 5) == []


def test_trajectory_cache_advantages_match_a_hand_computed_case():
    import torch

    nan = math.nan
    cache: deque = deque(maxlen=2)
    weights = torch.tensor([1.0, 2.0])
    # One group of four: weighted rewards 0, 1, 2 (a NaN reward is left out of the sum),
    # and a completion no reward applied to (left out of the statistics, advantage 0).
    # Mean 1, population std sqrt(2/3).
    first = torch.tensor([[0.0, 0.0], [1.0, nan], [0.0, 1.0], [nan, nan]])
    advantages, mean, std = cached_advantages(first, weights, cache)
    assert (mean.item(), std.item()) == pytest.approx((1.0, math.sqrt(2 / 3)))
    assert advantages.tolist() == pytest.approx([-1.2245949, 0.0, 1.2245949, 0.0], rel=1e-5)
    # A group that scores alike (TRL's group statistics: all advantages 0) still learns it
    # beat recent batches: rewards 0, 1, 2, 3, 3, 3, 3 have mean 15/7 and std 1.1248583.
    advantages, mean, std = cached_advantages(torch.tensor([[3.0, 0.0]] * 4), weights, cache)
    assert (mean.item(), std.item()) == pytest.approx((15 / 7, 1.1248583), rel=1e-5)
    assert advantages.tolist() == pytest.approx([0.7619330] * 4, rel=1e-5)
    # The cache keeps two batches: the first one leaves, so the mean is (4 x 3 + 4 x 1) / 8.
    advantages, mean, std = cached_advantages(torch.tensor([[1.0, 0.0]] * 4), weights, cache)
    assert (mean.item(), std.item()) == pytest.approx((2.0, 1.0))
    assert advantages.tolist() == pytest.approx([-1 / 1.0001] * 4, rel=1e-5)


def test_trajectory_cache_trainer_gives_each_process_its_slice(monkeypatch):
    """The subclass replaces TRL's advantages with the cached ones, this process's share
    of the rewards TRL gathered from every process."""
    import torch
    from trl import GRPOTrainer

    cls = trainer_class(2)
    monkeypatch.setattr(
        GRPOTrainer, "_generate_and_score_completions", lambda self, inputs: {"advantages": torch.zeros(2)}
    )
    trainer = cls.__new__(cls)  # the override's state, without building a model
    trainer._reward_cache, trainer._last_rewards_per_func = deque(maxlen=2), torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    trainer.reward_weights, trainer.model = torch.tensor([1.0]), SimpleNamespace(training=True)
    trainer.accelerator, trainer._metrics = SimpleNamespace(process_index=1), {"train": defaultdict(list)}
    output = trainer._generate_and_score_completions([])
    # Mean 1.5, std sqrt(1.25): the second process holds the rewards 2 and 3.
    assert output["advantages"].tolist() == pytest.approx([0.4471736, 1.3415208], rel=1e-5)
    assert trainer._metrics["train"]["trajectory_cache/mean"] == [1.5]
    assert trainer_class(0) is GRPOTrainer


def test_trl_never_logs_the_text_of_an_unscored_completion(caplog):
    import logging

    import trainer.grpo  # noqa: F401  (installs the filter)

    trl_log = logging.getLogger("trl.trainer.grpo_trainer")
    with caplog.at_level(logging.WARNING, logger="trl.trainer.grpo_trainer"):
        trl_log.warning(
            "All reward functions returned None for the following kwargs:\n"
            "{'prompt': 'I keep thinking about ending it', 'completion': 'That sounds hard.'}\n"
            "Please ensure that at least one reward function returns a valid reward."
        )
    assert "returned None for one completion" in caplog.text
    assert "ending it" not in caplog.text and "sounds hard" not in caplog.text
