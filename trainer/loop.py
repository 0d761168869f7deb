"""`therapist-trainer loop`: from the therapist's decisions to a better model, in one command.

The closed loop of issue 21, each stage the tool that does it alone: the store's
de-identified training export (`Store.export_training`, as `therapist-app store
export-training`), preference pairs per suggestion round (`trainer.preferences`), DPO plus
an NLL term on the chosen reply from the current model (`trainer.dpo`), GGUF export with
the parity and stop checks (`trainer.export.model`), and registration in the same store
(`therapist-app models add`, which checks the manifest and the clinic policy again).

Everything lands in one loop folder: `export.jsonl`, `pairs.jsonl`, the DPO run folder
`dpo/`, `gguf/` and `loop.json`, the record of every stage's counts and files (ids,
counts and paths, never text), written after each stage so a failed loop shows how far it
got. A failing stage is named in the error and the exit code is non-zero.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterator

from trainer.config import ConfigError, default_of, setting
from trainer.dpo import DPOSettings

STAGES = ("export", "pairs", "dpo", "gguf", "register")


class LoopFailed(RuntimeError):
    """A stage of the loop failed; the message names it and what went wrong."""

    def __init__(self, stage: str, problem: BaseException | str) -> None:
        super().__init__(f"the {stage} stage failed: {problem}")
        self.stage = stage
        self.exit_code = getattr(problem, "exit_code", 2)


@dataclass(frozen=True)
class LoopSettings(DPOSettings):
    """DPO's settings (model, LoRA, steps, beta, nll_weight...) plus where the decisions come
    from and where the model goes. The loop folder is output_dir/run_name."""

    output_dir: str = default_of(DPOSettings, "output_dir", "runs/loop")
    store: str = setting(
        "",
        "the app's encrypted store to export the decisions from and register the model in; "
        "empty means the app's default store",
    )
    passphrase_fd: int = setting(
        -1, "read the store's passphrase from file descriptor N (-1: prompt for it)", at_least=-1
    )
    system_policy: str = setting("", "clinic system policy file (empty: the platform's site config)")
    user_policy: str = setting("", "clinic user policy file (empty: the platform's user config)")
    license: str = setting("apache-2.0", "licence of the weights, written into the GGUF and its manifest")
    quantisation: str = setting(
        "q8_0", "GGUF type to export and register", ("f32", "f16", "q8_0", "q6_k", "q5_k_m", "q4_k_m", "q4_0")
    )
    min_top1: float = setting(
        0.99, "least next-token top-1 agreement of an f32/f16 export with the trained model", above=0, at_most=1
    )
    allow_no_stop: bool = setting(
        False, "do not fail the export when no short sampled reply reaches <|im_end|> (for untrained test models)"
    )
    register: bool = setting(True, "register the exported GGUF in the store (`therapist-app models add`)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.model:
            raise ConfigError(
                "no model to improve: pass --model, the current default as a Hugging Face folder "
                "(runs/default/sft/merged after scripts/build_default_model.sh, or an earlier loop's "
                "dpo/merged)"
            )

    def check_sources(self) -> None:
        """The loop exports its own decisions: `app_export` is optional here (a file given
        skips the export stage)."""


@dataclass
class LoopRecord:
    """What each stage did, written to loop.json after every stage."""

    folder: Path
    stages: dict = field(default_factory=dict)
    failed: str | None = None

    def save(self) -> None:
        body = {"stages": self.stages, "failed": self.failed}
        (self.folder / "loop.json").write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[dict]:
        """Run one stage: its record is filled by the caller; an expected failure becomes
        LoopFailed naming the stage, recorded before it propagates."""
        from therapist_app.core.model_file import ModelFileError
        from therapist_app.core.policy import PolicyError
        from therapist_app.core.store import StoreError
        from trainer.data.records import DataError
        from trainer.export.errors import ExportError
        from trainer.llama_cpp_source import ConverterMissing
        from trainer.models import ModelError
        from trainer.run import TrainError

        entry: dict = {}
        started = time.perf_counter()
        expected = (
            ConfigError,
            DataError,
            ModelError,
            TrainError,
            ExportError,
            ConverterMissing,
            StoreError,
            PolicyError,
            ModelFileError,
            ValueError,
            OSError,
        )
        try:
            yield entry
        except LoopFailed:
            self.failed = name
            raise
        except expected as problem:
            self.failed = name
            raise LoopFailed(name, problem) from problem
        finally:
            entry["seconds"] = round(time.perf_counter() - started, 2)
            self.stages[name] = entry
            self.save()


@dataclass(frozen=True)
class LoopResult:
    folder: Path
    stages: dict
    gguf: Path | None


def run_loop(settings: LoopSettings, passphrase: str | None = None) -> LoopResult:
    """Export, pair, DPO, GGUF, register; `passphrase` None reads it from `passphrase_fd`
    (or a prompt) when a stage needs the store."""
    folder = Path(settings.output_dir) / (settings.run_name or time.strftime("%Y%m%d-%H%M%S", time.gmtime()))
    if (folder / "loop.json").exists():
        raise ConfigError(f"{folder} already holds a loop: choose another --run-name")
    folder.mkdir(parents=True, exist_ok=True)
    record = LoopRecord(folder)
    store_path = Path(settings.store) if settings.store else _default_store()
    needs_store = not settings.app_export or settings.register
    if needs_store and passphrase is None:
        from therapist_app.cli.store import PassphraseSource

        fd = None if settings.passphrase_fd < 0 else settings.passphrase_fd
        passphrase = PassphraseSource(fd).read(f"Passphrase for {store_path.name}: ")

    export = Path(settings.app_export) if settings.app_export else folder / "export.jsonl"
    with record.stage("export") as entry:
        if settings.app_export:
            entry["skipped"] = "an export file was given"
        else:
            entry["rows"] = _export(store_path, passphrase, export, settings)
        entry["file"] = str(export)
        if entry.get("rows") == 0:
            raise LoopFailed("export", f"{store_path} holds no decisions yet: nothing to learn from")

    with record.stage("pairs") as entry:
        from trainer.preferences import pairs_from_app_export, write_pairs

        pairs, stats = pairs_from_app_export(export)
        entry.update(asdict(stats), file=str(folder / "pairs.jsonl"))
        write_pairs(pairs, folder / "pairs.jsonl")
        if not pairs and not settings.simulate:
            raise LoopFailed(
                "pairs",
                f"{sum(stats.decisions.values())} decisions in {stats.rounds} rounds give no "
                "pair: no round has both a reply the therapist used and a draft they turned down",
            )

    with record.stage("dpo") as entry:
        from trainer.dpo import run_dpo

        dpo = replace(settings, app_export=str(export), output_dir=str(folder), run_name="dpo")
        result = run_dpo(DPOSettings(**{f: getattr(dpo, f) for f in DPOSettings.__dataclass_fields__}))
        entry.update(
            run_dir=str(result.run_dir),
            global_step=result.global_step,
            app_pairs=result.app_pairs,
            simulated_pairs=result.simulated_pairs,
            logprob_margin_before=round(result.margin_before, 4),
            logprob_margin_after=round(result.margin_after, 4),
        )

    with record.stage("gguf") as entry:
        from trainer.export.model import ExportSettings, export_model
        from trainer.export.verify import ParityThresholds

        exported = export_model(
            ExportSettings(
                source=result.run_dir,
                output_dir=folder / "gguf",
                license=settings.license,
                quantisations=(settings.quantisation,),
                name=f"loop-{folder.name}",
                threads=settings.num_threads or 2,
                thresholds=ParityThresholds(min_top1=settings.min_top1, require_stop=not settings.allow_no_stop),
            )
        ).file(settings.quantisation)
        v = exported.manifest.verification
        entry.update(
            file=str(exported.path),
            manifest=str(exported.manifest_path),
            sha256=exported.manifest.sha256,
            size_bytes=exported.manifest.size_bytes,
            top1_agreement=v.top1_agreement,
            positions_compared=v.positions_compared,
            generation_stopped=v.generation_stopped,
        )

    with record.stage("register") as entry:
        if settings.register:
            entry.update(store=str(store_path), **_register(exported.path, store_path, passphrase, settings))
        else:
            entry["skipped"] = "--no-register"
    return LoopResult(folder, record.stages, exported.path)


def _default_store() -> Path:
    from therapist_app.cli.store import default_db_path

    return default_db_path()


def _policy(settings: LoopSettings):
    from therapist_app.core.policy import load_policy

    return load_policy(
        Path(settings.system_policy) if settings.system_policy else None,
        Path(settings.user_policy) if settings.user_policy else None,
    )


def _export(store_path: Path, passphrase: str | None, destination: Path, settings: LoopSettings) -> int:
    from therapist_app.core.store import Store

    with Store.open(store_path, passphrase) as store:
        return store.export_training(destination, _policy(settings))


def _register(gguf: Path, store_path: Path, passphrase: str | None, settings: LoopSettings) -> dict:
    """`therapist-app models add` itself (manifest, policy and store checks as the app
    does them), given the passphrase on a pipe as `--passphrase-fd` expects."""
    from therapist_app.cli import main as app_main
    from therapist_app.core.store import Store

    argv = ["models", "add", str(gguf), "--db", str(store_path)]
    for flag, value in (("--system-policy", settings.system_policy), ("--user-policy", settings.user_policy)):
        argv += [flag, value] if value else []
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, ((passphrase or "") + "\n").encode("utf-8"))
        os.close(write_end)
        code = app_main([*argv, "--passphrase-fd", str(read_end)])
    finally:
        os.close(read_end)
    if code != 0:
        raise LoopFailed("register", f"`therapist-app models add` exited with {code} (its message is above)")
    with Store.open(store_path, passphrase) as store:
        model = next(m for m in store.models() if Path(m.path) == gguf.resolve())
    return {"model_id": model.id, "approved": model.approved}
