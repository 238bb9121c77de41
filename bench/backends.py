"""onnxruntime and OpenVINO against PyTorch's default mode, timed in the same run (interleaved
rounds, batch 1, the speed table's face size). Each engine runs the file
`python -m hub_models export` writes (fp32); an engine is worth using as a backend where it
gives the same output (within `SAME_OUTPUT` of PyTorch's fp32 `upscale()`) and is at least
`MIN_WIN` faster than the default mode. Each timed call follows an untimed call of the same
engine, so that no engine is timed while another's worker threads still spin."""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import torch

from bench.report import Column, fixed, sci, table, text, times as ratio
from bench.timing import interleaved

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


def _engine_runners(label: str, model, mode: str, path: Path, engines: dict[str, str], lr) -> tuple[list, dict]:
    """One row per engine (its max |difference| from PyTorch fp32, or why it did not run) and
    the `upscale` of each engine that runs."""
    from hub_models.onnx_export import OnnxUpscaler

    model.inference_mode, model.inference_backend = "fp32", "torch"
    ref = model.upscale(lr)
    rows, runners = [], {}
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
    return rows, runners


def _judge(rows: list[dict], times: dict[str, list[float]]) -> None:
    """Each timed engine's ms, speed-up over PyTorch's default mode and verdict."""
    torch_ms = 1000 * statistics.median(times["torch"])
    for row in rows:
        if row["engine"] not in times:
            continue
        row["torch_ms"] = torch_ms
        row["engine_ms"] = 1000 * statistics.median(times[row["engine"]])
        row["speedup"] = torch_ms / row["engine_ms"]
        row["runs"] = len(times[row["engine"]])
        if not row["max_abs_diff"] < SAME_OUTPUT:
            row["verdict"] = "no (output differs from fp32)"
        elif row["speedup"] >= MIN_WIN:
            row["verdict"] = f"wins (>= {MIN_WIN:.2f}x)"
        else:
            row["verdict"] = f"no (< {MIN_WIN:.2f}x faster)"


def measure_backends(label: str, model, mode: str, lr_size: int, reps: int, budget_s: float,
                     engines: dict[str, str], workdir: Path | None = None) -> list[dict]:
    """One row per engine for `model` (its default `mode` in PyTorch against the engine)."""
    from hub_models.onnx_export import export_onnx

    lr = torch.rand(1, 3, lr_size, lr_size, generator=torch.Generator().manual_seed(0))
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        try:
            path = export_onnx(model, Path(tmp) / f"{label}.onnx")
        except Exception as err:
            return [{"model": label, "engine": e, "torch_mode": mode, "verdict": "not measured",
                     "note": f"export failed: {type(err).__name__}: {str(err).splitlines()[0][:100]}"} for e in engines]
        rows, runners = _engine_runners(label, model, mode, path, engines, lr)
        model.inference_mode = mode
        model.upscale(lr)  # warm-up
        runners["torch"] = model.upscale
        # interleaved rounds, each timed call after an untimed one of the same engine
        times = interleaved({key: (lambda fn=fn: fn(lr)) for key, fn in runners.items()}, torch.device("cpu"),
                            reps, budget_s, settle=True)
        model.inference_mode = None
    _judge(rows, times)
    return rows


BACKEND_TABLE = [
    Column("model", "model"), Column("engine", "engine"), Column("torch_mode", "PyTorch mode"),
    Column("torch_ms", "PyTorch ms", fixed(1)), Column("engine_ms", "engine ms", fixed(1)),
    Column("speedup", "engine speed vs PyTorch", ratio(2)), Column("max_abs_diff", "max |diff| vs fp32", sci),
    Column("verdict", "verdict", text), Column("note", "note", text),
]


def _summary(rows: list[dict], engines: dict[str, str]) -> str:
    winners = [r for r in rows if str(r.get("verdict", "")).startswith("wins")]
    return ("**Other engines** (batch 1, the file `python -m hub_models export NAME --format onnx` writes, fp32, "
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


def backends_markdown(rows: list[dict], engines: dict[str, str]) -> str:
    if not engines:
        return "**Other engines**: not measured (neither onnxruntime nor openvino imports here).\n"
    return _summary(rows, engines) + "\n" + table(BACKEND_TABLE, rows)
