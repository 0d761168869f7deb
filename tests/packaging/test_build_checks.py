"""packaging/build.py refuses to ship a llama.cpp built for the build machine's newest
instructions: clinics copy the package to PCs that may not have them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import llama_cpp
import pytest

BUILD_PY = Path(__file__).resolve().parents[2] / "packaging" / "build.py"


@pytest.fixture(scope="module")
def build():
    # Loaded from its path: the folder name `packaging` is also a pip library's.
    spec = importlib.util.spec_from_file_location("packaging_build", BUILD_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


AVX2_ONLY = (
    "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | LLAMAFILE = 1 | REPACK = 1 | "
)
AMX = (
    "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX_VNNI = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | "
    "AVX512 = 1 | AVX512_VBMI = 1 | AVX512_VNNI = 1 | AVX512_BF16 = 1 | AMX_INT8 = 1 | LLAMAFILE = 1 | "
)


def test_system_info_is_read_for_instructions_beyond_avx2(build):
    assert build.machine_specific_features(AVX2_ONLY) == []
    assert build.machine_specific_features(AMX) == [
        "AVX512",
        "AVX512_VBMI",
        "AVX512_VNNI",
        "AVX512_BF16",
        "AVX_VNNI",
        "AMX_INT8",
    ]
    assert build.machine_specific_features("CPU : AVX512 = 0 | AVX2 = 1 |") == []


def test_a_machine_specific_llama_cpp_is_refused_with_the_portable_rebuild(build, monkeypatch):
    monkeypatch.setattr(llama_cpp, "llama_print_system_info", lambda: AMX.encode())
    with pytest.raises(build.BuildError, match="LLAMA_PORTABLE=1 bash scripts/setup.sh") as error:
        build.check_portable_llama()
    assert "AVX512_VNNI" in str(error.value) and "AMX_INT8" in str(error.value)
    monkeypatch.setattr(llama_cpp, "llama_print_system_info", lambda: AVX2_ONLY.encode())
    build.check_portable_llama()


def test_the_installed_llama_cpp_reports_its_build(build):
    # The check reads llama.cpp's real line; it must name the baseline it was built for.
    info = llama_cpp.llama_print_system_info().decode()
    assert "AVX2 = 1" in info or "NEON = 1" in info
