"""How many of a model's layers go to the GPU, and what happens when the GPU refuses them.

Automatic offload fits the layers to the GPU's free memory the way Ollama estimates it
(its llm/memory.go and the llama formula of its GraphSize), then loads. A load that
fails for the GPU's sake is tried once more with half the layers when the GPU ran out
of memory, then on the CPU alone. The CPU load is also the control: only when it
succeeds was the failure the GPU's. When it fails too, the file or its architecture is
at fault and the caller reports that, as it always has. A damaged file (bad magic,
truncated) is refused by the checks in `model_file` before any load, GPU or CPU.

The estimate for k layers on the GPU, in bytes. llama.cpp's `n_gpu_layers = k` puts
the output layer there first, then the last k - 1 repeating blocks; all of them is
n_layer + 1. The token embeddings always stay on the CPU.

    kv         = n_ctx * n_head_kv * (head_dim_k + head_dim_v) * 2     one block's F16 K and V
    block(i)   = weights of blk.i + kv
    graph      = the larger of Ollama's partial- and full-offload compute-graph figures
                 for llama-like models (`graph_bytes`)
    overhead   = 457 MiB per GPU (CUDA, ROCm, Vulkan) or 512 MiB (Metal): Ollama's
                 minimum for the runtime's context and scratch
    need(k)    = overhead + graph + the largest block (a spare block, as Ollama keeps)
                 + output + the last k - 1 blocks
    layers     = the largest k with need(k) <= free memory; 0 when not even k = 1 fits

Free memory comes from llama.cpp's ggml device registry (`llama_runtime.gpu_memory`):
cudaMemGetInfo on CUDA, and on Metal recommendedMaxWorkingSetSize less what the device
has allocated already. Where nothing can be read, 2 GB is assumed: small enough to
leave most desktop GPUs room, and a wrong guess costs only a retry.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence, TypeVar

from therapist_app.core.model_file import GGUFLayout

log = logging.getLogger(__name__)

MIB = 1 << 20
ASSUMED_FREE_BYTES = 2_000_000_000
_OVERHEAD = {"metal": 512 * MIB}
_DEFAULT_OVERHEAD = 457 * MIB
_OUT_OF_MEMORY = (
    "out of memory",
    "outofdevicememory",
    "failed to allocate",
    "unable to allocate",
    "cudamalloc failed",
    "not enough memory",
    "insufficient memory",
)
T = TypeVar("T")


@dataclass(frozen=True)
class GpuMemory:
    free_bytes: int
    total_bytes: int
    name: str = "GPU"
    source: str = "llama.cpp"
    """Where the figures come from: 'llama.cpp' (ggml's device registry), 'NVML', or
    'assumed' when neither answered."""


class OffloadBackend(Protocol):
    """What placing a model needs from llama.cpp (`llama_runtime.LlamaBackend`; tests fake it)."""

    def gpu_backend(self) -> str:
        """'cuda', 'metal', another GPU backend's name, or 'cpu' for a build without one."""

    def gpu_memory(self) -> GpuMemory | None:
        """Free and total memory of the GPUs llama.cpp offloads to; None when unknown."""

    def load_model(self, path: str, n_gpu_layers: int) -> Any:
        """A `llama_runtime.Model`; RuntimeError when llama.cpp refuses."""


class GpuLoadFailed(Exception):
    """A load with layers on the GPU failed; `reason` says why in plain words."""

    def __init__(self, reason: str, out_of_memory: bool, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.out_of_memory = out_of_memory
        self.detail = detail
        """llama.cpp's own first error line, for the log."""


def classify_gpu_failure(messages: Sequence[str], error: str = "") -> GpuLoadFailed:
    """Name a failed GPU load from llama.cpp's log lines during it.

    >>> classify_gpu_failure(["ggml_backend_cuda_buffer_type_alloc_buffer: allocating 4096.00 MiB "
    ...                       "on device 0: cudaMalloc failed: out of memory"]).reason
    'out of GPU memory'
    >>> failure = classify_gpu_failure(["ggml_cuda_init: CUDA error: unspecified launch failure"])
    >>> failure.reason, failure.out_of_memory
    ('GPU error; see the log', False)
    """
    text = [m for m in messages if m.strip()] + ([error] if error else [])
    detail = text[0] if text else "no message from llama.cpp"
    if any(marker in line.lower() for line in text for marker in _OUT_OF_MEMORY):
        return GpuLoadFailed("out of GPU memory", True, detail)
    return GpuLoadFailed("GPU error; see the log", False, detail)


def kv_bytes(layout: GGUFLayout, n_ctx: int) -> int:
    """One block's F16 KV cache for n_ctx cells (the app's cache is unified: n_ctx
    cells in all, whatever the number of sequences). SmolLM2-135M at 2048 tokens, 3 KV
    heads of 64 + 64 dimensions: 1.5 MiB."""
    return n_ctx * layout.n_head_kv * (layout.head_dim_k + layout.head_dim_v) * 2


def graph_bytes(layout: GGUFLayout, n_ctx: int, n_batch: int) -> int:
    """Ollama's compute-graph estimate for llama-like models: the larger of its figures
    for full and for partial offload (the partial one counts the output layer's
    matrix product twice over, so it is the larger for most models)."""
    b, c, e = min(n_ctx, n_batch), n_ctx, layout.n_embd
    h, hkv, eh, v = layout.n_head, layout.n_head_kv, layout.head_dim_k, layout.n_vocab
    full = max(4 * b * (1 + 4 * e + c * (1 + h)), 4 * b * (e + v))
    partial = 4 * b * e + max(
        4 * b * (1 + e + max(c, e)) + e * e * 9 // 16 + 4 * c * (b * h + eh * hkv),
        4 * b * (e + v) + e * v * 105 // 128,
    )
    return max(full, partial)


def need_bytes(layout: GGUFLayout, n_ctx: int, n_batch: int, layers: int, backend: str) -> int:
    """GPU memory for `layers` on the GPU (llama.cpp's n_gpu_layers), per the formula
    in the module docstring; 0 for none."""
    layers = min(layers, layout.n_layer + 1)
    if layers <= 0:
        return 0
    kv = kv_bytes(layout, n_ctx)
    blocks = [size + kv for size in layout.layer_bytes]
    on_gpu = blocks[len(blocks) - (layers - 1) :] if layers > 1 else []
    return (
        _OVERHEAD.get(backend, _DEFAULT_OVERHEAD)
        + graph_bytes(layout, n_ctx, n_batch)
        + max(blocks, default=0)
        + layout.output_bytes
        + sum(on_gpu)
    )


def fit_layers(layout: GGUFLayout, n_ctx: int, n_batch: int, free_bytes: int, backend: str) -> int:
    """The most layers whose estimate fits in `free_bytes` (0 to n_layer + 1)."""
    layers = 0
    while layers <= layout.n_layer and need_bytes(layout, n_ctx, n_batch, layers + 1, backend) <= free_bytes:
        layers += 1
    return layers


@dataclass(frozen=True)
class Plan:
    """The first load to try, and why."""

    backend: str
    layers: int
    total_layers: int
    """n_layer + 1 (the output layer counts), 0 when the layout was not read."""
    why: str
    """'no-gpu' (a CPU build), 'off' (set to 0), 'unreadable' (the layout could not be
    read), 'set' (a number the user or policy chose), 'fit' or 'too-small' (automatic)."""
    free_bytes: int = 0
    memory_source: str = ""
    need_one_bytes: int = 0
    """The estimate for one layer on the GPU (overheads included), for the message
    when automatic offload finds even that too much."""
    detail: str = ""


def plan_offload(
    backend: str,
    requested: int | None,
    layout: GGUFLayout | None,
    memory: GpuMemory | None,
    n_ctx: int,
    n_batch: int,
    unreadable: str = "",
) -> Plan:
    """The first attempt: `requested` layers when set (clamped to the model's), else
    as many as fit in free memory (assumed 2 GB when unknown)."""
    if backend == "cpu":
        return Plan(backend, 0, 0, "no-gpu")
    if requested == 0:
        return Plan(backend, 0, 0, "off")
    if layout is None:
        return Plan(backend, 0, 0, "unreadable", detail=unreadable)
    total = layout.n_layer + 1
    if requested is not None:
        return Plan(backend, min(requested, total), total, "set")
    memory = memory or GpuMemory(ASSUMED_FREE_BYTES, ASSUMED_FREE_BYTES, source="assumed")
    layers = fit_layers(layout, n_ctx, n_batch, memory.free_bytes, backend)
    return Plan(
        backend,
        layers,
        total,
        "fit" if layers else "too-small",
        memory.free_bytes,
        memory.source,
        need_bytes(layout, n_ctx, n_batch, 1, backend),
    )


@dataclass(frozen=True)
class Placement:
    """Where the model runs, and what to tell the user about it."""

    backend: str
    n_gpu_layers: int
    total_layers: int
    message: str
    """One plain sentence for the status bar, `therapist-app suggest` and the log."""
    attempts: tuple[int, ...]
    """The layer counts tried, in order; more than one means a GPU load failed."""

    @property
    def device(self) -> str:
        return self.backend if self.n_gpu_layers else "cpu"

    @property
    def fell_back(self) -> bool:
        return len(self.attempts) > 1

    @property
    def label(self) -> str:
        """Short, for the status bar's device field."""
        if not self.n_gpu_layers:
            return "CPU (GPU failed)" if self.fell_back else "CPU"
        name = self.backend.upper()
        if self.n_gpu_layers >= self.total_layers:
            return f"{name}, all {self.total_layers} layers"
        return f"{name}, {self.n_gpu_layers} of {self.total_layers} layers"


def next_attempt(layers: int, failure: GpuLoadFailed, failures_so_far: int) -> int:
    """After a failed GPU load: half the layers once if the GPU ran out of memory, else
    (and after that) the CPU.

    >>> oom = GpuLoadFailed("out of GPU memory", True)
    >>> next_attempt(31, oom, 1), next_attempt(15, oom, 2), next_attempt(1, oom, 1)
    (15, 0, 0)
    >>> next_attempt(31, GpuLoadFailed("GPU error; see the log", False), 1)
    0
    """
    return layers // 2 if failure.out_of_memory and failures_so_far == 1 else 0


def load_placed(plan: Plan, load: Callable[[int], T]) -> tuple[T, Placement]:
    """Load with `plan.layers`, falling back as `next_attempt` says.

    `load(layers)` raises GpuLoadFailed for a failure with layers on the GPU; anything it
    raises at 0 layers (a damaged file, say) propagates.
    """
    attempts: list[int] = []
    failures: list[GpuLoadFailed] = []
    layers = plan.layers
    while True:
        attempts.append(layers)
        try:
            loaded = load(layers)
        except GpuLoadFailed as failure:
            if layers == 0:
                raise
            failures.append(failure)
            log.warning("GPU load with %d layers failed (%s): %s", layers, failure.reason, failure.detail)
            layers = next_attempt(layers, failure, len(failures))
            continue
        placement = Placement(
            plan.backend, layers, plan.total_layers, describe(plan, layers, failures), tuple(attempts)
        )
        (log.warning if failures else log.info)("offload: %s", placement.message)
        return loaded, placement


def describe(plan: Plan, layers: int, failures: Sequence[GpuLoadFailed] = ()) -> str:
    """The sentence for the user.

    >>> plan = Plan("cuda", 31, 31, "fit", free_bytes=6_100_000_000)
    >>> describe(plan, 31)
    'GPU (CUDA): all 31 layers (6.1 GB free)'
    >>> describe(Plan("cuda", 20, 31, "fit", free_bytes=6_100_000_000), 20)
    'GPU (CUDA): 20 of 31 layers (6.1 GB free); the rest on the CPU'
    >>> describe(plan, 0, [GpuLoadFailed("out of GPU memory", True)] * 2)
    'GPU load failed (out of GPU memory); running on the CPU'
    >>> describe(plan, 15, [GpuLoadFailed("out of GPU memory", True)])
    'GPU load of 31 layers failed (out of GPU memory); running 15 of 31 layers on the GPU, the rest on the CPU'
    """
    as_set = " (as set)" if plan.why == "set" else ""
    if failures:
        reason = failures[0].reason
        if not layers:
            return f"GPU load failed ({reason}); running on the CPU"
        return (
            f"GPU load of {plan.layers} layers{as_set} failed ({reason}); running {layers} of "
            f"{plan.total_layers} layers on the GPU, the rest on the CPU"
        )
    if plan.why == "no-gpu":
        return "CPU (this llama.cpp build has no GPU support)"
    if plan.why == "off":
        return "CPU (GPU layers set to 0)"
    if plan.why == "unreadable":
        return f"CPU (the model's layer sizes could not be read: {plan.detail})"
    free = (
        f"free memory unknown, {_gb(plan.free_bytes)} assumed"
        if plan.memory_source == "assumed"
        else f"{_gb(plan.free_bytes)} free"
    )
    if plan.why == "too-small":
        return (
            f"CPU: too little free GPU memory for this model and context ({free}, "
            f"at least {_gb(plan.need_one_bytes)} needed)"
        )
    where = f"GPU ({plan.backend.upper()}): "
    detail = ", as set" if plan.why == "set" else f" ({free})"
    if layers >= plan.total_layers:
        return f"{where}all {plan.total_layers} layers{detail}"
    return f"{where}{layers} of {plan.total_layers} layers{detail}; the rest on the CPU"


def _gb(size: int) -> str:
    return f"{size / 1e9:.1f} GB"
