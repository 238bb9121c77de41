"""The speed part: everything the speed tables say about one model (`speed_subject`), at its
default config and default scale, output `--size` (128: LR 32 at x4, 16 at x8).

Latency is the median wall time of `model.upscale(lr)` at batch 1 (bicubic pre-upsampling,
padding, clamp included); every candidate mode is timed in interleaved rounds; bf16/fp16
modes more than `PROBE_SLOWDOWN` x slower than fp32 on a 32x32-output probe are not timed at
full size. The default mode is the fastest one that is >= `MIN_SPEEDUP` x faster than fp32 and
changes the mean Y-PSNR (against HR) by < `MAX_DPSNR` dB (`mode_drift`). Then throughput at
batch 16, peak memory, one profiled call (where the time goes) and the cost against output
size, each in the default mode."""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from bench import peaks as bench_peaks
from bench.profiling import count_flops, profile_ops
from bench.timing import MemoryProbe, interleaved, measure
from hub_models import metrics
from hub_models.degradations import bicubic_lr_8bit, mod_crop

GOAL_MS = 100.0  # the goal: one 128x128 face, batch 1, median
MAX_DPSNR = 0.05  # a fast mode may cost less than this (dB, Y-PSNR) against fp32
MIN_SPEEDUP = 1.05  # ... and must be at least this much faster to be worth it
# modes this much slower than fp32 on the probe are not timed at full size: 3x, not 1.5x, because
# the probe (8x8 LR at x4) is too small for bf16 to pay off: RAFSR bf16+channels_last, 1.5x slower
# there, is about 1.8x faster than channels_last at 128 px (no native bf16 is typically 3-20x slower)
PROBE_SLOWDOWN = 3.0
CPU_MODES = ["fp32", "channels_last", "bf16", "bf16+channels_last", "compile+channels_last"]
CUDA_MODES = ["fp32", "channels_last", "bf16", "bf16+channels_last", "fp16", "fp16+channels_last",
              "compile+channels_last"]


@dataclass
class Context:
    device: torch.device
    quick: bool
    out_size: int
    reps: int
    budget_s: float
    b16: int
    modes: list[str]
    compile_ok: bool
    compile_max_ms: float
    allow_compile_default: bool
    scaling_sizes: list[int]
    scaling_max_s: float
    mode_images: int
    mode_budget_s: float
    protocol: str
    peak: dict
    memory: MemoryProbe
    mode_data: list[torch.Tensor]
    mode_data_note: str
    peaks: dict = field(default_factory=dict)  # {precision: peak}, bench.peaks.conv_peaks

    def peak_of(self, mode: str) -> dict:
        """The measured conv peak of the precision `mode` runs in (fp32's where not measured)."""
        return self.peaks.get(bench_peaks.precision_of(mode), self.peak)


def mode_drift(model, mode: str, ctx: Context, fp32_cache: dict, fp32_s_per_image: float) -> dict:
    """Mean Y-PSNR change (mode minus fp32, against HR) on the mode-check images, the Y-PSNR
    of the mode's output against fp32's output, and the largest absolute difference."""
    scale = model.default_scale
    per_image = max(fp32_s_per_image, 1e-4)
    n = int(min(ctx.mode_images, max(2, ctx.mode_budget_s / (2 * per_image))))
    images = [mod_crop(im.unsqueeze(0), scale)[0] for im in ctx.mode_data]
    images = [im for im in images if im.shape == images[0].shape][:n]
    hr = torch.stack(images)
    lr = bicubic_lr_8bit(hr, scale)

    def run(m: str) -> torch.Tensor:
        model.inference_mode = m
        return torch.cat([model.upscale(chunk.to(ctx.device), scale=scale).cpu() for chunk in lr.split(8)])

    key = (id(model), len(images))
    if key not in fp32_cache:
        sr32 = run("fp32")
        fp32_cache[key] = (sr32, metrics.psnr(sr32, hr, protocol=ctx.protocol, scale=scale).mean().item())
    sr32, p32 = fp32_cache[key]
    sr = run(mode)
    p = metrics.psnr(sr, hr, protocol=ctx.protocol, scale=scale).mean().item()
    fidelity = metrics.psnr(sr, sr32, protocol=ctx.protocol, scale=scale).mean().item()
    return {"dpsnr_y": p - p32, "fidelity_psnr_y": fidelity, "max_abs_diff": (sr - sr32).abs().max().item(),
            "images": len(images)}


# ---------------------------------------------------------------------------------------
# the modes at batch 1
# ---------------------------------------------------------------------------------------
def _candidate_modes(ctx: Context, params: int, forced_mode: str | None) -> list[str]:
    modes = [forced_mode] if forced_mode else ctx.modes
    if params == 0:  # bicubic: no network a mode could change; the reference is plain fp32
        modes = ["fp32"]
    return modes if "fp32" in modes else ["fp32", *modes]


def _compile_skip_note(mode: str, ctx: Context, fp32_b1_s: float | None) -> str:
    """Why a compile mode is not timed ("" when it is, or when `mode` does not compile)."""
    if "compile" not in mode:
        return ""
    if not ctx.compile_ok:
        return "not timed (--no-compile / quick run)"
    if fp32_b1_s is not None and 1000 * fp32_b1_s > ctx.compile_max_ms:
        return (f"not timed: fp32 takes {1000 * fp32_b1_s:.0f} ms > --compile-max-ms "
                f"{ctx.compile_max_ms:g} (compiling takes minutes at this size; the convs, not the "
                "glue compile can fuse, dominate: see the bounds table)")
    return ""


def _slow_on_probe(model, mode: str, probe_lr, row: dict, state: dict, device) -> bool:
    """A reduced-precision mode much slower than fp32 on the small probe (noted in `row`)."""
    if state["probe_fp32"] is None:
        model.inference_mode = "fp32"
        state["probe_fp32"] = measure(lambda: model.upscale(probe_lr), device, 3, 2.0)["min_s"]
        model.inference_mode = mode
    probe = measure(lambda: model.upscale(probe_lr), device, 3, 2.0)["min_s"]
    if probe <= PROBE_SLOWDOWN * state["probe_fp32"]:
        return False
    row["vs_fp32"] = state["probe_fp32"] / probe
    row["note"] = f"{probe / state['probe_fp32']:.1f}x slower than fp32 on the 32x32-output probe: not timed at full size"
    return True


def _runnable_modes(model, modes: list[str], result: dict, ctx: Context, lr1, probe_lr,
                    forced_mode: str | None) -> list[tuple[str, dict]]:
    """One row per candidate mode in result["modes"]; each mode that runs is warmed up (and
    compiled), its max |difference| from fp32 noted, and returned with its row."""
    model.inference_mode = "fp32"
    ref = model.upscale(lr1).cpu()
    state: dict[str, Any] = {"probe_fp32": None, "fp32_b1_s": None}
    runnable = []
    for mode in modes:
        row = {"model": result["label"], "mode": mode, "note": ""}
        result["modes"].append(row)
        row["note"] = _compile_skip_note(mode, ctx, state["fp32_b1_s"])
        if row["note"]:
            continue
        model.inference_mode = mode
        try:
            reduced = ("bf16" in mode or "fp16" in mode) and "compile" not in mode
            if reduced and not forced_mode and _slow_on_probe(model, mode, probe_lr, row, state, ctx.device):
                continue
            t0 = time.perf_counter()
            out = model.upscale(lr1)  # warm-up (and compilation for compile modes)
            if "compile" in mode:
                row["compile_s"] = time.perf_counter() - t0
                model.upscale(lr1)
            elif mode == "fp32":
                state["fp32_b1_s"] = measure(lambda: model.upscale(lr1), ctx.device, 1, 0, warmup=0)["median_s"]
            row["max_abs_diff"] = (out.cpu() - ref).abs().max().item()
            runnable.append((mode, row))
        except Exception as err:  # a mode this model or platform cannot run
            row["note"] = f"failed: {type(err).__name__}: {str(err).splitlines()[0][:120]}"
    return runnable


def _time_modes(model, runnable: list[tuple[str, dict]], result: dict, ctx: Context, lr1) -> dict[str, float]:
    """Median batch-1 seconds per runnable mode, timed in interleaved rounds so that every
    mode sees the same machine load; fills ms_b1 and vs_fp32 of the rows."""
    def runner(mode):
        def call():
            model.inference_mode = mode
            model.upscale(lr1)
        return call

    times = interleaved({mode: runner(mode) for mode, _ in runnable}, ctx.device, ctx.reps, ctx.budget_s)
    medians = {mode: statistics.median(times[mode]) for mode, _ in runnable}
    for mode, row in runnable:
        row["ms_b1"] = 1000 * medians[mode]
    fp32_ms = result["modes"][0].get("ms_b1")
    for row in result["modes"]:
        if row.get("ms_b1") and fp32_ms:
            row["vs_fp32"] = fp32_ms / row["ms_b1"]
    return medians


def _choose_mode(model, result: dict, ctx: Context, drift_model, forced_mode: str | None) -> str:
    """The default mode: `forced_mode`, else the fastest eligible mode that is fast enough and
    harmless (every eligible mode's dPSNR is measured, bf16 on every architecture)."""
    if forced_mode:
        result["mode_source"] = "given"
        return forced_mode
    result["mode_source"] = "measured"
    if result["params"] == 0:
        return "fp32"
    chosen = "fp32"
    fp32_cache: dict = {}
    fp32_ms = result["modes"][0]["ms_b1"]
    drift_on = drift_model if drift_model is not None else model
    for row in sorted((r for r in result["modes"] if r.get("ms_b1")), key=lambda r: r["ms_b1"]):
        mode = row["mode"]
        eligible = "compile" not in mode or ctx.allow_compile_default
        row["eligible"] = "yes" if eligible else "no (compile: 10-20 s first call per input size)"
        if mode == "fp32" or not eligible:
            continue
        if row["vs_fp32"] < MIN_SPEEDUP:
            row["eligible"] = f"no (< {MIN_SPEEDUP:.2f}x faster)"
            continue
        drift = mode_drift(drift_on, mode, ctx, fp32_cache, fp32_ms / 1000)
        row.update(drift)
        if abs(drift["dpsnr_y"]) < MAX_DPSNR:
            chosen = mode if chosen == "fp32" else chosen
            continue
        row["eligible"] = f"no (|dPSNR-Y| >= {MAX_DPSNR} dB)"
    drift_on.inference_mode = None
    return chosen


# ---------------------------------------------------------------------------------------
# batch 16, memory, profile, scaling (default mode)
# ---------------------------------------------------------------------------------------
def _throughput_and_memory(model, result: dict, chosen: str, ctx: Context, lr1, lr16) -> None:
    """Images/s at batch 16 and peak memory (b1, b16) of fp32 and of the default mode."""
    for key, mode in (("fp32", "fp32"), ("default", chosen)):
        if key == "default" and mode == "fp32":
            for k in ("img_s_b16", "peak_mib", "peak_mib_b16"):
                result[f"default_{k}"] = result[f"fp32_{k}"]
            continue
        model.inference_mode = mode
        single = result["default_ms"] if key == "default" else result["fp32_ms"]
        heavy = single / 1000 * ctx.b16 > ctx.budget_s
        if key == "fp32" and chosen != "fp32" and single / 1000 * ctx.b16 > 2 * ctx.budget_s:
            # slow model: batch 16 only in its default mode (fp32 throughput ~ 1000 / fp32 ms)
            result["fp32_img_s_b16"] = result["fp32_peak_mib_b16"] = None
            result["fp32_peak_mib"] = ctx.memory.run(lambda: model.upscale(lr1))
            continue
        m = measure(lambda: model.upscale(lr16), ctx.device, 1 if heavy else ctx.reps, ctx.budget_s,
                    warmup=0 if heavy else 1)
        result[f"{key}_img_s_b16"] = ctx.b16 / m["median_s"]
        result[f"{key}_peak_mib_b16"] = ctx.memory.run(lambda: model.upscale(lr16)) if not heavy else None
        result[f"{key}_peak_mib"] = ctx.memory.run(lambda: model.upscale(lr1))


def _profile(model, lr1, scale: int, device) -> dict:
    try:
        return profile_ops(model, lr1, scale, device)
    except Exception as err:
        return {"share": {}, "top": [f"profiler failed: {type(err).__name__}"], "conv_gflop_s": None}


def _estimate_s(result: dict, size: int, size_flops: int | None, previous: list, ctx: Context) -> float:
    """Seconds one run at output `size` should take: pixels (or FLOPs) times the time at the
    table's size, and the growth seen between the last two sizes timed."""
    estimate = result["default_ms"] / 1000 * (size / ctx.out_size) ** 2
    if size_flops and result["flops"]:
        estimate = max(estimate, result["default_ms"] / 1000 * size_flops / result["flops"])
    if len(previous) >= 2 and previous[-2][1] > 0:
        (s0, t0, _), (s1, t1, _) = previous[-2], previous[-1]
        estimate = max(estimate, t1 * (t1 / t0) ** (math.log(size / s1) / math.log(s1 / s0)))
    return estimate


def _time_size(model, row: dict, size: int, estimate: float, x, result: dict, ctx: Context) -> None:
    """ms and peak MiB of one output size (the table's size reuses the batch-1 figures)."""
    if size == ctx.out_size:
        row["ms"] = result["default_ms"]
        row["peak_mib"] = result.get("default_peak_mib")
    elif estimate > ctx.budget_s / 4:  # slow: one run, timed and measured for memory at once
        t0 = time.perf_counter()
        row["peak_mib"] = ctx.memory.run(lambda: model.upscale(x))
        row["ms"] = 1000 * (time.perf_counter() - t0)
        row["note"] = "one run (timed with the memory probe)"
    else:
        m = measure(lambda: model.upscale(x), ctx.device, min(ctx.reps, 3), ctx.budget_s)
        row["ms"] = 1000 * m["median_s"]
        row["peak_mib"] = ctx.memory.run(lambda: model.upscale(x))
    row["ms_per_mpix"] = row["ms"] / (size * size / 1e6)


def _scaling(model, result: dict, chosen: str, ctx: Context, g: torch.Generator) -> list[dict]:
    """Cost against output size: GFLOPs of every size, time and memory where one run is
    estimated under --scaling-max-s."""
    scale = result["scale"]
    rows = []
    previous: list[tuple[int, float, float]] = []  # (size, seconds, flops) of the sizes timed so far
    for size in sorted(ctx.scaling_sizes):
        row = {"model": result["label"], "mode": chosen, "output": size, "input": size // scale, "note": ""}
        rows.append(row)
        if size % scale or size // scale < 1:
            row["note"] = "size not a multiple of the scale"
            continue
        try:
            size_flops = count_flops(model, size // scale, scale)["total"]
            row["gflops"] = size_flops / 1e9
        except Exception as err:
            size_flops = None
            row["note"] = f"FLOP count failed: {type(err).__name__}"
        estimate = _estimate_s(result, size, size_flops, previous, ctx)
        if estimate > ctx.scaling_max_s:
            row["note"] = f"not timed: estimated {estimate:.0f} s per run (> {ctx.scaling_max_s:g} s)"
            continue
        x = torch.rand(1, 3, size // scale, size // scale, generator=g).to(ctx.device)
        try:
            _time_size(model, row, size, estimate, x, result, ctx)
            previous.append((size, row["ms"] / 1000, size_flops or 0))
        except Exception as err:
            row["note"] = f"failed: {type(err).__name__}: {str(err).splitlines()[0][:100]}"
    return rows


def speed_subject(label: str, model, weights: str, ctx: Context, drift_model=None,
                  forced_mode: str | None = None) -> dict:
    """Everything the speed tables say about one model: FLOPs, per-mode latency, the chosen
    mode (unless `forced_mode`), throughput and memory, where the time goes, scaling."""
    scale = model.default_scale
    if ctx.out_size % scale:
        raise ValueError(f"output {ctx.out_size} is not a multiple of the scale {scale}")
    lr_size = ctx.out_size // scale
    for m in (model, drift_model):  # PyTorch's modes are measured here, other engines in bench.backends
        if m is not None:
            m.inference_backend = "torch"
    g = torch.Generator().manual_seed(0)
    lr1 = torch.rand(1, 3, lr_size, lr_size, generator=g).to(ctx.device)
    lr16 = torch.rand(ctx.b16, 3, lr_size, lr_size, generator=g).to(ctx.device)
    params = sum(p.numel() for p in model.parameters())
    result: dict[str, Any] = {
        "label": label, "weights": weights, "scale": scale, "lr": lr_size, "out": ctx.out_size,
        "params": params, "flops": count_flops(model, lr_size, scale)["total"], "modes": [],
        "architecture": model.architecture,
    }
    probe_lr = torch.rand(1, 3, max(1, 32 // scale), max(1, 32 // scale), generator=g).to(ctx.device)
    modes = _candidate_modes(ctx, params, forced_mode)
    runnable = _runnable_modes(model, modes, result, ctx, lr1, probe_lr, forced_mode)
    medians = _time_modes(model, runnable, result, ctx, lr1)
    fastest = min(medians, key=medians.get)
    result["fastest_mode"], result["fastest_ms"] = fastest, 1000 * medians[fastest]
    result["fp32_ms"] = result["modes"][0].get("ms_b1")
    chosen = _choose_mode(model, result, ctx, drift_model, forced_mode)
    for row in result["modes"]:
        row["chosen"] = "yes" if row["mode"] == chosen else ""
    result["default_mode"] = chosen
    result["default_ms"] = next(r["ms_b1"] for r in result["modes"] if r["mode"] == chosen)
    _throughput_and_memory(model, result, chosen, ctx, lr1, lr16)
    model.inference_mode = chosen
    result["profile"] = _profile(model, lr1, scale, ctx.device)
    result["scaling"] = _scaling(model, result, chosen, ctx, g)
    model.inference_mode = None
    return result
