"""Mode "none" (the image already is low-resolution): the whole upload upscaled, tiled.

    plan = plan_whole(zoo, photo, "rafsr-x4", 4)      # estimated seconds, input capped if too slow
    result = run_whole(zoo, plan, progress=print)     # an UpscaleResult of the whole photo x4

The time is estimated from a short timed run of the model on this machine (seconds per
output pixel, cached per model and scale); the input is scaled down only where the
estimate exceeds MAX_SECONDS, and the note then names the command for the full size.
"""

from __future__ import annotations

import inspect
import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from . import faces
from .catalogue import DemoError, ModelZoo, describe_output
from .imageio import nearest_upscale, to_tensor, to_uint8
from .pipeline import Degradation, Framed, UpscaleResult

#: a whole-image upscale whose estimated time exceeds this (seconds) is scaled down
MAX_SECONDS = float(os.environ.get("FACESR_MAX_SECONDS", 180))
#: side of the LR patch the model is timed on to estimate a run
CALIBRATION_SIDE = 64
_RATES: dict[tuple[str, int], float] = {}
_RATES_LOCK = threading.Lock()

Progress = Callable[[int, int], None]


def _accepts_progress(fn) -> bool:
    try:
        return "progress" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def upscale_tensor(model, x: torch.Tensor, scale: int, progress: Progress | None = None) -> torch.Tensor:
    """`model.upscale(x, scale)` (tiled by the library), reporting tiles to `progress` when it can."""
    with torch.inference_mode():
        if progress is not None and _accepts_progress(model.upscale):
            return model.upscale(x, scale, progress=progress)
        return model.upscale(x, scale)


def seconds_per_pixel(zoo: ModelZoo, name: str, scale: int) -> float:
    """Seconds per output pixel of `name` at `scale` on this machine (timed once, cached)."""
    key = (name, int(scale))
    with _RATES_LOCK:
        if key in _RATES:
            return _RATES[key]
    model = zoo.get(name, scale)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, CALIBRATION_SIDE, CALIBRATION_SIDE, generator=gen)
    upscale_tensor(model, x, scale)  # warm-up (allocations, lazy init)
    best = math.inf
    for _ in range(2):  # the faster of two: other work on the machine only slows a run down
        t0 = time.perf_counter()
        upscale_tensor(model, x, scale)
        best = min(best, time.perf_counter() - t0)
    rate = best / (CALIBRATION_SIDE * scale) ** 2
    with _RATES_LOCK:
        _RATES[key] = rate
    return rate


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

    def describe(self) -> str:
        h, w = self.lr.shape[:2]
        s = self.scale
        return f"{w}×{h} → {w * s}×{h * s} px, about {fmt_seconds(self.seconds)} on this machine"


def plan_whole(zoo: ModelZoo, photo: np.ndarray, model: str, scale: int, faces_only: bool = False,
               max_seconds: float | None = None, source: str = "photo.png") -> WholePlan:
    """Estimate the run and cap the input only where it would take longer than `max_seconds`."""
    entry = zoo.entry(model)
    s = int(scale)
    if s not in entry.scales:
        raise DemoError(f"{entry.display} ({model}) works at {', '.join(f'×{v}' for v in entry.scales)} only, "
                        f"not ×{s}. Pick one of its scales, or another model.")
    budget = MAX_SECONDS if max_seconds is None else float(max_seconds)
    rate = seconds_per_pixel(zoo, model, s)
    h, w = photo.shape[:2]
    seconds = rate * h * w * s * s
    lr, notes = photo, []
    if seconds > budget and not faces_only:
        f = math.sqrt(budget / seconds)
        nw, nh = max(1, int(w * f)), max(1, int(h * f))
        lr = faces.resize(photo, (nw, nh))
        cli = f"python -m hub_models upscale {source} --model {model} --scale {s}"
        notes.append(f"The full {w}×{h} → {w * s}×{h * s} px result would take about {fmt_seconds(seconds)} here, so "
                     f"the input was reduced to {nw}×{nh} px (about {fmt_seconds(budget)}). For the full size, run "
                     f"`{cli}` (it tiles the image and shows a progress bar).")
        seconds = rate * nw * nh * s * s
    return WholePlan(photo, lr, model, s, seconds, faces_only, notes)


def _upscale_faces(zoo: ModelZoo, plan: WholePlan, progress: Progress | None):
    """Every face with the model, the rest bicubic (the library's `hub_models.faces`)."""
    try:
        from hub_models.faces import upscale_faces
    except ImportError:
        raise DemoError("Upscaling only the faces needs hub_models.faces, which this installation lacks; "
                        "choose “Use the whole image” framing instead.") from None
    model = zoo.get(plan.model, plan.scale)
    kwargs = {"progress": progress} if progress is not None and _accepts_progress(upscale_faces) else {}
    with torch.inference_mode():
        out, boxes = upscale_faces(plan.lr, model, plan.scale, **kwargs)
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
        sr8 = to_uint8(upscale_tensor(zoo.get(plan.model, plan.scale), to_tensor(plan.lr), plan.scale, progress))
    ms = (time.perf_counter() - t0) * 1000.0
    notes.append("No ground truth in this mode, so there are no scores.")
    if entry.untrained:
        notes.append(f"{entry.display} is untrained (random weights): the result is {describe_output(sr8)}.")
    framed = Framed(plan.lr, plan.photo, None, 0, [])
    return UpscaleResult(
        model=entry, degradation=Degradation("none", plan.scale), lr=plan.lr,
        lr_display=nearest_upscale(plan.lr, (sr8.shape[1], sr8.shape[0])), sr=sr8, bicubic=None, hr=None,
        scores={}, times_ms={plan.model: ms}, framed=framed, photo_result=None, notes=notes)

