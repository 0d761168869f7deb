#!/usr/bin/env bash
# Build the package and smoke-test it as users get it, in one command:
#   bash packaging/check.sh
# Needs the venv of `bash scripts/setup.sh test` (or app); installs PyInstaller into it.
# Ends with packaging/smoke.py's `RESULT package_mb=.. cold_start_s=..` line. The
# package is portable (AVX2 baseline) only when llama.cpp was built with
# LLAMA_PORTABLE=1 (scripts/setup.sh); otherwise it is built for this CPU, and says so.
# CI runs it when THERAPIST_PACKAGE_CHECK=1 is set (scripts/setup.sh test).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
"$venv/bin/pip" install --quiet --disable-pip-version-check -e ".[package]"
native=()
if [ "${LLAMA_PORTABLE:-0}" != 1 ]; then
  native=(--native-cpu)
  echo "note: llama.cpp in $venv was built for this CPU; set LLAMA_PORTABLE=1 for a release"
fi
"$venv/bin/python" packaging/build.py "${native[@]}"
"$venv/bin/python" packaging/smoke.py
