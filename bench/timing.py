"""Timing and memory of one call: the clocks every benchmark module shares.

Latency is wall time (CUDA events on a GPU, `perf_counter` after a sync elsewhere); peak
memory is the CUDA allocator's peak on a GPU and, on Linux CPUs, the growth of the resident
set's high-water mark (VmHWM) during the call."""

from __future__ import annotations

import ctypes
import os
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import torch


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op off CUDA)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_once(fn: Callable[[], Any], device: torch.device) -> float:
    """Seconds of one call: CUDA events on a GPU, perf_counter (after sync) elsewhere."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        sync(device)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure(fn: Callable[[], Any], device: torch.device, reps: int, budget_s: float,
            warmup: int = 1) -> dict:
    """Median/min seconds over up to `reps` timed calls after `warmup` calls, stopping once
    `budget_s` is spent (at least one timed call)."""
    first = None
    for _ in range(warmup):
        t = time_once(fn, device)
        first = t if first is None else first
    times: list[float] = []
    spent = 0.0
    while len(times) < reps and (not times or spent + statistics.median(times) <= budget_s):
        t = time_once(fn, device)
        times.append(t)
        spent += t
    return {"median_s": statistics.median(times), "min_s": min(times), "runs": len(times),
            "first_s": first if first is not None else times[0]}


def interleaved(runners: dict[str, Callable[[], Any]], device: torch.device, reps: int, budget_s: float,
                settle: bool = False) -> dict[str, list[float]]:
    """Seconds per call of each runner, timed in rounds (every runner once per round) so that
    all see the same machine load; stops after `reps` rounds or once `budget_s` per runner is
    spent. `settle`: an untimed call before each timed one (lets another engine's worker
    threads go idle first)."""
    times: dict[str, list[float]] = {key: [] for key in runners}
    spent = 0.0
    for _ in range(reps):
        for key, fn in runners.items():
            if settle:
                fn()
            t = time_once(fn, device)
            times[key].append(t)
            spent += t
        if spent > budget_s * len(runners):
            break
    return times


def load_average() -> str:
    """The 1/5/15-minute load averages, "a/b/c" ("n/a" where the platform has none)."""
    try:
        return "/".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


# ---------------------------------------------------------------------------------------
# peak memory
# ---------------------------------------------------------------------------------------
_LIBC = None


def _libc():
    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL("libc.so.6")
        except OSError:
            _LIBC = False
    return _LIBC


def _mallopt_mmap_threshold(nbytes: int) -> bool:
    libc = _libc()
    return bool(libc and libc.mallopt(-3, int(nbytes)))  # M_MMAP_THRESHOLD


def _malloc_trim() -> None:
    libc = _libc()
    if libc:
        libc.malloc_trim(0)  # give free heap pages back: reusing them shows up as growth again


def _proc_status_kib(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


class MemoryProbe:
    """Peak extra memory of one call (MiB): CUDA allocator peak on a GPU; on Linux CPUs the
    growth of VmHWM after resetting it through /proc/self/clear_refs."""

    def __init__(self, device: torch.device):
        self.device = device
        self.cpu_ok = False
        if device.type == "cpu":
            try:
                Path("/proc/self/clear_refs").write_text("5")
                self.cpu_ok = _proc_status_kib("VmHWM") is not None
            except OSError:
                self.cpu_ok = False
        if device.type == "cuda":
            self.method = "torch.cuda.max_memory_allocated minus memory allocated before the call"
        elif self.cpu_ok:
            self.method = ("peak resident-set growth during one call (Linux VmHWM reset via /proc/self/clear_refs, "
                           "after malloc_trim and with glibc's mmap threshold at 64 KiB during the call, so freed "
                           "buffers leave the resident set): activations and workspaces, weights excluded")
        else:
            self.method = "unavailable on this platform"

    def run(self, fn: Callable[[], Any]) -> float | None:
        if self.device.type == "cuda":
            return self._run_cuda(fn)
        if not self.cpu_ok:
            fn()
            return None
        _malloc_trim()
        _mallopt_mmap_threshold(64 * 1024)
        try:
            base = _proc_status_kib("VmRSS")
            Path("/proc/self/clear_refs").write_text("5")
            fn()
            peak = _proc_status_kib("VmHWM")
        finally:
            _mallopt_mmap_threshold(32 * 2**20)  # glibc's largest dynamic threshold
        return max(0.0, (peak - base) / 1024) if base is not None and peak is not None else None

    def _run_cuda(self, fn: Callable[[], Any]) -> float:
        sync(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        base = torch.cuda.memory_allocated(self.device)
        fn()
        sync(self.device)
        return (torch.cuda.max_memory_allocated(self.device) - base) / 2**20
