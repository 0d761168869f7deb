"""`therapist-trainer dpo`: preference optimisation on the therapist's decisions and on
simulated sessions, with TRL's `DPOTrainer`.

The loss is DPO's sigmoid loss plus an NLL term on the chosen reply (TRL's `sft` loss
type, weighted by `nll_weight`), which keeps the chosen replies likely in absolute
terms, not only relative to the rejected ones (as in PAPRIKA and RPO). `ld_alpha` below 1
is LD-DPO (Liu et al., 2024): the tokens of the longer reply past the shorter one's
length count only that much, so a therapist's replies being longer than the drafts they
turned down does not teach length.

With `rounds` N (PAPRIKA's loop), round k+1 simulates with the policy round k trained,
and the curriculum carries over, so its choice of scenario groups follows every result
so far; each round is its own run folder under one parent, with `rounds.json`.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Sequence

from trainer.config import ConfigError, default_of, setting
from trainer.data.records import file_sha256
from trainer.models import bundled_gguf, load_causal_lm, load_tokenizer
from trainer.preferences import PreferencePair, pairs_from_app_export
from trainer.rewards.settings import RewardSettings, reward_pack
from trainer.run import RLSettings, TrainError, prepare_run, save_outputs, train

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DPOSettings(RewardSettings, RLSettings):
    output_dir: str = default_of(RLSettings, "output_dir", "runs/dpo")
    beta: float = setting(0.1, "DPO's beta: how strongly the policy is held to the reference model", at_least=0)
    app_export: str = setting("", "a de-identified app export (JSONL): kept vs turned-down suggestions become pairs")
    simulate: bool = setting(False, "also build pairs from simulated sessions with the client simulator")
    personas: str = setting("", "client personas TOML for simulation; empty means assets/client_personas.toml")
    simulator_model: str = setting("", "GGUF that plays the client; empty means the bundled SmolLM2")
    simulation_rounds: int = setting(2, "curriculum rounds of simulation", at_least=1)
    groups_per_round: int = setting(2, "scenario groups the curriculum picks each round", at_least=1)
    trajectories: int = setting(4, "sessions sampled per scenario (best and worst become a pair)", at_least=2)
    turns: int = setting(2, "therapist replies per simulated session", at_least=1)
    min_p: float = setting(0.1, "min-p when sampling the policy's and the simulator's replies", at_least=0, below=1)
    temperature: float = setting(1.0, "sampling temperature for simulation", above=0)
    max_new_tokens: int = setting(48, "most tokens per simulated reply", at_least=1)
    margin: float = setting(0.1, "smallest score gap between best and worst trajectory that makes a pair", at_least=0)
    exploration: float = setting(1.0, "the curriculum's UCB exploration weight", at_least=0)
    nll_weight: float = setting(1.0, "weight of the NLL term on the chosen reply (0 turns it off)", at_least=0)
    ld_alpha: float = setting(
        1.0,
        "LD-DPO: weight of the log-probabilities of the tokens past the shorter reply's length "
        "(1 is plain DPO; lower stops the longer reply's extra words from deciding the pair)",
        at_least=0,
        at_most=1,
    )
    rounds: int = setting(
        1,
        "PAPRIKA rounds with --simulate: simulate, train, then simulate again with the trained "
        "policy (the curriculum carries over); each round's run folder is run_name/round-K",
        at_least=1,
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_sources()
        if self.rounds > 1 and not self.simulate:
            raise ConfigError("rounds above 1 need --simulate: each round simulates with the policy trained before")
        if self.rounds > 1 and self.finetune == "lora" and not self.merge_lora:
            raise ConfigError("rounds above 1 with LoRA need merge_lora: the next round starts from merged/")

    def check_sources(self) -> None:
        if not self.app_export and not self.simulate:
            raise ConfigError("no preference data: pass --app-export FILE and/or --simulate")


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


def collect_pairs(settings: DPOSettings, curriculum=None, first_round: int = 0) -> tuple[list[PreferencePair], dict]:
    """Pairs from the app export and/or simulation, and a text-free record of how; a
    `curriculum` given is updated by this simulation (see `simulator.simulate_pairs`)."""
    pairs: list[PreferencePair] = []
    record: dict = {}
    if settings.app_export:
        app_pairs, stats = pairs_from_app_export(settings.app_export)
        pairs += app_pairs
        record["app_export"] = asdict(stats)
    if settings.simulate:
        from trainer.generation import HFGenerator, SamplingSettings
        from trainer.simulator import LlamaChat, load_scenarios, simulate_pairs

        sampling = SamplingSettings(settings.max_new_tokens, settings.temperature, settings.min_p, 1.0, settings.seed)
        policy = HFGenerator.load(settings.model, sampling, batch_size=settings.trajectories)
        client = LlamaChat(
            settings.simulator_model or bundled_gguf(),
            settings.min_p,
            settings.temperature,
            settings.seed,
            settings.max_new_tokens,
            settings.num_threads or None,
        )
        try:
            simulated, sim_log = simulate_pairs(
                load_scenarios(settings.personas or None),
                policy,
                client,
                reward_pack(settings),
                settings.simulation_rounds,
                settings.groups_per_round,
                settings.trajectories,
                settings.turns,
                settings.margin,
                settings.seed,
                settings.exploration,
                curriculum,
                first_round,
            )
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
        picked = torch.log_softmax(logits, dim=-1).gather(1, ids[0, len(prompt_ids) :, None])
        return float(picked.sum())

    was_training = model.training
    model.eval()
    margins = [reply_logprob(r["prompt"], r["chosen"]) - reply_logprob(r["prompt"], r["rejected"]) for r in rows]
    model.train(was_training)
    return sum(margins) / len(margins)


def run_dpo(settings: DPOSettings, callbacks: Sequence = ()) -> DPOResult:
    """One DPO run, or `rounds` of them (PAPRIKA), each from the policy the round before
    trained; returns the last round's result."""
    if settings.rounds == 1:
        return _run_round(settings, callbacks)
    from trainer.run import world_size
    from trainer.simulator import curriculum_for, load_scenarios

    if world_size() > 1 and not settings.run_name:
        raise ConfigError("rounds on several processes need --run-name: every process must use one folder")
    parent = Path(settings.output_dir) / (settings.run_name or time.strftime("%Y%m%d-%H%M%S", time.gmtime()))
    curriculum = curriculum_for(load_scenarios(settings.personas or None), settings.exploration, settings.seed)
    model, history = settings.model, []
    for number in range(1, settings.rounds + 1):
        round_settings = replace(settings, model=model, output_dir=str(parent), run_name=f"round-{number}", rounds=1)
        result = _run_round(round_settings, callbacks, curriculum, (number - 1) * settings.simulation_rounds)
        history.append(
            {
                "round": number,
                "model": model,
                "run_dir": str(result.run_dir),
                "global_step": result.global_step,
                "app_pairs": result.app_pairs,
                "simulated_pairs": result.simulated_pairs,
                "margin_before": round(result.margin_before, 4),
                "margin_after": round(result.margin_after, 4),
            }
        )
        # The same path on every process (only the main one writes merged/).
        model = str(result.run_dir / ("merged" if settings.finetune == "lora" else "final"))
        (parent / "rounds.json").write_text(json.dumps({"rounds": history}, indent=2) + "\n", encoding="utf-8")
    return result


def _run_round(settings: DPOSettings, callbacks: Sequence = (), curriculum=None, first_round: int = 0) -> DPOResult:
    import torch
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    run = prepare_run(settings)
    tokenizer = load_tokenizer(settings.model)
    pairs, record = collect_pairs(settings, curriculum, first_round)
    if not pairs:
        raise TrainError(
            "no preference pairs: the export has no round with a kept and a turned-down suggestion, "
            "and simulation (if on) found no score gap above the margin"
        )
    model = load_causal_lm(settings.model, dtype=torch.float32)
    rows = [p.to_dpo_row() for p in pairs]
    run.start(settings, file_sha256(settings.app_export) if settings.app_export else "", pairs=len(rows), **record)
    probe = rows[:64]
    margin_before = logprob_margin(model, tokenizer, probe)
    args = DPOConfig(
        per_device_train_batch_size=settings.batch_size,
        beta=settings.beta,
        loss_type=["sigmoid", "sft"] if settings.nll_weight else ["sigmoid"],
        loss_weights=[1.0, settings.nll_weight] if settings.nll_weight else None,
        ld_alpha=settings.ld_alpha if settings.ld_alpha < 1 else None,
        max_length=settings.max_length,
        truncation_mode="keep_end",
        **run.training_arguments(settings),
    )
    trainer = DPOTrainer(
        args=args, train_dataset=Dataset.from_list(rows), **run.trainer_inputs(settings, model, tokenizer, callbacks)
    )
    stats = train(trainer, settings, run)
    margin_after = logprob_margin(trainer.accelerator.unwrap_model(trainer.model), tokenizer, probe)
    final_dir, merged_dir = save_outputs(trainer, tokenizer, run, settings)
    run.finish(trainer, stats, logprob_margin_before=margin_before, logprob_margin_after=margin_after)
    return DPOResult(
        run.dir,
        final_dir,
        merged_dir,
        trainer.state.global_step,
        sum(p.source == "app" for p in pairs),
        sum(p.source == "simulated" for p in pairs),
        margin_before,
        margin_after,
    )
