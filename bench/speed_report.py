"""The speed part's tables: speed.csv / modes.csv / bounds.csv / scaling.csv rows and the
markdown of speed.md (speed, bounds, modes tried, cost against output size), as column specs."""

from __future__ import annotations

from bench import peaks as bench_peaks
from bench.report import Column, fixed, mib, sci, table, text, times
from bench.speed import GOAL_MS, MAX_DPSNR, MIN_SPEEDUP

SPEED_COLUMNS = [
    "model", "weights", "scale", "input", "output", "params_m", "gflops",
    "fp32_ms", "fp32_img_s_b16", "fp32_peak_mib", "fastest_mode", "fastest_ms",
    "default_mode", "default_ms", "default_img_s_b16", "default_peak_mib", "x_bicubic",
    "gflop_s", "pct_peak", "goal_100ms", "bound",
]
MODE_COLUMNS = ["model", "mode", "ms_b1", "vs_fp32", "compile_s", "max_abs_diff", "dpsnr_y",
                "fidelity_psnr_y", "images", "eligible", "chosen", "note"]
SCALING_COLUMNS = ["model", "mode", "output", "input", "gflops", "ms", "peak_mib", "ms_per_mpix", "note"]


def _bicubic(results: list[dict]) -> dict | None:
    return next((r for r in results if r["architecture"] == "bicubic"), None)


def _x_bicubic(r: dict, bic: dict | None) -> float | None:
    return r["default_ms"] / bic["default_ms"] if bic and bic["default_ms"] else None


def speed_csv_row(r: dict, results: list[dict]) -> dict:
    """The speed.csv row of one `speed_subject` result (its bound row in r["_bound"])."""
    b = r.get("_bound", {})
    return {
        "model": r["label"], "weights": r["weights"], "scale": r["scale"], "input": r["lr"], "output": r["out"],
        "params_m": r["params"] / 1e6, "gflops": r["flops"] / 1e9, "fp32_ms": r["fp32_ms"],
        "fp32_img_s_b16": r.get("fp32_img_s_b16"), "fp32_peak_mib": r.get("fp32_peak_mib"),
        "fastest_mode": r["fastest_mode"], "fastest_ms": r["fastest_ms"], "default_mode": r["default_mode"],
        "default_ms": r["default_ms"], "default_img_s_b16": r.get("default_img_s_b16"),
        "default_peak_mib": r.get("default_peak_mib"), "x_bicubic": _x_bicubic(r, _bicubic(results)),
        "gflop_s": b.get("gflop_s"), "pct_peak": b.get("pct_peak"),
        "goal_100ms": "" if r["architecture"] == "bicubic" else ("yes" if r["default_ms"] <= GOAL_MS else "no"),
        "bound": b.get("verdict"),
    }


# ---------------------------------------------------------------------------------------
# cells that combine fields
# ---------------------------------------------------------------------------------------
def _goal(r: dict) -> str:
    if r["architecture"] == "bicubic":
        return ""
    return "yes" if r["default_ms"] <= GOAL_MS else f"no, {r['default_ms'] / GOAL_MS:.1f}x over"


def _has_limit(r: dict) -> bool:
    return bool(r["flops"] and (r.get("_bound") or {}).get("ms_at_peak"))


def _limit_ms(r: dict) -> str:
    if not _has_limit(r):
        return ""
    return f"{r['_bound']['ms_at_peak']:.1f} ({bench_peaks.precision_of(r['default_mode'])})"


def _limit_pct(r: dict) -> str:
    return fixed(0)(r["_bound"].get("pct_peak")) if _has_limit(r) else ""


def _tiled(t: dict | None) -> str:
    if not t:
        return ""
    if t.get("mpix_s") is None:
        return t.get("note", "")
    return f"{t['mpix_s']:.2f} MP/s, {mib(t.get('peak_mib'))} MiB" + (f" ({t['note']})" if t.get("note") else "")


def _conv_share(b: dict) -> str:
    return f"{b['conv_pct']:.0f}%" + (f" ({b['conv_gflop_s']:.0f})" if b.get("conv_gflop_s") else "")


def _mode_note(m: dict) -> str:
    return m.get("note") or (m.get("eligible", "") if str(m.get("eligible", "")).startswith("no") else "")


def _size_cell(s: dict) -> str:
    if s.get("ms") is not None:
        return (f"{s['ms']:.0f} ms / {s.get('gflops', 0):.1f} GF"
                + (f" / {mib(s['peak_mib'])} MiB" if s.get("peak_mib") is not None else ""))
    return (f"{s['gflops']:.1f} GF, " if s.get("gflops") is not None else "") + (s.get("note") or "-")


def _growth(r: dict) -> str:
    timed = [(s["output"], s["ms"]) for s in r["scaling"] if s.get("ms")]
    if len(timed) < 2:
        return ""
    (a, ta), (b, tb) = timed[0], timed[-1]
    return f"{tb / ta:.1f}x time for {(b / a) ** 2:.0f}x pixels"


# ---------------------------------------------------------------------------------------
# the tables
# ---------------------------------------------------------------------------------------
def speed_columns(bic: dict | None) -> list[Column]:
    return [
        Column("label", "model"), Column("weights", "weights"),
        Column("scale", "scale (px)", value=lambda r: f"x{r['scale']} ({r['lr']}->{r['out']})"),
        Column("params", "params (M)", value=lambda r: f"{r['params'] / 1e6:.2f}"),
        Column("flops", "GFLOPs", fixed(2), value=lambda r: r["flops"] / 1e9),
        Column("fp32_ms", "fp32 ms (b1)", fixed(1)), Column("fp32_img_s_b16", "fp32 img/s (b16)", fixed(1)),
        Column("fp32_peak_mib", "fp32 peak MiB (b1)", mib), Column("fastest_mode", "fastest mode"),
        Column("fastest_ms", "fastest ms", fixed(1)), Column("default_mode", "default mode"),
        Column("default_ms", "default ms (b1)", fixed(1)), Column("default_img_s_b16", "default img/s (b16)", fixed(1)),
        Column("default_peak_mib", "default peak MiB", mib),
        Column("x_bicubic", "x bicubic", times(0), value=lambda r: _x_bicubic(r, bic)),
        Column("goal", "<= 100 ms", value=_goal),
        Column("limit_ms", "limit: ms at peak (precision)", value=_limit_ms),
        Column("limit_pct", "% of peak", value=_limit_pct),
        Column("tiled", "tiled job to 4096x4096: MP/s, peak MiB", _tiled),
    ]


BOUND_TABLE = [
    Column("model", "model"), Column("ms", "ms", fixed(1)), Column("gflop_s", "GFLOP/s", fixed(1)),
    Column("pct_peak", "% of peak", fixed(0)), Column("ms_at_peak", "ms at peak", fixed(1)),
    Column("conv_pct", "conv % (GFLOP/s)", value=_conv_share), Column("top_ops", "top ops (% of time)"),
    Column("verdict", "verdict"),
]
MODE_TABLE = [
    Column("model", "model"), Column("mode", "mode"), Column("ms_b1", "ms (b1)", fixed(1)),
    Column("vs_fp32", "speed vs fp32", times(2)), Column("compile_s", "compile s", fixed(1)),
    Column("max_abs_diff", "max |diff|", sci), Column("dpsnr_y", "dPSNR-Y (dB)", fixed(4)),
    Column("fidelity_psnr_y", "PSNR-Y vs fp32 output", fixed(1)), Column("chosen", "chosen", text),
    Column("note", "note", value=_mode_note),
]


def scaling_columns(sizes: list[int]) -> list[Column]:
    def at(size):
        return lambda r: _size_cell({s["output"]: s for s in r["scaling"]}.get(size, {}))
    return [Column("label", "model"), Column("default_mode", "mode"),
            *[Column(f"out_{s}", f"{s}x{s}", value=at(s)) for s in sizes],
            Column("growth", "growth", value=_growth)]


def _intro(results: list[dict], env: dict) -> str:
    untrained = any(r["weights"].startswith("untrained") for r in results)
    return (
        f"Output {env['out_size']}x{env['out_size']}, batch 1 latency = median of `upscale()` "
        f"(bicubic pre-upsampling, padding and clamp included); throughput at batch {env['b16']}. "
        f"{env['device_desc']}, {env['threads']} threads, load average {env['load_start']} at the start. "
        f"Dense-conv peaks measured in this run: "
        + ", ".join(f"{p} {v['gflop_s']:.0f} GFLOP/s" for p, v in env.get("peaks", {"fp32": env["peak"]}).items())
        + f" ({env['peak']['test']}; each model's limit uses the peak of its mode's precision). "
        f"Modes key of this machine: `{env.get('cpu_class', env['device'])}`. "
        + ("Speed does not depend on the weights: rows marked 'untrained' time the default config with random weights. "
           if untrained else "")
        + f"Peak memory: {env['memory_method']}. fp32 at batch 16 is left blank for models whose batch of 16 "
        "takes more than twice the measurement budget (their default mode is measured)."
        + (f" **{env['busy'][0].upper() + env['busy'][1:]}.**" if env.get("busy") else ""))


def speed_markdown(results: list[dict], bounds: list[dict], env: dict) -> str:
    """speed.md's first four tables (the sections of bench/* follow them)."""
    out = [_intro(results, env), table(speed_columns(_bicubic(results)), results)]
    out.append("\n**What bounds each model** (default mode, batch 1; `ms at peak` = its FLOPs at the measured conv "
               "peak, a floor no kernel tuning can beat):\n")
    out.append(table(BOUND_TABLE, bounds))
    out.append(f"\n**Modes tried** (batch 1; a default mode must be >= {MIN_SPEEDUP:.2f}x faster than fp32 and change "
               f"Y-PSNR by < {MAX_DPSNR} dB; dPSNR measured on {env['mode_data_note']}):\n")
    out.append(table(MODE_TABLE, [m for r in results for m in r["modes"]]))
    out.append("\n**Cost against output size** (batch 1, default mode; ms / GFLOPs / peak MiB):\n")
    out.append(table(scaling_columns(env["scaling_sizes"]), results))
    return "\n".join(out) + "\n"
