"""What this CPU can do, and the defaults that follow from it: the name timings are quoted with, its
instruction-set flags, whether bf16 is native, and how many threads one model should use."""
from __future__ import annotations

import os
import platform
from functools import lru_cache
from pathlib import Path

import torch


@lru_cache(maxsize=1)
def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


@lru_cache(maxsize=1)
def cpu_name() -> str:
    """The CPU model, for saying where timings come from."""
    for line in _cpuinfo():
        if line.lower().startswith(("model name", "hardware", "processor\t: arm")):
            return line.split(":", 1)[1].strip()
    return f"{platform.processor() or platform.machine()} CPU"


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The instruction-set flags the kernel reports (x86 `flags`, ARM `Features`); empty where unknown."""
    for line in _cpuinfo():
        if line.lower().startswith(("flags", "features")):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def simd_summary() -> str:
    """The flags that decide which kernels run fast here (AVX2 / AVX-512 / VNNI / bf16 / AMX)."""
    keep = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "asimd", "bf16",
            "i8mm", "fma")
    have = [f for f in keep if f in cpu_flags()]
    return " ".join(have) or "no SIMD flags reported"


def native_bf16(device: str = "cpu") -> bool:
    """True where bf16 arithmetic runs in hardware: CUDA devices that support it, CPUs with AVX-512 BF16 or AMX
    (x86) or the BF16 extension (ARM). Elsewhere bf16 autocast is emulated and several times slower."""
    if device.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16", "bf16"})


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:              # macOS, Windows
        return os.cpu_count() or 1


def default_threads(concurrent: int = 1) -> int:
    """Threads for one model so that `concurrent` models running at once do not oversubscribe the cores.
    Intra-op threads that outnumber free cores spin-wait and run many times slower than one thread."""
    return max(1, usable_cores() // max(1, concurrent))


def configure(threads: int) -> None:
    """One thread budget for every runtime in this process: torch's intra-op pool and OpenCV's. (onnxruntime
    takes its own per session: zoo.load(..., threads=).) A server that runs N requests at once gives each
    default_threads(N)."""
    import cv2

    torch.set_num_threads(max(1, threads))
    cv2.setNumThreads(max(1, threads))
