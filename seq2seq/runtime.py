"""Where and in what precision the toolkit runs: device and precision choices, and process-wide
settings (oneDNN's kernel cache and how malloc keeps freed memory on CPU; which fused attention
kernels CUDA may use).

Each changes the whole process, not one model, so the entry points call them (``Trainer``, and
``Translator.from_checkpoint``), and each leaves alone what the user set in the environment.
"""

from __future__ import annotations

import ctypes
import os
import sys

import torch

from seq2seq.errors import Seq2SeqError

__all__ = [
    "DECODING_DTYPES",
    "avoid_per_shape_attention_plans",
    "cpu_has_fast_bf16",
    "limit_onednn_cache",
    "resolve_device",
    "resolve_precision",
    "retain_freed_memory",
]


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> the first CUDA device when there is one, else the CPU.

    Raises:
        Seq2SeqError: ``name`` is not a device, or a CUDA device this machine does not have.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise Seq2SeqError(f"unknown device '{name}' (use cpu, cuda, cuda:N or auto)") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise Seq2SeqError(f"device '{name}': CUDA is not available on this machine (use cpu or auto)")
        if device.index is not None and device.index >= count:
            raise Seq2SeqError(f"device '{name}': this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    return device


DECODING_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_has_fast_bf16() -> bool:
    """True when oneDNN has native bf16 kernels on this CPU (AVX512-BF16 / AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto``: bf16 autocast on CUDA and on CPUs with native bf16 (faster there), else fp32."""
    if precision != "auto":
        return precision
    if device.type == "cuda" or (device.type == "cpu" and cpu_has_fast_bf16()):
        return "bf16"
    return "fp32"


def limit_onednn_cache(capacity: int = 64) -> None:
    """Cap oneDNN's cache of compiled kernels at ``capacity`` unless ONEDNN_PRIMITIVE_CACHE_CAPACITY
    is set already (oneDNN reads it at its first kernel, so call this early).

    The default keeps 1,024 kernels, each with its own scratch memory, and training's varying
    batch shapes fill it: resident memory grows by gigabytes, at no gain in speed
    (docs/performance.md).
    """
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", str(capacity))


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (glibc's malloc.h)


def retain_freed_memory(mmap_threshold: int = 32 << 20, trim_threshold: int = 256 << 20) -> bool:
    """Have glibc's malloc serve blocks up to ``mmap_threshold`` bytes from its heap and keep up
    to ``trim_threshold`` bytes of freed heap for reuse. Returns whether it was applied.

    By default glibc maps every large block (from 128 KB, a threshold it then adapts) fresh from
    the kernel and returns freed memory soon, so a decoding step's large tensors (the logits of
    every beam, the attention caches) fault their pages in again at every step, and decoding
    spends its time in page faults (docs/performance.md). The cost: the process keeps up to ``trim_threshold`` bytes
    of freed memory. A no-op off Linux/glibc, and where MALLOC_MMAP_THRESHOLD_ or
    MALLOC_TRIM_THRESHOLD_ is set (the user's choice wins).
    """
    if not sys.platform.startswith("linux"):
        return False
    if any(os.environ.get(v) for v in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")):
        return False
    try:
        libc = ctypes.CDLL(None)  # the C library this process runs on
        libc.gnu_get_libc_version  # noqa: B018 (glibc only: the mallopt parameters are glibc's)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(_M_TRIM_THRESHOLD, trim_threshold))


def avoid_per_shape_attention_plans() -> bool:
    """Take cuDNN out of the fused attention kernels PyTorch may pick on CUDA, unless
    ``SEQ2SEQ_CUDNN_ATTENTION=1``. Returns whether it was applied.

    PyTorch 2.11 sends bf16/fp16 ``scaled_dot_product_attention`` to cuDNN first on Hopper, and
    cuDNN builds an execution plan for every new shape (reported at 0.4-1 s each). Here shapes
    change all the time: token-budget batches vary in rows and length, and incremental decoding
    grows the key length at every step, so the first bf16 pass of a process ran many times
    slower than the next ones (docs/performance.md, one H200). FlashAttention and the
    memory-efficient kernel need no per-shape plan. fp32 never used cuDNN attention.
    """
    if os.environ.get("SEQ2SEQ_CUDNN_ATTENTION") == "1" or not torch.cuda.is_available():
        return False
    torch.backends.cuda.enable_cudnn_sdp(False)
    return True
