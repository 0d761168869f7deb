"""Resource owners over llama-cpp-python's raw bindings.

The high-level `llama_cpp.Llama` decodes one sequence at a time; suggestions need
several sequences that share a prompt in one batch, so the engine drives llama.cpp
through these small owners instead. Each frees its native object in `close()` and is
a context manager.
"""

from __future__ import annotations

import ctypes
import logging
import math
import os
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

import llama_cpp
import numpy as np

from therapist_app.core import load_progress
from therapist_app.core.offload import GpuMemory

log = logging.getLogger(__name__)

_NATIVE_LEVELS = {3: logging.WARNING, 4: logging.ERROR}
_native_log = logging.getLogger("llama_cpp.native")


@llama_cpp.llama_log_callback
def _route_native_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    # Only warnings and errors pass, clipped: llama.cpp's info and debug output can
    # echo prompt pieces and token strings, and client text must never reach a log.
    python_level = _NATIVE_LEVELS.get(level)
    if python_level is None or not text:
        return
    message = text.decode("utf-8", "replace").strip()
    if message:
        _native_log.log(python_level, "%s", message[:160])


_backend_ready = False


def init_backend() -> None:
    """Route llama.cpp's log through Python logging and initialise its backends once."""
    global _backend_ready
    if _backend_ready:
        return
    llama_cpp.llama_log_set(_route_native_log, ctypes.c_void_p(0))
    llama_cpp.llama_backend_init()
    _backend_ready = True


def gpu_backend() -> str:
    """'cuda', 'metal', another GPU backend's name in lower case, or 'cpu'."""
    if not llama_cpp.llama_supports_gpu_offload():
        return "cpu"
    info = llama_cpp.llama_print_system_info().decode("utf-8", "replace").upper()
    for name in ("CUDA", "METAL", "VULKAN", "HIP", "SYCL"):
        if name in info:
            return name.lower()
    return "metal" if sys.platform == "darwin" else "gpu"


@contextmanager
def native_log_capture() -> Iterator[list[str]]:
    """The warnings and errors llama.cpp logs on this thread while the block runs (a
    failed load says there why it failed: out of GPU memory, a driver error...)."""
    handler = _ThreadLines(threading.get_ident())
    _native_log.addHandler(handler)
    try:
        yield handler.lines
    finally:
        _native_log.removeHandler(handler)


class _ThreadLines(logging.Handler):
    def __init__(self, thread: int) -> None:
        super().__init__(logging.WARNING)
        self.thread = thread
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.lines.append(record.getMessage())


# ggml's device types (ggml-backend.h): a discrete GPU, and one that shares host memory.
_GGML_DEVICE_GPU, _GGML_DEVICE_IGPU = 1, 2


def _ggml_devices() -> list[tuple[int, str, int, int]]:
    """(type, description, free bytes, total bytes) of every device llama.cpp knows,
    through ggml's device registry (llama-cpp-python binds none of it)."""
    from llama_cpp import _ggml

    init_backend()
    lib = _ggml.libggml
    count, get, kind = lib.ggml_backend_dev_count, lib.ggml_backend_dev_get, lib.ggml_backend_dev_type
    memory, description = lib.ggml_backend_dev_memory, lib.ggml_backend_dev_description
    count.restype, count.argtypes = ctypes.c_size_t, []
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    kind.restype, kind.argtypes = ctypes.c_int, [ctypes.c_void_p]
    description.restype, description.argtypes = ctypes.c_char_p, [ctypes.c_void_p]
    memory.restype = None
    memory.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(ctypes.c_size_t)]
    devices = []
    for index in range(count()):
        device = get(index)
        free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
        memory(device, ctypes.byref(free), ctypes.byref(total))
        name = (description(device) or b"").decode("utf-8", "replace")
        devices.append((kind(device), name, free.value, total.value))
    return devices


def _nvml_memory() -> GpuMemory | None:
    """Free memory of the NVIDIA GPUs through NVML, when nvidia-ml-py is installed."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        try:
            handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
            infos = [pynvml.nvmlDeviceGetMemoryInfo(h) for h in handles]
            names = [pynvml.nvmlDeviceGetName(h) for h in handles]
        finally:
            pynvml.nvmlShutdown()
    except pynvml.NVMLError as error:
        log.warning("NVML could not report GPU memory: %s", error)
        return None
    if not infos:
        return None
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    return GpuMemory(sum(i.free for i in infos), sum(i.total for i in infos), ", ".join(names), "NVML")


def gpu_memory() -> GpuMemory | None:
    """Free and total memory of the GPUs llama.cpp offloads to (its discrete GPUs, else
    its integrated ones), summed; None when neither ggml nor NVML can tell.

    On Metal ggml reports recommendedMaxWorkingSetSize less what the device holds
    already; on CUDA, cudaMemGetInfo (which also starts the CUDA context, as the load
    would). NVML answers where ggml reports nothing, on CUDA only.
    """
    try:
        devices = _ggml_devices()
    except (ImportError, AttributeError, OSError) as error:
        log.warning("llama.cpp's device registry is not reachable (%s)", type(error).__name__)
        devices = []
    gpus = [d for d in devices if d[0] == _GGML_DEVICE_GPU] or [d for d in devices if d[0] == _GGML_DEVICE_IGPU]
    if any(total for *_, total in gpus):
        return GpuMemory(sum(d[2] for d in gpus), sum(d[3] for d in gpus), ", ".join(d[1] for d in gpus))
    return _nvml_memory() if gpu_backend() == "cuda" else None


class LlamaBackend:
    """The real `offload.OffloadBackend`: this llama.cpp build and the machine's GPUs."""

    def gpu_backend(self) -> str:
        return gpu_backend()

    def gpu_memory(self) -> GpuMemory | None:
        return gpu_memory()

    def load_model(self, path: str, n_gpu_layers: int) -> "Model":
        return Model(path, n_gpu_layers)


def default_threads() -> int:
    """Physical cores when known (llama.cpp gains nothing from hyper-threads), capped at 8."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:
        count = os.cpu_count() or 2
    return max(1, min(count, 8))


class Model:
    def __init__(self, path: str, n_gpu_layers: int) -> None:
        init_backend()
        params = llama_cpp.llama_model_default_params()
        params.n_gpu_layers = n_gpu_layers
        if load_progress.listening():
            # llama.cpp calls this from the loading thread; the reference must outlive
            # the call, and True means "go on".
            self._progress = llama_cpp.llama_progress_callback(
                lambda done, _user: load_progress.report("loading the model", done) or True
            )
            params.progress_callback = self._progress
        self._ptr = llama_cpp.llama_model_load_from_file(os.fsencode(path), params)
        if not self._ptr:
            raise RuntimeError("llama.cpp could not load the model")
        self.vocab = llama_cpp.llama_model_get_vocab(self._ptr)
        self.n_ctx_train = llama_cpp.llama_model_n_ctx_train(self._ptr)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)

    @property
    def ptr(self):
        return self._ptr

    def meta(self, key: str) -> str | None:
        buf = ctypes.create_string_buffer(4096)
        n = llama_cpp.llama_model_meta_val_str(self._ptr, key.encode(), buf, len(buf))
        return buf.value.decode("utf-8", "replace") if n >= 0 else None

    def chat_template(self) -> str | None:
        raw = llama_cpp.llama_model_chat_template(self._ptr, None)
        return raw.decode("utf-8", "replace") if raw else None

    def tokenize(self, text: str, *, special: bool, add_bos: bool = False) -> list[int]:
        data = text.encode("utf-8")
        capacity = len(data) + 16
        buf = (llama_cpp.llama_token * capacity)()
        n = llama_cpp.llama_tokenize(self.vocab, data, len(data), buf, capacity, add_bos, special)
        if n < 0:
            capacity = -n
            buf = (llama_cpp.llama_token * capacity)()
            n = llama_cpp.llama_tokenize(self.vocab, data, len(data), buf, capacity, add_bos, special)
        return list(buf[:n])

    def piece(self, token: int) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = llama_cpp.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
        return buf.raw[:n]

    def is_end_of_generation(self, token: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(self.vocab, token))

    def close(self) -> None:
        if self._ptr:
            llama_cpp.llama_model_free(self._ptr)
            self._ptr = None

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LoraAdapter:
    """A LoRA adapter (GGUF) loaded for one model: applied to a context with
    `Context.use_adapter`. It must be closed before its model (or is freed with it)."""

    def __init__(self, model: Model, path: str) -> None:
        self._ptr = llama_cpp.llama_adapter_lora_init(model.ptr, path.encode())
        if not self._ptr:
            raise RuntimeError("llama.cpp could not load the adapter (wrong base model or a damaged file)")

    @property
    def ptr(self):
        return self._ptr

    def close(self) -> None:
        if self._ptr:
            llama_cpp.llama_adapter_lora_free(self._ptr)
            self._ptr = None


@dataclass(frozen=True)
class PerfCounters:
    prompt_ms: float
    prompt_tokens: int
    decode_ms: float
    decode_calls: int


class Context:
    def __init__(self, model: Model, n_ctx: int, n_batch: int, n_seq_max: int, n_threads: int) -> None:
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = n_batch
        params.n_ubatch = n_batch
        params.n_seq_max = n_seq_max
        params.n_threads = n_threads
        params.n_threads_batch = n_threads
        # One KV buffer shared by all sequences: they share the prompt prefix, so a
        # unified cache holds it once instead of once per sequence.
        params.kv_unified = True
        # Keep llama.cpp's timing counters on: the status bar and bench read them.
        params.no_perf = False
        self._ptr = llama_cpp.llama_init_from_model(model.ptr, params)
        if not self._ptr:
            raise RuntimeError("llama.cpp could not create a context (out of memory?)")
        self.n_ctx = llama_cpp.llama_n_ctx(self._ptr)
        self.n_batch = n_batch
        self._memory = llama_cpp.llama_get_memory(self._ptr)

    @property
    def ptr(self):
        return self._ptr

    def logprob(self, batch_index: int, token: int, n_vocab: int) -> float:
        """log p(token) under the logits at `batch_index` (the model's distribution,
        before any sampler shaping)."""
        pointer = llama_cpp.llama_get_logits_ith(self._ptr, batch_index)
        logits = np.ctypeslib.as_array(pointer, shape=(n_vocab,))
        top = float(logits.max())
        return float(logits[token]) - top - math.log(float(np.exp(logits - top).sum()))

    def use_adapter(self, adapter: LoraAdapter, scale: float = 1.0) -> None:
        adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(adapter.ptr)
        scales = (ctypes.c_float * 1)(scale)
        if llama_cpp.llama_set_adapters_lora(self._ptr, adapters, 1, scales) != 0:
            raise RuntimeError("llama.cpp could not apply the adapter to the context")

    def decode(self, batch: "Batch") -> None:
        status = llama_cpp.llama_decode(self._ptr, batch.raw)
        if status != 0:
            raise RuntimeError(f"llama_decode failed with status {status}")

    def remove(self, seq_id: int, start: int = 0, end: int = -1) -> bool:
        return bool(llama_cpp.llama_memory_seq_rm(self._memory, seq_id, start, end))

    def copy_sequence(self, src: int, dst: int, start: int = 0, end: int = -1) -> None:
        llama_cpp.llama_memory_seq_cp(self._memory, src, dst, start, end)

    def clear(self) -> None:
        llama_cpp.llama_memory_clear(self._memory, True)

    def perf(self) -> PerfCounters:
        data = llama_cpp.llama_perf_context(self._ptr)
        return PerfCounters(data.t_p_eval_ms, data.n_p_eval, data.t_eval_ms, data.n_eval)

    def reset_perf(self) -> None:
        llama_cpp.llama_perf_context_reset(self._ptr)

    def close(self) -> None:
        if self._ptr:
            llama_cpp.llama_free(self._ptr)
            self._ptr = None

    def __enter__(self) -> "Context":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Batch:
    """A reusable token batch; `add` appends one token for one or more sequences."""

    def __init__(self, capacity: int, n_seq_max: int) -> None:
        self.capacity = capacity
        self.raw = llama_cpp.llama_batch_init(capacity, 0, n_seq_max)
        self.n_tokens = 0

    def clear(self) -> None:
        self.n_tokens = 0
        self.raw.n_tokens = 0

    def add(self, token: int, pos: int, seq_ids: Sequence[int], logits: bool) -> int:
        """Append a token; returns its index in the batch (the index logits are read by)."""
        i = self.n_tokens
        if i >= self.capacity:
            raise ValueError("batch is full")
        self.raw.token[i] = token
        self.raw.pos[i] = pos
        self.raw.n_seq_id[i] = len(seq_ids)
        for j, seq in enumerate(seq_ids):
            self.raw.seq_id[i][j] = seq
        self.raw.logits[i] = logits
        self.n_tokens = self.raw.n_tokens = i + 1
        return i

    def close(self) -> None:
        if self.raw is not None:
            llama_cpp.llama_batch_free(self.raw)
            self.raw = None


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.7
    top_k: int = 40
    top_p: float = 0.9
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    repeat_last_n: int = 64


class Sampler:
    """A llama.cpp sampler chain for one sequence (it keeps that sequence's history)."""

    def __init__(self, params: SamplingParams, seed: int, n_vocab: int) -> None:
        self._ptr = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        add = lambda s: llama_cpp.llama_sampler_chain_add(self._ptr, s)  # noqa: E731
        # top-k goes first: the repeat penalty costs a hash lookup per candidate (0.3 ms
        # over a 49k vocabulary, a few percent of a decode step; 0.07 ms over 40). The
        # penalty only lowers logits, so the one token it could have let in from
        # outside the top k would sit below what top-p and min-p keep anyway.
        if params.temperature > 0 and params.top_k > 0:
            add(llama_cpp.llama_sampler_init_top_k(params.top_k))
        if params.repeat_penalty != 1.0:
            add(llama_cpp.llama_sampler_init_penalties(n_vocab, params.repeat_last_n, params.repeat_penalty, 0.0, 0.0))
        if params.temperature <= 0:
            add(llama_cpp.llama_sampler_init_greedy())
            return
        add(llama_cpp.llama_sampler_init_top_p(params.top_p, 1))
        add(llama_cpp.llama_sampler_init_min_p(params.min_p, 1))
        add(llama_cpp.llama_sampler_init_temp(params.temperature))
        add(llama_cpp.llama_sampler_init_dist(seed & 0xFFFFFFFF))

    def sample(self, ctx: Context, batch_index: int) -> int:
        """Sample from the logits at `batch_index`; llama.cpp also records the token."""
        return llama_cpp.llama_sampler_sample(self._ptr, ctx.ptr, batch_index)

    def close(self) -> None:
        if self._ptr:
            llama_cpp.llama_sampler_free(self._ptr)
            self._ptr = None
