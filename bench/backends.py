"""onnxruntime and OpenVINO against PyTorch's default mode, timed in the same run (interleaved
rounds, batch 1, the speed table's face size). Each engine runs the file
`python -m hub_models export` writes (fp32); an engine is worth using as a backend where it
gives the same output (within `SAME_OUTPUT` of PyTorch's fp32 `upscale()`) and is at least
`MIN_WIN` faster than the default mode. Each timed call follows an untimed call of the same
engine, so that no engine is timed while another's worker threads still spin."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch

MIN_WIN = 1.20  # an engine must be >= 20% faster than PyTorch's default mode
SAME_OUTPUT = 1e-4  # max |difference| from PyTorch fp32 upscale()
ENGINES = ("onnxruntime", "openvino")
BACKEND_COLUMNS = ["model", "engine", "torch_mode", "torch_ms", "engine_ms", "speedup", "max_abs_diff", "verdict",
                   "note"]


def available_engines() -> dict[str, str]:
    """{engine: version} for the engines that import here."""
    out = {}
    for name in ENGINES:
        try:
            module = __import__(name)
            out[name] = getattr(module, "__version__", "?")
        except Exception:
            pass
    return out


def measure_backends(label: str, model, mode: str, lr_size: int, reps: int, budget_s: float,
                     engines: dict[str, str], workdir: Path | None = None) -> list[dict]:
    """One row per engine for `model` (its default `mode` in PyTorch against the engine)."""
    from hub_models.onnx_export import OnnxUpscaler, export_onnx

    rows = []
    lr = torch.rand(1, 3, lr_size, lr_size, generator=torch.Generator().manual_seed(0))
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        try:
            path = export_onnx(model, Path(tmp) / f"{label}.onnx")
        except Exception as err:
            return [{"model": label, "engine": e, "torch_mode": mode, "verdict": "not measured",
                     "note": f"export failed: {type(err).__name__}: {str(err).splitlines()[0][:100]}"} for e in engines]
        model.inference_mode, model.inference_backend = "fp32", "torch"
        ref = model.upscale(lr)
        runners = {}
        for engine in engines:
            row = {"model": label, "engine": engine, "torch_mode": mode, "note": ""}
            rows.append(row)
            try:
                backend = OnnxUpscaler(model, path, engine=engine)
                row["max_abs_diff"] = (backend.upscale(lr) - ref).abs().max().item()  # also the warm-up
                runners[engine] = backend.upscale
            except Exception as err:
                row["verdict"] = "not measured"
                row["note"] = f"failed: {type(err).__name__}: {str(err).splitlines()[0][:100]}"
        model.inference_mode = mode
        model.upscale(lr)  # warm-up
        runners["torch"] = model.upscale
        times: dict[str, list[float]] = {k: [] for k in runners}
        spent = 0.0
        for _ in range(reps):  # interleaved: every engine sees the same machine load
            for key, fn in runners.items():
                fn(lr)  # untimed: lets the previous engine's worker threads go idle first
                t0 = time.perf_counter()
                fn(lr)
                t = time.perf_counter() - t0
                times[key].append(t)
                spent += t
            if spent > budget_s * len(runners):
                break
        model.inference_mode = None
    torch_ms = 1000 * statistics.median(times["torch"])
    for row in rows:
        if row["engine"] not in times:
            continue
        row["torch_ms"] = torch_ms
        row["engine_ms"] = 1000 * statistics.median(times[row["engine"]])
        row["speedup"] = torch_ms / row["engine_ms"]
        row["runs"] = len(times[row["engine"]])
        same = row["max_abs_diff"] < SAME_OUTPUT
        if not same:
            row["verdict"] = "no (output differs from fp32)"
        elif row["speedup"] >= MIN_WIN:
            row["verdict"] = f"wins (>= {MIN_WIN:.2f}x)"
        else:
            row["verdict"] = f"no (< {MIN_WIN:.2f}x faster)"
    return rows


def backends_markdown(rows: list[dict], engines: dict[str, str], md_table, fmt) -> str:
    if not engines:
        return "**Other engines**: not measured (neither onnxruntime nor openvino imports here).\n"
    winners = [r for r in rows if str(r.get("verdict", "")).startswith("wins")]
    head = ("**Other engines** (batch 1, the file `python -m hub_models export NAME --format onnx` writes, fp32, "
            "against PyTorch's default mode in the same interleaved rounds; "
            + ", ".join(f"{k} {v}" for k, v in engines.items())
            + f"; an engine wins when its output is within {SAME_OUTPUT:g} of PyTorch fp32 and it is >= "
            f"{MIN_WIN:.2f}x faster than the default mode). "
            + ("Winners: " + ", ".join(f"{r['model']} ({r['engine']})" for r in winners)
               + " (with `--write-modes` the fastest winner becomes that model's default engine on this CPU "
                 "class, `upscale()` using it when onnx, onnxscript and the engine import; "
                 "`model.inference_backend = 'torch'` or $FACESR_INFERENCE_BACKEND=torch turn it off)." if winners
               else "No engine wins on this machine: `upscale()` stays on PyTorch (the engines remain opt-in "
                    "through `hub_models.onnx_export.OnnxUpscaler`).")
            + "\n")
    return head + "\n" + md_table(
        ["model", "engine", "PyTorch mode", "PyTorch ms", "engine ms", "engine speed vs PyTorch", "max |diff| vs fp32",
         "verdict", "note"],
        [[r["model"], r["engine"], r["torch_mode"], fmt(r.get("torch_ms")), fmt(r.get("engine_ms")),
          fmt(r.get("speedup"), 2) + "x" if r.get("speedup") else "",
          f"{r['max_abs_diff']:.1e}" if r.get("max_abs_diff") is not None else "", r.get("verdict", ""),
          r.get("note", "")] for r in rows])
