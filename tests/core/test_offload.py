"""GPU offload: the fit to free memory, the retries after a failed GPU load, the CPU
fallback and what the user is told. A fake backend reports GPU memory and fails loads
on demand; the real loads underneath run on the CPU. One `gpu` test loads the bundled
model on a real GPU (skipped without one)."""

from __future__ import annotations

import logging
import sys
import threading
import types
from pathlib import Path

import pytest

from therapist_app.core import llama_runtime, offload
from therapist_app.core.dialogue_format import EmotionReading, SuggestionRequest
from therapist_app.core.engine import EngineConfig, SuggestionEngine
from therapist_app.core.llama_runtime import Model, native_log_capture
from therapist_app.core.model_file import GGUFLayout, ModelFileError, read_gguf_layout
from therapist_app.core.offload import (
    MIB,
    GpuLoadFailed,
    GpuMemory,
    Plan,
    fit_layers,
    load_placed,
    need_bytes,
    plan_offload,
)

GB = 1_000_000_000
OUT_OF_MEMORY = (
    "ggml_backend_cuda_buffer_type_alloc_buffer: allocating 2048.00 MiB on device 0: cudaMalloc failed: out of memory"
)
REQUEST = SuggestionRequest("I can't sleep before exams.", (), EmotionReading("anxiety", 0.8))
# A 7B-like model: 32 blocks of 100 MiB, an output layer of 100 MiB, grouped-query
# attention with 8 KV heads of 128 dimensions.
SEVEN_B = GGUFLayout("llama", 32, 4096, 32, 8, 128, 128, 32000, (100 * MIB,) * 32, 100 * MIB, 3_400 * MIB)


class FakeGpu:
    """An `OffloadBackend` with a GPU of `free` bytes (None: unknown) on which loads of
    more than `fits` layers fail with `error` in llama.cpp's log. Loads that pass run on
    the CPU: this build has no GPU."""

    def __init__(self, free: int | None = 8 * GB, fits: int = 999, error: str = OUT_OF_MEMORY) -> None:
        self.free, self.fits, self.error = free, fits, error
        self.loads: list[int] = []

    def gpu_backend(self) -> str:
        return "cuda"

    def gpu_memory(self) -> GpuMemory | None:
        return None if self.free is None else GpuMemory(self.free, 2 * self.free, "Fake GPU")

    def load_model(self, path: str, n_gpu_layers: int) -> Model:
        self.loads.append(n_gpu_layers)
        if n_gpu_layers > self.fits:
            logging.getLogger("llama_cpp.native").error(self.error)
            raise RuntimeError("llama.cpp could not load the model")
        return Model(path, 0)


# ---- the layout read from the GGUF -------------------------------------------------------


def test_bundled_layout_matches_gguf_py(bundled_model):
    gguf = pytest.importorskip("gguf")
    layout = read_gguf_layout(bundled_model)
    assert (layout.architecture, layout.n_layer, layout.n_embd, layout.n_head, layout.n_head_kv) == (
        "llama",
        30,
        576,
        9,
        3,
    )
    assert (layout.head_dim_k, layout.head_dim_v, layout.n_vocab) == (64, 64, 49152)
    sizes = {t.name: int(t.n_bytes) for t in gguf.GGUFReader(str(bundled_model)).tensors}
    for i, size in enumerate(layout.layer_bytes):
        assert size == sum(v for k, v in sizes.items() if k.startswith(f"blk.{i}."))
    # SmolLM2 ties its output to the token embeddings: the GPU gets a copy of them.
    assert "output.weight" not in sizes
    assert layout.output_bytes == sizes["output_norm.weight"] + sizes["token_embd.weight"]


def test_tensor_type_sizes_match_gguf_py():
    gguf = pytest.importorskip("gguf")
    from therapist_app.core.model_file import _GGML_TYPE_SIZES

    known = {int(kind): sizes for kind, sizes in gguf.GGML_QUANT_SIZES.items()}
    assert {k: v for k, v in known.items() if k in _GGML_TYPE_SIZES} == _GGML_TYPE_SIZES


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.999])
def test_truncated_tensor_data_is_found_before_any_load(tmp_path, tiny_gguf, keep):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_gguf.read_bytes()[: int(tiny_gguf.stat().st_size * keep)])
    with pytest.raises(ModelFileError, match="truncated"):
        read_gguf_layout(cut)


def test_a_length_past_the_end_of_the_file_is_a_corrupt_header(tmp_path, tiny_gguf):
    data = bytearray(tiny_gguf.read_bytes())
    data[24:32] = (1 << 60).to_bytes(8, "little")  # the first metadata key's length
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="corrupt GGUF header"):
        read_gguf_layout(bad)


# ---- the fit ------------------------------------------------------------------------------


# Worked by hand for SEVEN_B (b = 512 batch rows): at 4096 tokens a block's KV cache is
# 4096 * 8 * 256 * 2 = 16 MiB, so a block is 116 MiB; Ollama's graph figure is
# 319,817,728 bytes (its partial-offload branch); one layer on the GPU then needs
# 457 MiB + graph + a spare block + the 100 MiB output = 1,025,509,376 bytes, and each
# more layer 116 MiB: 4 GB holds 1 + 24 layers. At 8192 tokens blocks are 132 MiB, the
# graph 613,419,008 bytes, the first layer 1,335,887,872: 1 + 19. Metal reserves 512 MiB.
@pytest.mark.parametrize(
    ("n_ctx", "free", "backend", "layers"),
    [
        (4096, 8 * GB, "cuda", 33),
        (4096, 4 * GB, "cuda", 25),
        (8192, 4 * GB, "cuda", 20),
        (4096, 4 * GB, "metal", 24),
        (4096, 1 * GB, "cuda", 0),
        (4096, 80 * GB, "cuda", 33),
    ],
)
def test_layers_fit_the_free_memory(n_ctx, free, backend, layers):
    assert fit_layers(SEVEN_B, n_ctx, 512, free, backend) == layers


def test_first_layer_estimate_by_hand():
    assert need_bytes(SEVEN_B, 4096, 512, 1, "cuda") == 1_025_509_376
    assert need_bytes(SEVEN_B, 8192, 512, 1, "cuda") == 1_335_887_872
    assert need_bytes(SEVEN_B, 4096, 512, 0, "cuda") == 0


@pytest.mark.parametrize("layers", [1, 2, 17, 32, 33])
def test_the_fit_is_exact_at_its_boundary(layers):
    need = need_bytes(SEVEN_B, 2048, 512, layers, "cuda")
    assert fit_layers(SEVEN_B, 2048, 512, need, "cuda") == layers
    assert fit_layers(SEVEN_B, 2048, 512, need - 1, "cuda") == layers - 1


def test_the_bundled_model_fits_a_small_gpu_whole(bundled_model):
    layout = read_gguf_layout(bundled_model)
    assert fit_layers(layout, 2048, 512, 800_000_000, "cuda") == 31
    assert 0 < fit_layers(layout, 8192, 512, 800_000_000, "cuda") < 31  # the context takes its share
    assert 0 < fit_layers(layout, 2048, 512, 700_000_000, "cuda") < 31
    assert fit_layers(layout, 2048, 512, 600_000_000, "cuda") == 0


@pytest.mark.parametrize(
    ("backend", "requested", "layout", "memory", "expected"),
    [
        ("cpu", None, SEVEN_B, None, (0, "no-gpu")),
        ("cuda", 0, SEVEN_B, None, (0, "off")),
        ("cuda", 999, SEVEN_B, None, (33, "set")),
        ("cuda", 10, SEVEN_B, GpuMemory(0, 0), (10, "set")),  # an explicit setting is not second-guessed
        ("cuda", None, None, None, (0, "unreadable")),
        ("cuda", None, SEVEN_B, GpuMemory(4 * GB, 8 * GB), (25, "fit")),
        ("cuda", None, SEVEN_B, GpuMemory(GB // 2, 8 * GB), (0, "too-small")),
        ("cuda", None, SEVEN_B, None, (9, "fit")),  # unknown: 2 GB assumed, 1 + 8 layers
    ],
)
def test_plan(backend, requested, layout, memory, expected):
    plan = plan_offload(backend, requested, layout, memory, 4096, 512)
    assert (plan.layers, plan.why) == expected


# ---- retries and messages -------------------------------------------------------------------


def _loader(fits: int, error: GpuLoadFailed):
    tried: list[int] = []

    def load(layers: int) -> str:
        tried.append(layers)
        if layers > fits:
            raise error
        return "loaded"

    return load, tried


OOM = GpuLoadFailed("out of GPU memory", True)
DRIVER = GpuLoadFailed("GPU error; see the log", False)
AUTO = Plan("cuda", 31, 31, "fit", free_bytes=6_100_000_000, memory_source="llama.cpp")


@pytest.mark.parametrize(
    ("plan", "fits", "error", "attempts", "label", "message"),
    [
        (AUTO, 99, OOM, (31,), "CUDA, all 31 layers", "GPU (CUDA): all 31 layers (6.1 GB free)"),
        (
            Plan("cuda", 20, 31, "fit", free_bytes=6_100_000_000, memory_source="llama.cpp"),
            99,
            OOM,
            (20,),
            "CUDA, 20 of 31 layers",
            "GPU (CUDA): 20 of 31 layers (6.1 GB free); the rest on the CPU",
        ),
        (
            AUTO,
            20,
            OOM,
            (31, 15),
            "CUDA, 15 of 31 layers",
            "GPU load of 31 layers failed (out of GPU memory); running 15 of 31 layers on the GPU, the rest on the CPU",
        ),
        (AUTO, 10, OOM, (31, 15, 0), "CPU (GPU failed)", "GPU load failed (out of GPU memory); running on the CPU"),
        (AUTO, 20, DRIVER, (31, 0), "CPU (GPU failed)", "GPU load failed (GPU error; see the log); running on the CPU"),
        (
            Plan("cuda", 31, 31, "set"),
            0,
            OOM,
            (31, 15, 0),
            "CPU (GPU failed)",
            "GPU load failed (out of GPU memory); running on the CPU",
        ),
        (
            Plan("cuda", 31, 31, "set"),
            20,
            OOM,
            (31, 15),
            "CUDA, 15 of 31 layers",
            "GPU load of 31 layers (as set) failed (out of GPU memory); running 15 of 31 layers on the GPU, "
            "the rest on the CPU",
        ),
        (Plan("cuda", 31, 31, "set"), 99, OOM, (31,), "CUDA, all 31 layers", "GPU (CUDA): all 31 layers, as set"),
        (
            Plan(
                "cuda",
                0,
                31,
                "too-small",
                free_bytes=300_000_000,
                memory_source="llama.cpp",
                need_one_bytes=900_000_000,
            ),
            99,
            OOM,
            (0,),
            "CPU",
            "CPU: too little free GPU memory for this model and context (0.3 GB free, at least 0.9 GB needed)",
        ),
        (Plan("cuda", 0, 0, "off"), 99, OOM, (0,), "CPU", "CPU (GPU layers set to 0)"),
        (Plan("cpu", 0, 0, "no-gpu"), 99, OOM, (0,), "CPU", "CPU (this llama.cpp build has no GPU support)"),
        (
            Plan("cuda", 31, 31, "fit", free_bytes=2 * GB, memory_source="assumed"),
            99,
            OOM,
            (31,),
            "CUDA, all 31 layers",
            "GPU (CUDA): all 31 layers (free memory unknown, 2.0 GB assumed)",
        ),
    ],
)
def test_retries_and_what_the_user_is_told(plan, fits, error, attempts, label, message):
    load, tried = _loader(fits, error)
    loaded, placement = load_placed(plan, load)
    assert loaded == "loaded"
    assert tuple(tried) == placement.attempts == attempts
    assert placement.n_gpu_layers == attempts[-1]
    assert placement.device == ("cpu" if attempts[-1] == 0 else plan.backend)
    assert placement.label == label
    assert placement.message == message


def test_a_failure_on_the_cpu_is_not_the_gpus_and_propagates():
    def load(layers: int):
        if layers:
            raise OOM
        raise ModelFileError("llama.cpp could not load x.gguf: the file is damaged")

    with pytest.raises(ModelFileError, match="damaged"):
        load_placed(AUTO, load)


def test_fallbacks_are_logged_as_warnings(caplog):
    load, _ = _loader(0, OOM)
    with caplog.at_level(logging.INFO, logger="therapist_app.core.offload"):
        load_placed(AUTO, load)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("31 layers failed (out of GPU memory)" in w for w in warnings)
    assert warnings[-1] == "offload: GPU load failed (out of GPU memory); running on the CPU"


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        (
            [OUT_OF_MEMORY, "llama_model_load: error loading model: unable to allocate CUDA0 buffer"],
            "out of GPU memory",
        ),
        (["ggml_metal_buffer_init: error: failed to allocate buffer, size = 4096.00 MiB"], "out of GPU memory"),
        (["ggml_vulkan: Device memory allocation of size 4096 failed: ErrorOutOfDeviceMemory"], "out of GPU memory"),
        (["CUDA error: the provided PTX was compiled with an unsupported toolchain."], "GPU error; see the log"),
        ([], "GPU error; see the log"),
    ],
)
def test_failures_are_named_from_llama_cpps_log(lines, reason):
    assert offload.classify_gpu_failure(lines).reason == reason


# ---- the engine on a fake GPU ----------------------------------------------------------------


def test_cpu_build_says_so(tiny_gguf):
    if llama_runtime.gpu_backend() != "cpu":
        pytest.skip("this llama.cpp build has a GPU backend")
    with SuggestionEngine(EngineConfig(model_path=tiny_gguf, n_ctx=256, max_tokens=8)) as engine:
        placement = engine.info.placement
    assert placement.message == "CPU (this llama.cpp build has no GPU support)"
    assert (engine.info.device, engine.info.n_gpu_layers, placement.attempts) == ("cpu", 0, (0,))


@pytest.mark.parametrize(
    ("fits", "attempts", "device"), [(99, (3,), "cuda"), (2, (3, 1), "cuda"), (0, (3, 1, 0), "cpu")]
)
def test_engine_falls_back_and_still_suggests(tiny_gguf, fits, attempts, device):
    gpu = FakeGpu(fits=fits)
    config = EngineConfig(model_path=tiny_gguf, n_ctx=256, max_tokens=8, n_threads=2)
    with SuggestionEngine(config, backend=gpu) as engine:
        info = engine.info
        assert engine.complete(REQUEST, n=2).suggestions
    assert tuple(gpu.loads) == info.placement.attempts == attempts
    assert (info.device, info.n_gpu_layers, info.placement.total_layers) == (device, attempts[-1], 3)


def test_a_driver_error_goes_straight_to_the_cpu(tiny_gguf):
    gpu = FakeGpu(fits=0, error="ggml_cuda_init: CUDA error: unknown error")
    with SuggestionEngine(EngineConfig(model_path=tiny_gguf, n_ctx=256, max_tokens=8), backend=gpu) as engine:
        assert engine.info.placement.message == "GPU load failed (GPU error; see the log); running on the CPU"
    assert gpu.loads == [3, 0]


def test_explicit_all_layers_still_falls_back(tiny_gguf):
    gpu = FakeGpu(fits=0)
    config = EngineConfig(model_path=tiny_gguf, n_ctx=256, max_tokens=8, n_gpu_layers=999)
    with SuggestionEngine(config, backend=gpu) as engine:
        assert engine.info.placement.message == "GPU load failed (out of GPU memory); running on the CPU"
        assert engine.info.placement.label == "CPU (GPU failed)"
    assert gpu.loads == [3, 1, 0]


def test_explicit_zero_never_asks_the_gpu(tiny_gguf):
    gpu = FakeGpu()
    with SuggestionEngine(
        EngineConfig(model_path=tiny_gguf, n_ctx=256, max_tokens=8, n_gpu_layers=0), backend=gpu
    ) as engine:
        assert engine.info.placement.message == "CPU (GPU layers set to 0)"
    assert gpu.loads == [0]


def test_context_size_is_part_of_the_fit(bundled_model):
    roomy = FakeGpu(free=800_000_000)
    with SuggestionEngine(EngineConfig(model_path=bundled_model, n_ctx=2048), backend=roomy) as engine:
        assert engine.info.n_gpu_layers == 31
    with SuggestionEngine(EngineConfig(model_path=bundled_model, n_ctx=8192), backend=roomy) as engine:
        assert 0 < engine.info.n_gpu_layers < 31
        assert "of 31 layers (0.8 GB free); the rest on the CPU" in engine.info.placement.message


@pytest.mark.parametrize("case", ["bad magic", "truncated"])
def test_a_damaged_file_is_reported_as_damaged_and_never_tried_on_the_gpu(tmp_path, tiny_gguf, case):
    data = tiny_gguf.read_bytes()
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGML" + data[4:] if case == "bad magic" else data[: int(len(data) * 0.75)])
    gpu = FakeGpu()
    with pytest.raises(ModelFileError, match="not a GGUF model" if case == "bad magic" else "could not load"):
        SuggestionEngine(EngineConfig(model_path=bad, n_ctx=256, max_tokens=8), backend=gpu)
    # The layout check found the cut before any load; only the CPU was asked to confirm it.
    assert all(layers == 0 for layers in gpu.loads)


def test_suggest_prints_the_fallback_on_stderr(tiny_gguf, monkeypatch, capsys):
    from therapist_app.cli import main
    from therapist_app.core import engine as engine_module

    monkeypatch.setattr(engine_module, "LlamaBackend", lambda: FakeGpu(fits=0))
    code = main(
        [
            "suggest",
            "My boss shouts at me.",
            "--emotion",
            "anger",
            "-n",
            "1",
            "--model",
            str(tiny_gguf),
            "--max-tokens",
            "8",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0
    assert "Device: GPU load failed (out of GPU memory); running on the CPU" in captured.err
    assert "GPU load failed" not in captured.out


# ---- free memory without torch ---------------------------------------------------------------


def test_a_cpu_build_reports_no_gpu_memory():
    if llama_runtime.gpu_backend() != "cpu":
        pytest.skip("this llama.cpp build has a GPU backend")
    assert llama_runtime.gpu_memory() is None
    assert all(kind == 0 for kind, *_ in llama_runtime._ggml_devices())  # the CPU device only


def test_nvml_answers_where_ggml_reports_nothing(monkeypatch):
    class Info:
        free, total = 5 * GB, 8 * GB

    fake = types.ModuleType("pynvml")
    fake.NVMLError = type("NVMLError", (Exception,), {})
    fake.nvmlInit = fake.nvmlShutdown = lambda: None
    fake.nvmlDeviceGetCount = lambda: 1
    fake.nvmlDeviceGetHandleByIndex = lambda index: index
    fake.nvmlDeviceGetMemoryInfo = lambda handle: Info()
    fake.nvmlDeviceGetName = lambda handle: b"Fake RTX"
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr(llama_runtime, "_ggml_devices", lambda: [(1, "CUDA0", 0, 0)])
    monkeypatch.setattr(llama_runtime, "gpu_backend", lambda: "cuda")
    assert llama_runtime.gpu_memory() == GpuMemory(5 * GB, 8 * GB, "Fake RTX", "NVML")
    monkeypatch.setattr(
        llama_runtime, "_ggml_devices", lambda: [(1, "NVIDIA H100", 70 * GB, 80 * GB), (0, "CPU", 9 * GB, 9 * GB)]
    )
    assert llama_runtime.gpu_memory() == GpuMemory(70 * GB, 80 * GB, "NVIDIA H100", "llama.cpp")


def test_native_log_capture_keeps_to_its_thread():
    native = logging.getLogger("llama_cpp.native")
    with native_log_capture() as lines:
        native.error("ours: cudaMalloc failed: out of memory")
        other = threading.Thread(target=native.error, args=("another thread's load",))
        other.start()
        other.join()
    native.error("after the block")
    assert lines == ["ours: cudaMalloc failed: out of memory"]


# ---- a real GPU ---------------------------------------------------------------------------------


@pytest.mark.gpu
def test_bundled_model_offloads_automatically_on_a_real_gpu(bundled_model: Path):
    if llama_runtime.gpu_backend() == "cpu":
        pytest.skip("this llama.cpp build has no GPU backend")
    before = llama_runtime.gpu_memory()
    assert before is not None and before.free_bytes > 0, "llama.cpp reports no GPU memory"
    with SuggestionEngine(EngineConfig(model_path=bundled_model, max_tokens=16)) as engine:
        placement = engine.info.placement
        loaded = llama_runtime.gpu_memory()
        result = engine.complete(REQUEST, n=2)
    assert placement.attempts == (31,), placement.message
    assert (placement.n_gpu_layers, placement.total_layers, engine.info.device) == (31, 31, placement.backend)
    # The weights really went there: free memory fell by at least the blocks' weights.
    assert before.free_bytes - loaded.free_bytes >= sum(read_gguf_layout(bundled_model).layer_bytes)
    assert all(s.text for s in result.suggestions)
