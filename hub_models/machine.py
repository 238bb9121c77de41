"""What machine this is, read once from /proc/cpuinfo: for cards, benchmark headers, the
default training precision and the inference mode `upscale()` picks. Off Linux the answers
fall back to `platform`.

A *CPU class* groups the machines one measured inference mode is valid for: the kind of bf16
arithmetic the CPU has natively and how many cores the process may use (rounded up to a
power of two), e.g. ``cpu:amx_bf16:2c``, ``cpu:avx512_bf16:16c``, ``cpu:no_bf16:2c``. The
benchmark stores one mode per class; `upscale()` looks up the class of the CPU it runs on."""

from __future__ import annotations

import os
import platform
from functools import lru_cache
from pathlib import Path

#: bf16 arithmetic tiers, fastest first: AMX tiles, AVX512-BF16 dot products, none (emulated)
BF16_TIERS = ("amx_bf16", "avx512_bf16", "no_bf16")


@lru_cache(maxsize=1)
def cpuinfo_text() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def _field(name: str, cpuinfo: str) -> str | None:
    for line in cpuinfo.splitlines():
        if line.startswith(name):
            return line.split(":", 1)[1].strip()
    return None


def cpu_model_name(cpuinfo: str | None = None) -> str:
    """The CPU's model name, else the machine type."""
    return _field("model name", cpuinfo_text() if cpuinfo is None else cpuinfo) or platform.processor() or platform.machine()


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The instruction-set flags of the first CPU (empty when unknown)."""
    return set((_field("flags", cpuinfo_text() if cpuinfo is None else cpuinfo) or "").split())


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """True when the CPU has bf16 arithmetic instructions (AVX512-BF16 or AMX-BF16).

    `torch.ops.mkldnn._is_mkldnn_bf16_supported()` is not this test: it is also true on
    AVX512BW CPUs without AVX512-BF16, where oneDNN emulates bf16 (slower than fp32
    channels_last in training on such a Xeon: bench/results/train_speed_xeon.md)."""
    return cpu_bf16_tier(cpuinfo) != "no_bf16"


def cpu_bf16_tier(cpuinfo: str | None = None) -> str:
    """"amx_bf16", "avx512_bf16" or "no_bf16" (see `BF16_TIERS`)."""
    flags = cpu_flags(cpuinfo)
    return next((tier for tier in BF16_TIERS[:2] if tier in flags), "no_bf16")


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask; os.cpu_count() where unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def cpu_class(cpuinfo: str | None = None, cores: int | None = None) -> str:
    """The CPU class key of this machine (or of `cpuinfo` with `cores`), e.g. ``cpu:amx_bf16:2c``:
    bf16 tier and usable cores rounded up to a power of two."""
    n = max(1, cores if cores is not None else usable_cores())
    return f"cpu:{cpu_bf16_tier(cpuinfo)}:{1 << (n - 1).bit_length()}c"
