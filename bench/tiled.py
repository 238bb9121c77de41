"""The tiled job of the speed table: one LR image upscaled to 4096x4096 (1024x1024 at x4, 512x512
at x8) through
`upscale()`'s tiling (hub_models.tiling, issue 17): megapixels of output per second and peak
memory, per model. Until the tiling exists the column says so."""

from __future__ import annotations

import importlib.util
import time

import torch

OUT_SIDE = 4096
MIN_SIDE = 1024  # the smallest job timed when the full one would take longer than --tiled-max-s
TILED_COLUMNS = ["model", "mode", "output", "mpix_s", "peak_mib", "seconds", "note"]
NOT_AVAILABLE = "tiling not yet available"


def tiling_available() -> bool:
    return importlib.util.find_spec("hub_models.tiling") is not None


def measure_tiled(label: str, model, mode: str, memory, est_s_per_mpix: float | None, max_s: float,
                  out_side: int = OUT_SIDE) -> dict:
    """One run to `out_side` x `out_side` at the model's default scale, timed once together with
    the memory probe; `out_side` smaller only for quick runs."""
    row = {"model": label, "mode": mode, "note": ""}
    if not tiling_available():
        row["note"] = NOT_AVAILABLE
        return row
    scale = model.default_scale
    full_mpix = out_side ** 2 / 1e6
    while est_s_per_mpix is not None and est_s_per_mpix * out_side ** 2 / 1e6 > max_s and out_side > MIN_SIDE:
        out_side //= 2  # a smaller job of the same kind: Mpix/s holds, the peak memory is that job's
    lr_side = out_side // scale
    out_mpix = (lr_side * scale) ** 2 / 1e6
    row["output"] = f"{lr_side * scale}x{lr_side * scale}"
    if est_s_per_mpix is not None and est_s_per_mpix * out_mpix > max_s:
        row["note"] = f"not timed: estimated {est_s_per_mpix * out_mpix:.0f} s (> {max_s:g} s)"
        return row
    if out_mpix < full_mpix and not row["note"]:
        row["note"] = f"{row['output']} job: the full one est. {est_s_per_mpix * full_mpix:.0f} s > {max_s:g} s"
    lr = torch.rand(1, 3, lr_side, lr_side, generator=torch.Generator().manual_seed(0))
    model.inference_mode, model.inference_backend = mode, "torch"
    try:
        t0 = time.perf_counter()
        row["peak_mib"] = memory.run(lambda: model.upscale(lr, scale=scale))
        row["seconds"] = time.perf_counter() - t0
        row["mpix_s"] = out_mpix / row["seconds"]
    except Exception as err:
        row["note"] = f"failed: {type(err).__name__}: {str(err).splitlines()[0][:100]}"
    finally:
        model.inference_mode = None
    return row
