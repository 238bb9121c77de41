"""Running the models, free of any UI: frame the upload, make the low-resolution input,
super-resolve it and score the result against the original.

    zoo = ModelZoo()                                   # demo.catalogue: checkpoints + bicubic
    photo = imageio.load_image("face.jpg").rgb
    result = run_upscale(zoo, photo, "rafsr-x4", Degradation("bicubic", 4))
    result.scores["rafsr-x4"]["psnr_y"], result.sr     # uint8 arrays throughout

The parts: `demo.degradation` (the low-resolution modes), `demo.framing` (which part of
the photo), `demo.results` (what a run returns, scoring); mode "none" (the upload already
is low-resolution) upscales the whole photo: `demo.whole`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from hub_models import degradations, faces
from hub_models.images import rgb_to_tensor, tensor_to_rgb

from .catalogue import DemoError, ModelZoo, describe_output
from .degradation import Degradation
from .framing import Framed, check_framing, frame
from .imageio import nearest_upscale
from .results import MIN_SCORED_SIDE, CompareRow, UpscaleResult, scorable, score
from .whole import plan_whole, run_whole


@dataclass
class Prepared:
    lr: torch.Tensor                   # (1,3,h,w) 8-bit levels
    hr: torch.Tensor | None            # (1,3,h*s,w*s) or None
    framed: Framed
    degradation: Degradation


def prepare(photo: np.ndarray, degradation: Degradation, framing: str = "auto") -> Prepared:
    """Frame the photo and make the (LR, HR) pair the models are run and scored on."""
    framed = frame(photo, framing, degradation)
    if degradation.has_ground_truth:
        hr = degradations.mod_crop(rgb_to_tensor(framed.image), degradation.scale)
        lr = degradation.apply(hr)
    else:
        hr, lr = None, rgb_to_tensor(framed.image)
    return Prepared(lr, hr, framed, degradation)


def run_model(zoo: ModelZoo, name: str, prep: Prepared) -> tuple[torch.Tensor, float]:
    """Super-resolve prep.lr with model `name`; returns (SR tensor, milliseconds)."""
    s = int(prep.degradation.scale)
    zoo.check_scale(name, s)
    model = zoo.get(name, s)
    t0 = time.perf_counter()
    with torch.inference_mode():
        sr = model.upscale(prep.lr, s)
    return sr, (time.perf_counter() - t0) * 1000.0


def _scores(prep: Prepared, outputs: dict[str, torch.Tensor], times: dict[str, float],
            notes: list[str]) -> dict[str, dict[str, float]]:
    """Each output's scores (+ its time) against prep.hr, or a note saying why there are none."""
    if scorable(prep.hr):
        return {name: {**score(sr, prep.hr, prep.degradation.scale), "time_ms": round(times[name], 1)}
                for name, sr in outputs.items()}
    if prep.hr is not None:
        notes.append(f"The image is too small to score (the protocol needs at least {MIN_SCORED_SIDE} px).")
    else:
        notes.append("No ground truth in this mode, so there are no scores.")
    return {}


def run_upscale(zoo: ModelZoo, photo: np.ndarray, model: str, degradation: Degradation,
                framing: str = "auto", paste: bool = True) -> UpscaleResult:
    """One model on one input. Mode "none" upscales the whole photo (see `demo.whole`);
    the other modes frame a face (or the image), degrade it, and score the result."""
    check_framing(framing)
    if not degradation.has_ground_truth:
        return run_whole(zoo, plan_whole(zoo, photo, model, degradation.scale, faces_only=framing == "face"))
    entry = zoo.check_scale(model, degradation.scale)
    prep = prepare(photo, degradation, framing)
    sr, ms = run_model(zoo, model, prep)
    times = {model: ms}
    if model == "bicubic":
        bic = sr
    else:
        bic, times["bicubic"] = run_model(zoo, "bicubic", prep)
    notes = list(prep.framed.notes)
    scores = _scores(prep, {model: sr, "bicubic": bic}, times, notes)
    sr8, lr8 = tensor_to_rgb(sr), tensor_to_rgb(prep.lr)
    if entry.untrained:
        notes.append(f"{entry.display} is untrained (random weights): the result is {describe_output(sr8)}.")
    photo_result = None
    if paste and prep.framed.box is not None:
        photo_result = faces.paste_back(prep.framed.photo, sr8, prep.framed.box)
    return UpscaleResult(
        model=entry, degradation=degradation, lr=lr8,
        lr_display=nearest_upscale(lr8, (sr8.shape[1], sr8.shape[0])), sr=sr8, bicubic=tensor_to_rgb(bic),
        hr=tensor_to_rgb(prep.hr) if prep.hr is not None else None, scores=scores, times_ms=times,
        framed=prep.framed, photo_result=photo_result, notes=notes)


def run_compare(zoo: ModelZoo, photo: np.ndarray, degradation: Degradation, framing: str = "auto",
                progress: Callable[[int, int, str], None] | None = None) -> tuple[Prepared, list[CompareRow]]:
    """Every model that works at the degradation's scale, on one and the same LR input."""
    prep = prepare(photo, degradation, framing)
    names = zoo.comparable
    rows: list[CompareRow] = []
    runnable = [n for n in names if int(degradation.scale) in zoo.entries[n].scales]
    done = 0
    for name in names:
        entry = zoo.entries[name]
        if name not in runnable:
            rows.append(CompareRow(name, entry.label, None, None, None,
                                   skipped=f"works at {', '.join(f'×{v}' for v in entry.scales)} only"))
            continue
        if progress:
            progress(done, len(runnable), entry.label)
        try:
            sr, ms = run_model(zoo, name, prep)
        except DemoError as err:
            rows.append(CompareRow(name, entry.label, None, None, None, skipped=str(err)))
        else:
            sc = score(sr, prep.hr, degradation.scale) if scorable(prep.hr) else None
            rows.append(CompareRow(name, entry.label, tensor_to_rgb(sr), sc, ms))
        done += 1
    if progress:
        progress(done, len(runnable), "done")
    return prep, rows
