"""`python -m bench --part speed`: every architecture (and each checkpoint whose config differs
from its architecture's default) through `bench.speed.speed_subject`, then the further
sections; writes speed.md, speed/modes/bounds/scaling csv files and inference_modes.json."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

import hub_models
from bench import modes as bench_modes
from bench import peaks as bench_peaks
from bench.bounds import BOUND_COLUMNS, bound_row
from bench.datasets import synthetic_faces
from bench.profiling import model_config
from bench.report import write_csv
from bench.sections import speed_sections
from bench.speed import CPU_MODES, CUDA_MODES, Context, speed_subject
from bench.speed_report import MODE_COLUMNS, SCALING_COLUMNS, SPEED_COLUMNS, speed_csv_row, speed_markdown
from bench.timing import MemoryProbe, load_average
from hub_models.base import mode_key, normalize_inference_mode


def _measure_peaks(env: dict, device: torch.device, quick: bool, log) -> None:
    env["peaks"] = bench_peaks.conv_peaks(device, 3 if quick else 10)
    env["peak"] = env["peaks"]["fp32"]
    env["cpu_class"] = mode_key(device.type)
    log("  dense conv peaks: " + ", ".join(f"{k} {v['gflop_s']:.1f} GFLOP/s" for k, v in env["peaks"].items())
        + f"; modes key {env['cpu_class']}")


def speed_context(args, env: dict, datasets: list, device: torch.device, memory: MemoryProbe) -> Context:
    """The speed part's settings, with the mode-check images (the first face dataset's, else synthetic)."""
    face = next((d for d in datasets if d.archs is None and d.images), None)
    mode_data = face.images if face else synthetic_faces(max(args.mode_images, 2), args.size)
    env["mode_data_note"] = (f"the first {args.mode_images} images of {face.name} (fewer for slow models: see "
                             "the images column of modes.csv)" if face else "smooth synthetic images (no face data)")
    modes = args.modes or (CUDA_MODES if device.type == "cuda" else CPU_MODES)
    return Context(device=device, quick=args.quick, out_size=args.size, reps=args.reps, budget_s=args.budget_s,
                   b16=16, modes=[normalize_inference_mode(m) for m in modes],
                   compile_ok=not args.no_compile, compile_max_ms=args.compile_max_ms,
                   allow_compile_default=args.allow_compile_default,
                   scaling_sizes=args.scaling_sizes, scaling_max_s=args.scaling_max_s,
                   mode_images=args.mode_images, mode_budget_s=10.0 if args.quick else 15.0,
                   protocol=args.protocol, peak=env["peak"], peaks=env["peaks"], memory=memory, mode_data=mode_data,
                   mode_data_note=env["mode_data_note"])


def _architecture_rows(archs: list[str], checkpoints: list, ctx: Context, args, log) -> list[dict]:
    """One result per architecture, untrained at its default config (test config when quick);
    the mode check runs on the architecture's first checkpoint when it has one."""
    by_arch_ckpt = {}
    for name, model in checkpoints:
        by_arch_ckpt.setdefault(model.architecture, (name, model))
    results = []
    for arch in archs:
        t0 = time.perf_counter()
        cls = hub_models.MODELS[arch]
        drift = by_arch_ckpt.get(arch) if not args.quick else None
        try:
            model = cls(**(cls.test_config if args.quick else {})).to(ctx.device).eval()
            res = speed_subject(arch, model, "untrained test config" if args.quick else "untrained default config",
                                ctx, drift_model=drift[1] if drift else None)
        except Exception as err:
            log(f"  speed {arch}: FAILED {type(err).__name__}: {err}")
            continue
        res["drift_weights"] = f"checkpoint {drift[0]}" if drift else "untrained (numeric drift only)"
        if arch == "bicubic":
            res["weights"] = "none"
        res["_bound"] = bound_row(res, ctx)
        results.append(res)
        log(f"  speed {arch}: {res['flops'] / 1e9:.2f} GFLOPs, fp32 {res['fp32_ms']:.1f} ms, "
            f"{res['default_mode']} {res['default_ms']:.1f} ms ({time.perf_counter() - t0:.0f} s)")
    return results


def _checkpoint_rows(checkpoints: list, chosen_modes: dict, ctx: Context, args, log) -> list[dict]:
    """Checkpoints whose config differs from the default get their own row (their arch's mode)."""
    results = []
    for name, model in checkpoints:
        if args.quick or model_config(hub_models.MODELS[model.architecture]()) == model_config(model):
            continue
        try:
            res = speed_subject(name, model, f"checkpoint {name}", ctx,
                                forced_mode=chosen_modes.get(model.architecture, "fp32"))
        except Exception as err:
            log(f"  speed {name}: FAILED {type(err).__name__}: {err}")
            continue
        res["config_differs"] = True
        res["_bound"] = bound_row(res, ctx)
        results.append(res)
        log(f"  speed {name}: {res['default_ms']:.1f} ms")
    return results


def _write_speed(results: list[dict], sections: list[str], env: dict, args, device: torch.device,
                 out_dir: Path, log) -> None:
    bounds = [r["_bound"] for r in results]
    write_csv(out_dir / "speed.csv", [speed_csv_row(r, results) for r in results], SPEED_COLUMNS)
    write_csv(out_dir / "modes.csv", [m for r in results for m in r["modes"]], MODE_COLUMNS)
    write_csv(out_dir / "bounds.csv", bounds, BOUND_COLUMNS)
    write_csv(out_dir / "scaling.csv", [s for r in results for s in r["scaling"]], SCALING_COLUMNS)
    proposal = bench_modes.write_modes_file(out_dir / "inference_modes.json", results, device.type, env)
    if args.write_modes:
        bench_modes.write_modes_file(args.modes_file, results, device.type, env)
        log(f"  modes written to {args.modes_file}: {json.dumps(proposal['modes'])}")
    modes_shown = args.modes_file if args.write_modes else out_dir / "inference_modes.json"
    sections = [bench_modes.modes_markdown(modes_shown, env.get("cpu_class", device.type)), *sections]
    (out_dir / "speed.md").write_text(speed_markdown(results, bounds, env) + "\n" + "\n\n".join(sections))


def run_speed(args, env: dict, archs: list[str], datasets: list, checkpoints: list, device: torch.device,
              log) -> dict[str, str]:
    """The speed part; returns the default mode chosen per architecture."""
    memory = MemoryProbe(device)
    env["memory_method"] = memory.method
    _measure_peaks(env, device, args.quick, log)
    ctx = speed_context(args, env, datasets, device, memory)
    results = _architecture_rows(archs, checkpoints, ctx, args, log)
    chosen_modes = {r["label"]: r["default_mode"] for r in results}
    results += _checkpoint_rows(checkpoints, chosen_modes, ctx, args, log)
    sections = speed_sections(results, archs, ctx, args, env, args.out, log)
    env["load_end_speed"] = load_average()
    _write_speed(results, sections, env, args, device, args.out, log)
    return chosen_modes
