"""`therapist-trainer dpo`: preference optimisation on the therapist's decisions and on
simulated sessions, with TRL's `DPOTrainer`.

The loss is DPO's sigmoid loss plus an NLL term on the chosen reply (TRL's `sft` loss
type, weighted by `nll_weight`), which keeps the chosen replies likely in absolute
terms, not only relative to the rejected ones (as in PAPRIKA and RPO).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Sequence

from trainer.config import ConfigError, _f
from trainer.data.records import file_sha256
from trainer.preferences import PreferencePair, pairs_from_app_export
from trainer.rl_common import (
    RLSettings, hardware, is_main_process, lora_config, make_metrics_callback, run_directory,
)
from trainer.run_folder import RunFolder
from trainer.sft import trainer_arguments

log = logging.getLogger(__name__)


class DPOError(RuntimeError):
    """A DPO run that cannot start; the message says what to change."""


@dataclass(frozen=True)
class DPOSettings(RLSettings):
    output_dir: str = _f("runs/dpo", "folder that holds one sub-folder per run")
    app_export: str = _f("", "a de-identified app export (JSONL): kept vs turned-down suggestions become pairs")
    simulate: bool = _f(False, "also build pairs from simulated sessions with the client simulator")
    personas: str = _f("", "client personas TOML for simulation; empty means assets/client_personas.toml")
    simulator_model: str = _f("", "GGUF that plays the client; empty means the bundled SmolLM2")
    simulation_rounds: int = _f(2, "curriculum rounds of simulation")
    groups_per_round: int = _f(2, "scenario groups the curriculum picks each round")
    trajectories: int = _f(4, "sessions sampled per scenario (best and worst become a pair)")
    turns: int = _f(2, "therapist replies per simulated session")
    min_p: float = _f(0.1, "min-p when sampling the policy's and the simulator's replies")
    temperature: float = _f(1.0, "sampling temperature for simulation")
    max_new_tokens: int = _f(48, "most tokens per simulated reply")
    margin: float = _f(0.1, "smallest score gap between best and worst trajectory that makes a pair")
    exploration: float = _f(1.0, "the curriculum's UCB exploration weight")
    nll_weight: float = _f(1.0, "weight of the NLL term on the chosen reply (0 turns it off)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.app_export and not self.simulate:
            raise ConfigError("no preference data: pass --app-export FILE and/or --simulate")
        if self.simulation_rounds < 1 or self.groups_per_round < 1 or self.trajectories < 2 or self.turns < 1:
            raise ConfigError("need simulation_rounds, groups_per_round, turns >= 1 and trajectories >= 2")
        if not 0 <= self.min_p < 1 or self.temperature <= 0 or self.max_new_tokens < 1:
            raise ConfigError("need 0 <= min_p < 1, temperature > 0 and max_new_tokens >= 1")
        if self.margin < 0 or self.exploration < 0 or self.nll_weight < 0:
            raise ConfigError("margin, exploration and nll_weight must be 0 or more")


@dataclass(frozen=True)
class DPOResult:
    run_dir: Path
    final_dir: Path
    merged_dir: Path | None
    global_step: int
    app_pairs: int
    simulated_pairs: int
    margin_before: float
    margin_after: float


def collect_pairs(settings: DPOSettings) -> tuple[list[PreferencePair], dict]:
    """Pairs from the app export and/or simulation, and a text-free record of how."""
    pairs: list[PreferencePair] = []
    record: dict = {}
    if settings.app_export:
        app_pairs, stats = pairs_from_app_export(settings.app_export)
        pairs += app_pairs
        record["app_export"] = asdict(stats)
    if settings.simulate:
        from trainer.generation import HFGenerator, SamplingSettings
        from trainer.models import bundled_gguf
        from trainer.rewards.settings import reward_pack
        from trainer.simulator import LlamaChat, load_scenarios, simulate_pairs

        sampling = SamplingSettings(settings.max_new_tokens, settings.temperature, settings.min_p, 1.0, settings.seed)
        policy = HFGenerator.load(settings.model, sampling, batch_size=settings.trajectories)
        client = LlamaChat(settings.simulator_model or bundled_gguf(), settings.min_p, settings.temperature,
                           settings.seed, settings.max_new_tokens, settings.num_threads or None)
        try:
            simulated, sim_log = simulate_pairs(
                load_scenarios(settings.personas or None), policy, client, reward_pack(settings),
                settings.simulation_rounds, settings.groups_per_round, settings.trajectories, settings.turns,
                settings.margin, settings.seed, settings.exploration)
        finally:
            client.close()
        pairs += simulated
        record["simulation"] = sim_log.rounds
    return pairs, record


def logprob_margin(model, tokenizer, rows: Sequence[dict]) -> float:
    """Mean of log p(chosen | prompt) - log p(rejected | prompt) (summed over reply tokens):
    the quantity DPO raises."""
    import torch

    def reply_logprob(prompt: str, reply: str) -> float:
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        reply_ids = tokenizer(reply, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([prompt_ids + reply_ids], device=model.device)
        with torch.no_grad():
            logits = model(ids).logits[0, len(prompt_ids) - 1 : -1].float()
        picked = torch.log_softmax(logits, dim=-1).gather(1, ids[0, len(prompt_ids):, None])
        return float(picked.sum())

    was_training = model.training
    model.eval()
    margins = [reply_logprob(r["prompt"], r["chosen"]) - reply_logprob(r["prompt"], r["rejected"]) for r in rows]
    model.train(was_training)
    return sum(margins) / len(margins)


def run_dpo(settings: DPOSettings, callbacks: Sequence = ()) -> DPOResult:
    import torch
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from trainer.models import ModelError, load_causal_lm, load_tokenizer

    use_cpu, bf16, threads = hardware(settings)
    try:
        tokenizer = load_tokenizer(settings.model)
        pairs, record = collect_pairs(settings)
        model = load_causal_lm(settings.model, dtype=torch.float32)
    except (ModelError, ValueError) as problem:
        raise DPOError(str(problem)) from None
    if not pairs:
        raise DPOError("no preference pairs: the export has no round with a kept and a turned-down suggestion, "
                       "and simulation (if on) found no score gap above the margin")
    rows = [p.to_dpo_row() for p in pairs]
    run_dir = run_directory(settings)
    folder = RunFolder(run_dir)
    inputs = [Path(settings.app_export)] if settings.app_export else []
    if is_main_process():
        folder.start(replace(settings, run_name=run_dir.name), file_sha256(*inputs) if inputs else "",
                     {"pairs": len(rows), "device": "cpu" if use_cpu else torch.cuda.get_device_name(),
                      "torch_threads": threads, "bf16": bf16, **record})
    probe = rows[:64]
    margin_before = logprob_margin(model, tokenizer, probe)
    args = DPOConfig(
        per_device_train_batch_size=settings.batch_size,
        beta=settings.beta,
        loss_type=["sigmoid", "sft"] if settings.nll_weight else ["sigmoid"],
        loss_weights=[1.0, settings.nll_weight] if settings.nll_weight else None,
        max_length=settings.max_length,
        truncation_mode="keep_end",
        **trainer_arguments(settings, run_dir, use_cpu, bf16),
    )
    trainer = DPOTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=lora_config(settings),
        callbacks=[make_metrics_callback(folder if is_main_process() else None), *callbacks],
    )
    trainer.train()
    trained = trainer.accelerator.unwrap_model(trainer.model)
    margin_after = logprob_margin(trained, tokenizer, probe)
    final_dir, merged_dir = run_dir / "final", None
    trainer.save_model(str(final_dir))
    if is_main_process():
        tokenizer.save_pretrained(final_dir)
        if settings.finetune == "lora" and settings.merge_lora:
            merged_dir = run_dir / "merged"
            trained.merge_and_unload().save_pretrained(merged_dir, safe_serialization=True)
            tokenizer.save_pretrained(merged_dir)
        folder.plot_loss()
        folder.finish({"global_step": trainer.state.global_step, "logprob_margin_before": margin_before,
                       "logprob_margin_after": margin_after})
    return DPOResult(run_dir, final_dir, merged_dir, trainer.state.global_step,
                     sum(p.source == "app" for p in pairs), sum(p.source == "simulated" for p in pairs),
                     margin_before, margin_after)
