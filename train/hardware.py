"""What CPU this is, read once from /proc/cpuinfo: for cards, benchmark headers and the
default training precision. Off Linux the answers fall back to `platform`."""

from __future__ import annotations

import platform
from functools import lru_cache
from pathlib import Path


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
    channels_last in training on such a Xeon: bench/train_speed_xeon.md)."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags(cpuinfo))
