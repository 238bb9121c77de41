"""What bounds each model: its FLOPs at the measured conv peak (a floor no kernel tuning can
beat), the share of time per op category from the profiled call, and a verdict in words."""

from __future__ import annotations

from bench.profiling import CATEGORY_NAMES
from bench.speed import GOAL_MS, Context

BOUND_COLUMNS = ["model", "mode", "ms", "gflops", "gflop_s", "pct_peak", "ms_at_peak", "conv_pct",
                 "conv_gflop_s", "matmul_pct", "elementwise_pct", "norm_pct", "reduce_pool_pct",
                 "memory_pct", "resize_pct", "softmax_pct", "other_pct", "top_ops", "verdict"]
_NON_CONV = CATEGORY_NAMES[1:]
_NAMES = {"elementwise": "memory-bound elementwise ops", "norm": "normalisation",
          "reduce_pool": "reductions/pooling (attention statistics)", "memory": "copies/concat/pad",
          "matmul": "matmul/Linear (attention)", "softmax": "softmax (attention)", "resize": "resizing",
          "other": "other ops"}


def bound_row(res: dict, ctx: Context) -> dict:
    """The bounds-table row of one `speed_subject` result (default mode, batch 1)."""
    peak = ctx.peak_of(res["default_mode"])["gflop_s"]
    gflops = res["flops"] / 1e9
    ms = res["default_ms"]
    achieved = gflops / (ms / 1000) if ms else None
    profile = res.get("profile", {})
    share = profile.get("share", {})
    row = {"model": res["label"], "mode": res["default_mode"], "ms": ms, "gflops": gflops,
           "gflop_s": achieved, "pct_peak": 100 * achieved / peak if achieved else None,
           "ms_at_peak": 1000 * gflops / peak, "conv_gflop_s": profile.get("conv_gflop_s"),
           "top_ops": "; ".join(profile.get("top", []))}
    for cat in CATEGORY_NAMES:
        row[f"{cat}_pct"] = share.get(cat, 0.0)
    row["verdict"] = verdict(res, row, ctx)
    return row


def _slow_convs_part(res: dict, peak: float) -> str:
    """Convs running under 10% of the peak, when they take >= 5% of the time ("" otherwise)."""
    rows = res.get("profile", {}).get("rows", [])
    slow = [(us, label, gfs) for us, label, cat, gfs in rows if cat == "conv" and gfs is not None and gfs < 0.1 * peak]
    total_us = sum(r[0] for r in rows) or 1
    slow_us = sum(r[0] for r in slow)
    if slow_us / total_us < 0.05:
        return ""
    labels = list(dict.fromkeys(r[1].split(" @")[0] for r in sorted(slow, key=lambda r: -r[0])))[:3]
    return f"convs without a fast kernel {100 * slow_us / total_us:.0f}% ({', '.join(labels)})"


def verdict(res: dict, row: dict, ctx: Context) -> str:
    """FLOP-bound (even the peak misses the goal), or what besides the convs takes the time."""
    ms, gflops, peak = row["ms"], row["gflops"], ctx.peak_of(res["default_mode"])["gflop_s"]
    if res["architecture"] == "bicubic":
        return "reference (no network)"
    over = f"{ms / GOAL_MS:.1f}x over {GOAL_MS:.0f} ms" if ms > GOAL_MS else f"meets {GOAL_MS:.0f} ms"
    if row["ms_at_peak"] > GOAL_MS:
        return (f"{over}; FLOP-bound: {gflops:.1f} GFLOPs need >= {row['ms_at_peak']:.0f} ms even at the "
                f"measured conv peak ({peak:.0f} GFLOP/s): needs {row['ms_at_peak'] / GOAL_MS:.1f}x fewer FLOPs")
    non_conv = {k: row[f"{k}_pct"] for k in _NON_CONV}
    worst = max(non_conv, key=non_conv.get)
    parts = [f"runs at {row['pct_peak']:.0f}% of peak"]
    conv_eff = row.get("conv_gflop_s")
    if row["conv_pct"] >= 30 and conv_eff:
        parts.append(f"convs {row['conv_pct']:.0f}% of time at {conv_eff:.0f} GFLOP/s "
                     f"({100 * conv_eff / peak:.0f}% of peak)")
    slow = _slow_convs_part(res, peak)
    if slow:
        parts.append(slow)
    if non_conv[worst] >= 10:
        parts.append(f"{_NAMES[worst]} {non_conv[worst]:.0f}%")
    return f"{over}; " + "; ".join(parts)
