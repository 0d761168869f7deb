"""The run layer: what every training command (SFT, GRPO, DPO) shares, in one place.

In the spirit of TRL's base config and nanochat's `common.py`: the settings every run
has (`TrainSettings`) and the data they split (`DataSettings`) are declared once, with
their bounds; `prepare_run` names the run folder once, on the main process, and shares
the name with every rank, then settles the device, precision and threads; the one
metrics callback (`trainer.run_metrics`) measures throughput the same way for all;
`train` turns out-of-memory into advice, `save_outputs` writes `final/` and `merged/`,
`Run.finish` records the results; `command` turns a command's expected failures into
`error: ...` and an exit code. A command module keeps only what is its own: its data,
its TRL trainer and its results.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from therapist_app.core.assets import asset_path
from therapist_app.core.dialogue_format import Example
from trainer.config import ConfigError, Settings, default_of, setting
from trainer.data.records import DataError, read_jsonl
from trainer.data.split import SPLITS, SplitFractions, split_examples
from trainer.models import ModelError
from trainer.run_folder import RunFolder

if TYPE_CHECKING:
    from trainer.run_metrics import MetricsCallback


class TrainError(RuntimeError):
    """A run that cannot start or had to stop; the message says what to change."""


# ---- settings ---------------------------------------------------------------------


@dataclass(frozen=True)
class DataSettings(Settings):
    """Where examples come from and how one file is split (SFT, GRPO and eval split alike,
    so a seed and fractions name the same held-out conversations everywhere)."""

    data: str = setting(
        "",
        "normalised JSONL (split here, conversations kept whole) or a folder of train/validation/test.jsonl "
        "from `therapist-trainer split` or `corpus`; empty means the shipped seed corpus",
    )
    validation_fraction: float = setting(
        0.1, "share of conversations held out for validation when data is one file", above=0, below=1
    )
    test_fraction: float = setting(
        0.1, "share of conversations held out for testing when data is one file", at_least=0, below=1
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.validation_fraction + self.test_fraction >= 1:
            raise ConfigError("validation_fraction + test_fraction must be below 1: some data must train")

    def read_splits(self, names: Sequence[str], seed: int) -> tuple[dict[str, list[Example]], list[Path]]:
        """The named splits (train, validation, test or all), reply-bearing examples only,
        and the files they came from. Raises DataError for a missing or empty split."""
        source = Path(self.data) if self.data else asset_path("seed_corpus.jsonl")
        if source.is_dir():
            wanted = SPLITS if "all" in names else names
            files = [source / f"{name}.jsonl" for name in wanted]
            if "all" in names:
                files = [f for f in files if f.is_file()]
            missing = [f.name for f in files if not f.is_file()]
            if missing or not files:
                raise DataError(
                    f"{source} lacks {', '.join(missing) or 'split files'}: make them with "
                    "`therapist-trainer split` or `corpus`"
                )
            parts = {f.stem: _read_split(f) for f in files}
            parts["all"] = [e for f in files for e in parts[f.stem]]
        elif source.is_file():
            files = [source]
            every = list(read_jsonl(source).examples)
            fractions = SplitFractions(
                1 - self.validation_fraction - self.test_fraction, self.validation_fraction, self.test_fraction
            )
            parts = {**split_examples(every, fractions, seed), "all": every}
        else:
            raise DataError(f"no such data file or folder: {source}")
        chosen = {name: [e for e in parts[name] if e.reply] for name in names}
        for name, examples in chosen.items():
            if not examples:
                raise DataError(
                    f"the {name} split is empty (no examples with a reply in {source}): add data, or for one "
                    "file raise validation_fraction or test_fraction so at least one conversation lands in each split"
                )
        return chosen, files


def _read_split(path: Path) -> list[Example]:
    try:
        return list(read_jsonl(path).examples)
    except DataError as problem:
        if problem.errors:
            raise
        raise DataError(f"the {path.stem} split is empty: {path} has no examples") from None


@dataclass(frozen=True)
class TrainSettings(Settings):
    """The settings every training run has. A command's settings subclass this and change
    a default with `config.default_of`, so each field's help and bounds live here once."""

    model: str = setting(
        "",
        "the model to train: a Hugging Face folder (e.g. from `import-gguf`, or an earlier "
        "run's merged/) or a hub id when online",
    )
    output_dir: str = setting("runs", "folder that holds one sub-folder per run")
    run_name: str = setting(
        "", "name of this run's folder; empty means a timestamp (the main process's, shared with every process)"
    )
    finetune: str = setting("lora", "lora (adapters through peft) or full (every weight)", ("lora", "full"))
    lora_r: int = setting(16, "LoRA rank", at_least=1)
    lora_alpha: int = setting(32, "LoRA scaling numerator (alpha / r scales the update)", at_least=1)
    lora_dropout: float = setting(0.05, "dropout on the LoRA branch", at_least=0, below=1)
    lora_target_modules: str = setting("all-linear", "comma-separated module names to adapt, or all-linear")
    lora_top_layers: int = setting(
        0,
        "adapt only the top N transformer layers (0: all); the backward pass then "
        "stops below them, which speeds up CPU training",
        at_least=0,
    )
    learning_rate: float = setting(2e-4, "peak learning rate", above=0, below=1)
    lr_scheduler: str = setting("cosine", "learning-rate schedule (a transformers scheduler name)")
    warmup_ratio: float = setting(
        0.03, "fraction of the updates spent warming the learning rate up", at_least=0, below=1
    )
    weight_decay: float = setting(0.0, "AdamW weight decay", at_least=0, below=1)
    batch_size: int = setting(8, "examples per device per step", at_least=1)
    grad_accum: int = setting(1, "steps whose gradients add up before an optimiser update", at_least=1)
    epochs: float = setting(1.0, "passes over the training data (ignored when max_steps > 0)", at_least=0)
    max_steps: int = setting(-1, "optimiser updates to run; -1 means use epochs", at_least=-1)
    max_length: int = setting(512, "longest prompt plus reply in tokens", at_least=1)
    seed: int = setting(0, "seed for the split, shuffling, sampling and initialisation")
    device: str = setting("auto", "auto (CUDA when present), cpu or cuda", ("auto", "cpu", "cuda"))
    bf16: str = setting(
        "auto", "bfloat16 mixed precision: auto (where the GPU supports it), on or off", ("auto", "on", "off")
    )
    gradient_checkpointing: bool = setting(False, "recompute activations in the backward pass to save memory")
    logging_steps: int = setting(5, "log loss, learning rate and tokens/s every N updates", at_least=1)
    save_steps: int = setting(100, "save a checkpoint every N updates (and at the end)", at_least=1)
    save_total_limit: int = setting(2, "checkpoints kept in the run folder", at_least=1)
    merge_lora: bool = setting(True, "also save the LoRA-merged full model (what GGUF export needs)")
    resume: str = setting(
        "",
        "continue a run: latest (the newest checkpoint in the run folder), auto (latest if "
        "there is one, else start) or a checkpoint folder",
    )
    num_threads: int = setting(
        0, "CPU threads for torch; 0 means the available cores, shared among the processes on this machine", at_least=0
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_steps == 0:
            raise ConfigError("max_steps must be -1 (use epochs) or at least 1")
        if self.max_steps == -1 and self.epochs <= 0:
            raise ConfigError("epochs must be above 0 when max_steps is -1")


@dataclass(frozen=True)
class RLSettings(TrainSettings):
    """GRPO's and DPO's defaults: RL moves a trained policy a little at a time."""

    learning_rate: float = default_of(TrainSettings, "learning_rate", 5e-6)
    lr_scheduler: str = default_of(TrainSettings, "lr_scheduler", "linear")
    warmup_ratio: float = default_of(TrainSettings, "warmup_ratio", 0.0)
    batch_size: int = default_of(TrainSettings, "batch_size", 4)
    logging_steps: int = default_of(TrainSettings, "logging_steps", 1)


# ---- the run ----------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One process's view of a run: the shared folder, whether this process records, and
    the hardware it trains on."""

    dir: Path
    is_main: bool
    world_size: int
    use_cpu: bool
    bf16: bool
    threads: int
    resume_from: str | None
    metrics: MetricsCallback
    """The run's one metrics callback (it writes only on the main process)."""

    @property
    def folder(self) -> RunFolder:
        return RunFolder(self.dir)

    @property
    def device(self) -> str:
        import torch

        return "cpu" if self.use_cpu else torch.cuda.get_device_name()

    def start(self, settings: TrainSettings, data_sha256: str, **record) -> None:
        """Record the settings (with the folder's name as run_name) and provenance."""
        if self.is_main:
            self.folder.start(
                replace(settings, run_name=self.dir.name),
                data_sha256,
                {
                    "device": self.device,
                    "world_size": self.world_size,
                    "torch_threads": self.threads,
                    "bf16": self.bf16,
                    "resumed_from": self.resume_from,
                    **record,
                },
            )

    def training_arguments(self, settings: TrainSettings) -> dict:
        """The `TrainingArguments` fields every TRL config here takes from the settings."""
        return dict(
            output_dir=str(self.dir),
            gradient_accumulation_steps=settings.grad_accum,
            learning_rate=settings.learning_rate,
            lr_scheduler_type=settings.lr_scheduler,
            warmup_steps=settings.warmup_ratio,  # below 1: a fraction of the updates
            weight_decay=settings.weight_decay,
            num_train_epochs=settings.epochs,
            max_steps=settings.max_steps,
            seed=settings.seed,
            use_cpu=self.use_cpu,
            bf16=self.bf16,
            gradient_checkpointing=settings.gradient_checkpointing,
            logging_steps=settings.logging_steps,
            logging_first_step=True,
            save_strategy="steps",
            save_steps=settings.save_steps,
            save_total_limit=settings.save_total_limit,
            report_to="none",
            dataloader_pin_memory=not self.use_cpu,
            # Every trainable weight takes part in each step; searching for unused ones
            # costs an extra graph traversal per step under DDP.
            ddp_find_unused_parameters=False,
        )

    def trainer_inputs(self, settings: TrainSettings, model, tokenizer, callbacks: Sequence = ()) -> dict:
        """What every TRL trainer here is given besides its config and data: the model, the
        tokenizer, the LoRA config and the callbacks (the run's metrics first)."""
        return dict(
            model=model,
            processing_class=tokenizer,
            peft_config=lora_config(settings, model),
            callbacks=[self.metrics, *callbacks],
        )

    def finish(self, trainer, stats: "TrainStats", **results) -> None:
        """Plot the curves and record the results (main process only)."""
        if not self.is_main:
            return
        self.folder.plot_loss()
        self.folder.plot_rewards()
        self.folder.finish(
            {
                "global_step": trainer.state.global_step,
                "train_seconds": round(stats.seconds, 2),
                "tokens_per_second": round(stats.tokens_per_second, 1),
                "peak_gpu_memory_gb": None if stats.peak_memory_gb is None else round(stats.peak_memory_gb, 2),
                **results,
            }
        )


def prepare_run(settings: TrainSettings) -> Run:
    """Threads, device and precision for this process; the run folder's name, chosen once
    on the main process and shared with every rank; the checkpoint to resume, if any."""
    from trainer.run_metrics import MetricsCallback

    threads = set_threads(settings.num_threads)
    use_cpu, bf16 = resolve_device(settings)
    run_dir = Path(settings.output_dir) / _run_name(settings, use_cpu)
    is_main = int(os.environ.get("RANK", "0")) == 0
    return Run(
        dir=run_dir,
        is_main=is_main,
        world_size=world_size(),
        use_cpu=use_cpu,
        bf16=bf16,
        threads=threads,
        resume_from=_checkpoint_to_resume(settings, run_dir),
        metrics=MetricsCallback(RunFolder(run_dir) if is_main else None),
    )


def world_size() -> int:
    return max(1, int(os.environ.get("WORLD_SIZE", "1")))


def _local_world_size() -> int:
    return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1"))))


def set_threads(requested: int) -> int:
    """torch CPU threads: as asked, else the cores this process may use, shared among local ranks."""
    import torch

    if requested:
        threads = requested
    else:
        available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        threads = max(1, available // _local_world_size())
    torch.set_num_threads(threads)
    return threads


def resolve_device(settings: TrainSettings) -> tuple[bool, bool]:
    """(use_cpu, bf16) for these settings on this machine."""
    import torch

    cuda = torch.cuda.is_available()
    if settings.device == "cuda" and not cuda:
        raise TrainError(
            f"CUDA was requested but is not available (torch {torch.__version__}, built for "
            f"CUDA {torch.version.cuda or 'none'}): install a CUDA build of torch (docs/training.md) "
            "or pass --device cpu"
        )
    use_cpu = settings.device == "cpu" or not cuda
    if settings.bf16 == "on":
        if not use_cpu and not torch.cuda.is_bf16_supported():
            raise TrainError("bf16 was requested but this GPU does not support it: pass --bf16 off")
        return use_cpu, True
    # On CPU, float32 is the default: bf16 autocast pays off only on CPUs with bf16
    # matrix units, so it is opt-in there (--bf16 on).
    return use_cpu, settings.bf16 == "auto" and not use_cpu and torch.cuda.is_bf16_supported()


def _run_name(settings: TrainSettings, use_cpu: bool) -> str:
    if settings.run_name:
        return settings.run_name
    name = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    if world_size() > 1:
        # Every rank must write to the same folder, and ranks start seconds apart:
        # the main process's clock decides, broadcast over the process group the
        # trainer then reuses.
        from accelerate import PartialState
        from accelerate.utils import broadcast_object_list

        PartialState(cpu=use_cpu)
        name = broadcast_object_list([name])[0]
    return name


def _checkpoint_to_resume(settings: TrainSettings, run_dir: Path) -> str | None:
    if not settings.resume:
        return None
    if settings.resume in ("latest", "auto"):
        if not settings.run_name:
            raise TrainError(f"--resume {settings.resume} needs --run-name: the run whose folder holds the checkpoints")
        checkpoints = sorted(run_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
        if not checkpoints:
            if settings.resume == "auto":
                return None
            raise TrainError(f"no checkpoint to resume in {run_dir}")
        return str(checkpoints[-1])
    if not Path(settings.resume, "trainer_state.json").is_file():
        raise TrainError(f"{settings.resume} is not a checkpoint folder (no trainer_state.json)")
    return settings.resume


def lora_config(settings: TrainSettings, model):
    """peft's LoraConfig for these settings (None for full fine-tuning)."""
    if settings.finetune != "lora":
        return None
    import torch
    from peft import LoraConfig

    targets = settings.lora_target_modules
    top = {}
    if settings.lora_top_layers:
        layers = model.config.num_hidden_layers
        if settings.lora_top_layers > layers:
            raise TrainError(f"lora_top_layers is {settings.lora_top_layers}; the model has {layers} layers")
        top = {
            "layers_to_transform": list(range(layers - settings.lora_top_layers, layers)),
            "layers_pattern": "layers",
        }
        if targets == "all-linear":  # peft needs the names to pick layers
            targets = ",".join(
                sorted(
                    {
                        name.rsplit(".", 1)[-1]
                        for name, module in model.named_modules()
                        if isinstance(module, torch.nn.Linear) and ".layers." in name
                    }
                )
            )
    return LoraConfig(
        r=settings.lora_r,
        lora_alpha=settings.lora_alpha,
        lora_dropout=settings.lora_dropout,
        target_modules=targets if targets == "all-linear" else [t.strip() for t in targets.split(",")],
        task_type="CAUSAL_LM",
        **top,
    )


@dataclass(frozen=True)
class TrainStats:
    seconds: float
    tokens_per_second: float
    """Non-padding tokens (all processes) per second of training, as `run_metrics` measures them."""
    peak_memory_gb: float | None
    """Peak GPU memory of this process (None on CPU)."""


def train(trainer, settings: TrainSettings, run: Run) -> TrainStats:
    """`trainer.train()` (resuming where the run says), timed; out of memory becomes
    a TrainError naming the settings to lower."""
    import torch

    if not run.use_cpu:
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    try:
        trainer.train(resume_from_checkpoint=run.resume_from)
    except torch.OutOfMemoryError:
        raise TrainError(oom_advice(settings)) from None
    except RuntimeError as failure:
        if "out of memory" in str(failure).lower() or "can't allocate memory" in str(failure).lower():
            raise TrainError(oom_advice(settings)) from None
        raise
    peak = None if run.use_cpu else torch.cuda.max_memory_allocated() / 2**30
    return TrainStats(time.perf_counter() - started, run.metrics.tokens_per_second(), peak)


def oom_advice(settings: TrainSettings) -> str:
    advice = [
        f"--batch-size {max(1, settings.batch_size // 2)} --grad-accum {settings.grad_accum * 2}",
        f"--max-length {max(64, settings.max_length // 2)}",
    ]
    if not settings.gradient_checkpointing:
        advice.append("--gradient-checkpointing")
    if settings.finetune == "full":
        advice.append("--finetune lora")
    if settings.bf16 != "on":
        advice.append("--bf16 on (on a GPU that supports it)")
    return "out of memory: lower the memory use with " + ", ".join(advice)


def save_outputs(trainer, tokenizer, run: Run, settings: TrainSettings) -> tuple[Path, Path | None]:
    """`final/` (adapter or model, and the tokenizer) and, for LoRA with merge_lora,
    `merged/` (the full model GGUF export takes); returns both folders (merged is None
    where it was not written, and on every process but the main one)."""
    final_dir, merged_dir = run.dir / "final", None
    trainer.save_model(str(final_dir))  # on every rank: FSDP and DeepSpeed gather the weights together
    if run.is_main:
        tokenizer.save_pretrained(final_dir)
        if settings.finetune == "lora" and settings.merge_lora:
            merged_dir = run.dir / "merged"
            merged = trainer.accelerator.unwrap_model(trainer.model).merge_and_unload()
            merged.save_pretrained(merged_dir, safe_serialization=True)
            tokenizer.save_pretrained(merged_dir)
    return final_dir, merged_dir


# ---- commands ---------------------------------------------------------------------


def command(*errors: type[Exception]) -> Callable:
    """Decorate a subcommand's `func(args) -> int`: ConfigError, DataError, ModelError,
    TrainError and the `errors` given print `error: <message>` on stderr and return the
    exception's `exit_code` (2 unless its class says otherwise)."""
    expected = (ConfigError, DataError, ModelError, TrainError, *errors)

    def decorate(func: Callable) -> Callable:
        @functools.wraps(func)
        def run_command(args) -> int:
            try:
                return func(args)
            except expected as problem:
                print(f"error: {problem}", file=sys.stderr)
                return getattr(problem, "exit_code", 2)

        return run_command

    return decorate
