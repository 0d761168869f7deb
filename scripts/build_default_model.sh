#!/usr/bin/env bash
# Rebuild the app's tuned default, assets/models/default_adapter.gguf, from the repository:
# the authored corpus (batches d05 and d09 held out for testing, d12 for validation),
# LoRA SFT of the bundled SmolLM2 on 2 CPU cores (about 90 minutes; rerun to resume from
# the last checkpoint), the adapter converted to GGUF, evaluated on the held-out batches
# beside the untuned model, and recorded in assets/models/manifest.json.
# Needs `bash scripts/setup.sh test` first (the trainer's packages and llama.cpp's converter).
set -euo pipefail
cd "$(dirname "$0")/.."
T=.venv/bin/therapist-trainer
runs=runs/default

$T corpus --test d05,d09 --validation d12 -o runs/corpus
[ -f runs/smollm2/config.json ] || $T import-gguf -o runs/smollm2
$T sft --config configs/sft/corpus_lora_cpu.toml --resume auto

# Held-out batches, greedy as the published numbers are, through the app's engine.
base=$(.venv/bin/python -c "from therapist_app.core.model_file import bundled_model_path; print(bundled_model_path())")
$T export-adapter "$runs/sft" --base runs/smollm2 -o "$runs/adapter.gguf"
for name in base tuned; do
  adapter=(); [ "$name" = tuned ] && adapter=(--adapter "$runs/adapter.gguf")
  $T eval --model "$base" "${adapter[@]}" --data runs/corpus/test.jsonl --split all \
    --output-dir "$runs/eval-$name" --save-replies
done
$T export-adapter "$runs/sft" --base runs/smollm2 \
  --metrics "held_out_base=$runs/eval-base/results.json" --metrics "held_out_tuned=$runs/eval-tuned/results.json"
