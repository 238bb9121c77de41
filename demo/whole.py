"""Mode "none" (the image already is low-resolution): the whole upload upscaled, tiled.

    plan = plan_whole(zoo, photo, "rafsr-x4", 4)      # estimated seconds, input capped if too slow
    result = run_whole(zoo, plan, progress=print)     # an UpscaleResult of the whole photo x4

The time is estimated from a short timed run of the model on this machine (seconds per
output pixel, cached per model and scale); the input is scaled down only where the
estimate exceeds MAX_SECONDS, and the note then names the command for the full size.
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from hub_models import faces
from hub_models.images import rgb_to_tensor, tensor_to_rgb
from hub_models.tiling import default_overlap, plan_tiles

from .catalogue import ModelZoo, describe_output
from .degradation import Degradation
from .framing import Framed
from .imageio import nearest_upscale
from .results import UpscaleResult

#: a whole-image upscale whose estimated time exceeds this (seconds) is scaled down
MAX_SECONDS = float(os.environ.get("FACESR_MAX_SECONDS", 180))
#: largest side of the LR patch the model is timed on to estimate a run
MAX_CALIBRATION_SIDE = 128
_RATES: dict[tuple[str, int, int], float] = {}
_RATES_LOCK = threading.Lock()

Progress = Callable[[int, int], None]


def upscale_tensor(model, x: torch.Tensor, scale: int, progress: Progress | None = None) -> torch.Tensor:
    """`model.upscale(x, scale)` (tiled by the library), reporting tiles to `progress`."""
    with torch.inference_mode():
        return model.upscale(x, scale, progress=progress)


def tile_overhead(model, scale: int, h: int, w: int) -> float:
    """LR pixels the model computes per pixel of an h x w input: >1 where `upscale` tiles it
    (tiles overlap); 1 for an untiled run."""
    tile = int(model.tile_size)
    if not tile or max(h, w) <= tile:
        return 1.0
    plan = plan_tiles(h, w, tile, default_overlap(model, tile, scale))
    return plan.count * plan.tile_h * plan.tile_w / (h * w)


def calibration_side(model, h: int, w: int) -> int:
    """Side of the patch timed for an estimate: one tile as `upscale` will run it (attention
    costs grow faster than the pixels), or the whole image where it is smaller."""
    tile = int(model.tile_size) or MAX_CALIBRATION_SIDE
    return max(8, min(tile, max(h, w), MAX_CALIBRATION_SIDE))


def seconds_per_pixel(zoo: ModelZoo, name: str, scale: int, side: int = 64) -> float:
    """Seconds per output pixel of `name` at `scale` on this machine, from one timed run on
    a side x side patch after a small warm-up; cached, and corrected by `record_run`."""
    key = (name, int(scale), int(side))
    with _RATES_LOCK:
        if key in _RATES:
            return _RATES[key]
    model = zoo.get(name, scale)
    gen = torch.Generator().manual_seed(0)
    upscale_tensor(model, torch.rand(1, 3, 16, 16, generator=gen), scale)  # warm-up (allocations, lazy init)
    x = torch.rand(1, 3, side, side, generator=gen)
    t0 = time.perf_counter()
    upscale_tensor(model, x, scale)
    rate = (time.perf_counter() - t0) / (side * scale) ** 2
    with _RATES_LOCK:
        _RATES[key] = rate
    return rate


def record_run(plan: "WholePlan", seconds: float) -> None:
    """Learn from a finished run: the next estimate for this model, scale and tile uses the
    rate just measured on the real image (runs under a second are too noisy to count)."""
    if seconds >= 1.0 and plan.seconds > 0:
        with _RATES_LOCK:
            _RATES[plan.rate_key] = plan.rate * seconds / plan.seconds


def fmt_seconds(s: float) -> str:
    """'4 s', '2.5 min', '1.3 h'."""
    if s < 90:
        return f"{max(s, 0.1):.0f} s" if s >= 1 else f"{s:.1f} s"
    if s < 5400:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


@dataclass
class WholePlan:
    photo: np.ndarray          # the upload as decoded
    lr: np.ndarray             # what the model will see (the photo, or scaled down to fit the time)
    model: str
    scale: int
    seconds: float             # estimated run time on this machine
    faces_only: bool = False
    notes: list[str] = field(default_factory=list)
    rate: float = 0.0          # seconds per output pixel the estimate used
    rate_key: tuple = ()

    def describe(self) -> str:
        h, w = self.lr.shape[:2]
        s = self.scale
        return f"{w}×{h} → {w * s}×{h * s} px, about {fmt_seconds(self.seconds)} on this machine"


def plan_whole(zoo: ModelZoo, photo: np.ndarray, model: str, scale: int, faces_only: bool = False,
               max_seconds: float | None = None, source: str = "photo.png") -> WholePlan:
    """Estimate the run and cap the input only where it would take longer than `max_seconds`."""
    s = int(scale)
    zoo.check_scale(model, s)
    budget = MAX_SECONDS if max_seconds is None else float(max_seconds)
    h, w = photo.shape[:2]
    model_obj = zoo.get(model, s)
    side = calibration_side(model_obj, h, w)
    rate = seconds_per_pixel(zoo, model, s, side)
    seconds = rate * h * w * s * s * tile_overhead(model_obj, s, h, w)
    lr, notes = photo, []
    if seconds > budget and not faces_only:
        f = math.sqrt(budget / seconds)
        nw, nh = max(1, int(w * f)), max(1, int(h * f))
        lr = faces.resize(photo, (nw, nh))
        cli = f"python -m hub_models upscale {source} --model {model} --scale {s}"
        notes.append(f"The full {w}×{h} → {w * s}×{h * s} px result would take about {fmt_seconds(seconds)} here, so "
                     f"the input was reduced to {nw}×{nh} px (about {fmt_seconds(budget)}). For the full size, run "
                     f"`{cli}` (it tiles the image and shows a progress bar).")
        seconds = rate * nw * nh * s * s * tile_overhead(model_obj, s, nh, nw)
    return WholePlan(photo, lr, model, s, seconds, faces_only, notes, rate, (model, s, side))


def _upscale_faces(zoo: ModelZoo, plan: WholePlan, progress: Progress | None):
    """Every face with the model, the rest bicubic (the library's `hub_models.faces`)."""
    model = zoo.get(plan.model, plan.scale)
    with torch.inference_mode():
        out, boxes = faces.upscale_faces(plan.lr, model, plan.scale, progress=progress)
    return np.asarray(out, dtype=np.uint8), list(boxes)


def run_whole(zoo: ModelZoo, plan: WholePlan, progress: Progress | None = None) -> UpscaleResult:
    """Carry out `plan`: the whole (possibly capped) upload at ×scale, no ground truth."""
    entry = zoo.entry(plan.model)
    notes = list(plan.notes)
    t0 = time.perf_counter()
    if plan.faces_only:
        sr8, boxes = _upscale_faces(zoo, plan, progress)
        notes.append(f"{len(boxes)} face(s) upscaled with {entry.display}; the rest of the photo with bicubic."
                     if boxes else "No face was found (the detector looks for upright, frontal faces); the whole "
                                   "photo was upscaled with bicubic.")
    else:
        sr8 = tensor_to_rgb(upscale_tensor(zoo.get(plan.model, plan.scale), rgb_to_tensor(plan.lr), plan.scale, progress))
    ms = (time.perf_counter() - t0) * 1000.0
    if not plan.faces_only:
        record_run(plan, ms / 1000.0)
    notes.append("No ground truth in this mode, so there are no scores.")
    if entry.untrained:
        notes.append(f"{entry.display} is untrained (random weights): the result is {describe_output(sr8)}.")
    framed = Framed(plan.lr, plan.photo, None, 0, [])
    return UpscaleResult(
        model=entry, degradation=Degradation("none", plan.scale), lr=plan.lr,
        lr_display=nearest_upscale(plan.lr, (sr8.shape[1], sr8.shape[0])), sr=sr8, bicubic=None, hr=None,
        scores={}, times_ms={plan.model: ms}, framed=framed, photo_result=None, notes=notes)

