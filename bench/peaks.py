"""The limit: the machine's dense-conv peak in each precision, measured in the same run as the
models, and each model's FLOPs against the peak of the precision its default mode runs in."""

from __future__ import annotations

import contextlib

import torch

from bench.report import Column, fixed, table
from bench.timing import time_once

#: the peak test: a 3x3 conv 256->256 at 64x64, batch 1, channels_last (the shape of the
#: heavy convs of the larger models)
CHANNELS, SIDE = 256, 64
FLOPS = 2 * CHANNELS * CHANNELS * 9 * SIDE * SIDE


def _precisions(device: torch.device) -> list[str]:
    return ["fp32", "bf16", "fp16"] if device.type == "cuda" else ["fp32", "bf16"]


def precision_of(mode: str) -> str:
    """The arithmetic a mode's convolutions run in: "bf16", "fp16" or "fp32"."""
    tokens = mode.split("+")
    return "bf16" if "bf16" in tokens else "fp16" if "fp16" in tokens else "fp32"


def conv_peaks(device: torch.device, reps: int, budget_s: float = 10.0) -> dict[str, dict]:
    """{precision: {"gflop_s", "test", "best_of"}}: best of `reps` runs of the peak conv in fp32
    and under bf16 (and on CUDA fp16) autocast, as the models run them."""
    conv = torch.nn.Conv2d(CHANNELS, CHANNELS, 3, padding=1, bias=False).to(device).eval()
    x = torch.randn(1, CHANNELS, SIDE, SIDE, device=device).contiguous(memory_format=torch.channels_last)
    out = {}
    for precision in _precisions(device):
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        ctx = torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
        best, runs, spent = float("inf"), 0, 0.0
        with torch.no_grad(), ctx:
            for i in range(reps + 2):
                t = time_once(lambda: conv(x), device)
                spent += t
                if i >= 2:  # two warm-up runs (oneDNN picks and caches its kernels)
                    best, runs = min(best, t), runs + 1
                if spent > budget_s and runs:
                    break
        out[precision] = {"gflop_s": FLOPS / best / 1e9, "best_of": runs,
                          "test": f"conv3x3 {CHANNELS}->{CHANNELS} @{SIDE}x{SIDE}, {precision}"
                                  f"{' autocast' if dtype else ''} channels_last, batch 1"}
    return out


def limit_row(label: str, flops: int, mode: str, ms: float, peaks: dict[str, dict], goal_ms: float) -> dict:
    """FLOPs per face, the peak of the mode's precision, the latency that peak gives, the
    achieved fraction; and the same at the bf16 peak (what the FLOPs allow on this machine)."""
    precision = precision_of(mode)
    peak = peaks[precision]["gflop_s"]
    gflops = flops / 1e9
    row = {"model": label, "mode": mode, "precision": precision, "gflops": gflops, "ms": ms,
           "peak_gflop_s": peak, "ms_at_peak": 1000 * gflops / peak,
           "pct_of_peak": 100 * (1000 * gflops / peak) / ms if ms else None,
           "ms_at_bf16_peak": 1000 * gflops / peaks["bf16"]["gflop_s"] if "bf16" in peaks else None}
    if not flops:
        row["note"] = "no network"
    elif row["pct_of_peak"] is not None and row["pct_of_peak"] >= 70:
        row["note"] = "at >= 70% of its precision's peak"
    else:
        row["note"] = f"{row['pct_of_peak']:.0f}% of its precision's peak"
    allowed = row["ms_at_bf16_peak"]
    if flops and allowed is not None:
        row["note"] += (f"; FLOPs allow {goal_ms:.0f} ms (bf16 peak: {allowed:.0f} ms)" if allowed < 0.7 * goal_ms
                        else f"; FLOPs do not allow {goal_ms:.0f} ms in 70% of the time even at the bf16 peak "
                             f"({allowed:.0f} ms)")
    return row


LIMIT_COLUMNS = ["model", "mode", "precision", "gflops", "ms", "peak_gflop_s", "ms_at_peak", "pct_of_peak",
                 "ms_at_bf16_peak", "note"]


LIMIT_TABLE = [
    Column("model", "model"), Column("mode", "mode"), Column("precision", "precision"),
    Column("gflops", "GFLOPs / face", fixed(2)), Column("ms", "ms (b1)", fixed(1)),
    Column("peak_gflop_s", "peak GFLOP/s", fixed(0)), Column("ms_at_peak", "ms at peak", fixed(1)),
    Column("pct_of_peak", "% of peak", fixed(0)), Column("ms_at_bf16_peak", "ms at bf16 peak", fixed(1)),
    Column("note", "note"),
]


def limit_markdown(rows: list[dict], peaks: dict[str, dict]) -> str:
    head = ("**The limit** (default mode, batch 1): FLOPs per face (torch.utils.flop_counter, 2 per multiply-add); "
            "the dense-conv peak of the precision the mode runs in, measured in this run ("
            + "; ".join(f"{p}: {v['gflop_s']:.0f} GFLOP/s" for p, v in peaks.items())
            + f", {next(iter(peaks.values()))['test'].split(', ')[0]}, best of each); the latency that peak gives; "
            "the achieved fraction (latency at peak / measured latency):\n")
    return head + "\n" + table(LIMIT_TABLE, rows)
