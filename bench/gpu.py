"""The GPU section: on a machine with a CUDA GPU, each model's latency (batch 1) and throughput
(batch 16) in bf16 and fp16, eager and through torch.compile; elsewhere the section says it
was not measured."""

from __future__ import annotations

import torch

from bench.report import Column, fixed, table
from bench.timing import measure, time_once

GPU_MODES = ["bf16+channels_last", "fp16+channels_last", "compile+bf16+channels_last", "compile+fp16+channels_last"]
GPU_COLUMNS = ["model", "gpu", "mode", "ms_b1", "img_s_b16", "compile_s", "note"]


def _median_s(fn, device: torch.device, reps: int) -> float:
    return measure(fn, device, reps, float("inf"), warmup=0)["median_s"]


def measure_gpu(label: str, model, out_size: int, reps: int, compile_ok: bool) -> list[dict]:
    """Rows for one model on the current CUDA device (the model is moved there and back)."""
    if not torch.cuda.is_available():
        return []
    device = torch.device("cuda")
    name = torch.cuda.get_device_name(device)
    scale = model.default_scale
    lr1 = torch.rand(1, 3, out_size // scale, out_size // scale, device=device)
    lr16 = torch.rand(16, 3, out_size // scale, out_size // scale, device=device)
    model.to(device)
    rows = []
    try:
        for mode in GPU_MODES:
            row = {"model": label, "gpu": name, "mode": mode, "note": ""}
            rows.append(row)
            if "compile" in mode and not compile_ok:
                row["note"] = "not timed (--no-compile)"
                continue
            model.inference_mode = mode
            try:
                first_s = time_once(lambda: model.upscale(lr1), device)
                if "compile" in mode:
                    row["compile_s"] = first_s
                row["ms_b1"] = 1000 * _median_s(lambda: model.upscale(lr1), device, reps)
                model.upscale(lr16)
                row["img_s_b16"] = 16 / _median_s(lambda: model.upscale(lr16), device, reps)
            except Exception as err:
                row["note"] = f"failed: {type(err).__name__}: {str(err).splitlines()[0][:100]}"
    finally:
        model.inference_mode = None
        model.to("cpu")
    return rows


GPU_TABLE = [
    Column("model", "model"), Column("mode", "mode"), Column("ms_b1", "ms (b1)", fixed(2)),
    Column("img_s_b16", "img/s (b16)", fixed(1)), Column("compile_s", "compile s", fixed(1)), Column("note", "note"),
]


def gpu_markdown(rows: list[dict], cpu_desc: str) -> str:
    if not rows:
        return (f"**GPU**: not measured: this run had no CUDA GPU ({cpu_desc}). On a machine with one, the same "
                "command adds bf16/fp16 latency and throughput, eager and torch.compile, here.\n")
    return (f"**GPU** ({rows[0]['gpu']}; batch 1 latency = median of `upscale()`, throughput at batch 16; compile "
            "modes after their first call):\n\n" + table(GPU_TABLE, rows))
