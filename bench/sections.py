"""The speed part's further sections, after the speed tables: the limit (`bench.peaks`), other
engines (`bench.backends`, CPUs only), the tiled job (`bench.tiled`) and the GPU
(`bench.gpu`); each writes its csv and returns its markdown."""

from __future__ import annotations

from pathlib import Path

import torch

import hub_models
from bench import backends as bench_backends
from bench import gpu as bench_gpu
from bench import peaks as bench_peaks
from bench import tiled as bench_tiled
from bench.report import fmt, write_csv
from bench.speed import GOAL_MS, Context


def _fresh_model(label: str, quick: bool):
    """An untrained model of architecture `label` (its test config in quick runs)."""
    cls = hub_models.MODELS[label]
    return cls(**(cls.test_config if quick else {})).eval()


def limit_section(results: list[dict], env: dict, out_dir: Path) -> str:
    limits = [bench_peaks.limit_row(r["label"], r["flops"], r["default_mode"], r["default_ms"], env["peaks"], GOAL_MS)
              for r in results]
    write_csv(out_dir / "limits.csv", limits, bench_peaks.LIMIT_COLUMNS)
    return bench_peaks.limit_markdown(limits, env["peaks"])


def engines_section(by_arch: dict[str, dict], ctx: Context, args, out_dir: Path, log) -> str:
    """onnxruntime / OpenVINO against each architecture's default mode; an engine that wins
    becomes the row's `backend` (stored with --write-modes)."""
    engines = bench_backends.available_engines() if ctx.device.type == "cpu" and not args.no_engines else {}
    rows = []
    for label, r in by_arch.items():
        if not (engines and r["params"]):
            continue
        mine = bench_backends.measure_backends(label, _fresh_model(label, args.quick), r["default_mode"], r["lr"],
                                               ctx.reps, ctx.budget_s, engines)
        rows += mine
        log(f"  engines {label}: " + ", ".join(f"{e['engine']} {fmt(e.get('engine_ms'))} ms" for e in mine)
            + f" (PyTorch {r['default_ms']:.1f} ms)")
        wins = [e for e in mine if str(e.get("verdict", "")).startswith("wins")]
        if wins:
            best = min(wins, key=lambda e: e["engine_ms"])
            r["backend"] = best["engine"]
            r["backend_evidence"] = {k: best.get(k) for k in ("torch_mode", "torch_ms", "engine_ms", "speedup",
                                                               "max_abs_diff")}
    write_csv(out_dir / "backends.csv", rows, bench_backends.BACKEND_COLUMNS)
    if ctx.device.type != "cpu":
        return "**Other engines**: measured on CPUs only.\n"
    return bench_backends.backends_markdown(rows, engines)


def tiled_rows(results: list[dict], by_arch: dict[str, dict], ctx: Context, args, out_dir: Path) -> None:
    """The tiled job of each architecture, into tiled.csv and each result's "tiled" (a column
    of the speed table)."""
    tiled = []
    for label, r in by_arch.items():
        per_mpix = r["default_ms"] / 1000 / (r["out"] ** 2 / 1e6)
        tiled.append(bench_tiled.measure_tiled(label, _fresh_model(label, args.quick), r["default_mode"], ctx.memory,
                                               per_mpix, args.tiled_max_s,
                                               out_side=192 if args.quick else bench_tiled.OUT_SIDE))
    write_csv(out_dir / "tiled.csv", tiled, bench_tiled.TILED_COLUMNS)
    for r in results:
        r["tiled"] = next((t for t in tiled if t["model"] == r["label"]), None)


def gpu_section(by_arch: dict[str, dict], ctx: Context, args, env: dict, out_dir: Path) -> str:
    rows = []
    if torch.cuda.is_available():
        for label in by_arch:
            rows += bench_gpu.measure_gpu(label, _fresh_model(label, args.quick), ctx.out_size, ctx.reps,
                                          not args.no_compile)
    write_csv(out_dir / "gpu.csv", rows, bench_gpu.GPU_COLUMNS)
    return bench_gpu.gpu_markdown(rows, env["device_desc"])


def speed_sections(results: list[dict], archs: list[str], ctx: Context, args, env: dict, out_dir: Path,
                   log) -> list[str]:
    """The limit, other engines, tiled job and GPU sections (bench/*): csv files and markdown."""
    by_arch = {r["label"]: r for r in results if r["label"] in archs}
    sections = [limit_section(results, env, out_dir), engines_section(by_arch, ctx, args, out_dir, log)]
    tiled_rows(results, by_arch, ctx, args, out_dir)
    sections.append(gpu_section(by_arch, ctx, args, env, out_dir))
    return sections
