"""The demo's logic, free of any UI: how an input is framed and degraded, running a
model, scoring it against the original (the model catalogue is `demo.catalogue`).

    zoo = ModelZoo()                                   # shipped checkpoints + bicubic
    photo = imageio.load_image("face.jpg").rgb
    result = run_upscale(zoo, photo, "rafsr-x4", Degradation("bicubic", 4))
    result.scores["rafsr-x4"]["psnr_y"], result.sr     # uint8 arrays throughout

Mode "none" (the upload already is low-resolution) upscales the whole photo: `demo.whole`.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from hub_models import degradations, metrics

from . import faces
from .catalogue import SCALES, DemoError, ModelEntry, ModelZoo, describe_output  # noqa: F401 (re-exported)
from .imageio import nearest_upscale, to_tensor, to_uint8

log = logging.getLogger("facesr.demo")

#: side of the faces the x4/x8 face models are trained on (train/recipes.py: hr_size)
HR_SIZE = 128
DEGRADATIONS = {
    "none": "None: my image is already low-resolution",
    "bicubic": "Bicubic downscaling (the papers' benchmark)",
    "real-world": "Real-world: blur → downscale → noise → JPEG",
}
FRAMINGS = {
    "auto": "Auto: find the face in larger photos",
    "face": "Always look for a face",
    "whole": "Use the whole image",
}
BLUR_KINDS = ("gaussian", "box", "median", "motion", "none")
#: results larger than this many pixels are avoided by shrinking the input: the larger
#: published models take ~5 s for a 128x128 face on two CPU cores, ~50 s at 512x512
MAX_OUTPUT_PIXELS = int(os.environ.get("FACESR_MAX_OUTPUT_PIXELS", 256 * 256))
#: images up to this size (and about square) are taken as already-framed faces in "auto"
AUTO_WHOLE_MAX_SIDE = 160
#: PSNR/SSIM protocol of the face SR papers (DIC): Y channel, 8-pixel border crop
PROTOCOL = "dic"
PROTOCOL_NOTE = "PSNR/SSIM on the Y channel (BT.601) with an 8-pixel border crop (DIC protocol); LPIPS AlexNet v0.1 on RGB"
_MIN_SCORED_SIDE = 24  # 8-px crop on both sides + the 7x7 SSIM window
_MIN_LR_SIDE = 4  # a degraded input smaller than this is not worth showing

# ---------------------------------------------------------------------------------------
# degradation
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Degradation:
    """How the low-resolution input is made from the (framed) image.

    mode "bicubic": MATLAB bicubic downscaling by `scale` (the papers' protocol);
    "real-world": blur -> downscale by `scale` -> Gaussian noise -> JPEG (AGRNet eq. 28);
    "none": the image already is the low-resolution input (no ground truth, no scores).
    """

    mode: str = "bicubic"
    scale: int = 4
    blur_kind: str = "gaussian"
    blur_size: int = 3
    noise: float = 5.0
    jpeg_quality: int = 75
    seed: int = 0

    def __post_init__(self):
        if self.mode not in DEGRADATIONS:
            raise DemoError(f"Unknown degradation {self.mode!r}; choose one of: {', '.join(DEGRADATIONS)}.")
        if int(self.scale) not in SCALES:
            raise DemoError(f"Scale ×{self.scale} is not offered; choose one of {', '.join(map(str, SCALES))}.")
        if self.mode == "real-world":
            if self.blur_kind not in BLUR_KINDS:
                raise DemoError(f"Unknown blur {self.blur_kind!r}; choose one of: {', '.join(BLUR_KINDS)}.")
            if self.blur_kind != "none" and (int(self.blur_size) != self.blur_size or self.blur_size < 1
                                             or self.blur_size % 2 == 0 or self.blur_size > 31):
                raise DemoError(f"Blur size must be an odd number of pixels from 1 to 31, got {self.blur_size}.")
            if self.blur_kind == "motion" and self.blur_size < 3:
                raise DemoError("Motion blur needs a size of at least 3 pixels.")
            if not 0 <= float(self.noise) <= 50:
                raise DemoError(f"Noise must be between 0 and 50 (on the 0-255 scale), got {self.noise}.")
            if not 1 <= int(self.jpeg_quality) <= 100:
                raise DemoError(f"JPEG quality must be between 1 and 100, got {self.jpeg_quality}.")
            if int(self.seed) < 0:
                raise DemoError("The seed must be a non-negative integer.")

    @property
    def has_ground_truth(self) -> bool:
        return self.mode != "none"

    def apply(self, hr: torch.Tensor) -> torch.Tensor:
        """LR (1,3,H/s,W/s) in 8-bit levels from an HR (1,3,H,W) whose sides are multiples of s."""
        s = int(self.scale)
        if self.mode == "bicubic":
            return degradations.bicubic_degrade(hr, s, quantize=True)
        if self.mode == "real-world":
            params = degradations.RealWorldParams(
                blur_kind=self.blur_kind, blur_size=int(self.blur_size) if self.blur_kind != "none" else 1,
                downscale=1.0 / s, noise_sigma=float(self.noise), jpeg_quality=int(self.jpeg_quality),
                seed=int(self.seed))
            return degradations.real_world_degrade(hr, params)
        raise AssertionError("no degradation in mode 'none'")

    def describe(self) -> str:
        s = self.scale
        if self.mode == "bicubic":
            return f"bicubic ×{s}"
        if self.mode == "real-world":
            blur = "no blur" if self.blur_kind == "none" else f"{self.blur_kind} blur {self.blur_size}px"
            return f"real-world ×{s} ({blur}, noise σ={self.noise:g}, JPEG q={self.jpeg_quality}, seed {self.seed})"
        return f"none (input is low-resolution), ×{s}"

    def as_dict(self) -> dict:
        d = {"mode": self.mode, "scale": int(self.scale)}
        if self.mode == "real-world":
            d.update(blur_kind=self.blur_kind, blur_size=int(self.blur_size), noise=float(self.noise),
                     jpeg_quality=int(self.jpeg_quality), seed=int(self.seed))
        return d


# ---------------------------------------------------------------------------------------
# framing
# ---------------------------------------------------------------------------------------
@dataclass
class Framed:
    image: np.ndarray                  # what the model pipeline starts from (HR, or LR for "none")
    photo: np.ndarray                  # the whole uploaded photo
    box: faces.Box | None = None       # the square crop in photo coordinates, if a face was cropped
    faces_found: int = 0
    notes: list[str] = field(default_factory=list)


def _shrink_to(rgb: np.ndarray, max_pixels: int, multiple: int = 1) -> tuple[np.ndarray, bool]:
    h, w = rgb.shape[:2]
    if h * w <= max_pixels:
        return rgb, False
    f = math.sqrt(max_pixels / (h * w))
    nw, nh = max(multiple, int(w * f) // multiple * multiple), max(multiple, int(h * f) // multiple * multiple)
    return faces.resize(rgb, (nw, nh)), True


def frame(photo: np.ndarray, framing: str, degradation: Degradation, detect: Callable = faces.detect_faces) -> Framed:
    """Choose the part of the photo the model sees and bring it to the models' framing.

    With a face: a square around it (see `faces.face_frame`), resized to 128x128 as the
    ground truth (or to 128/scale as the low-resolution input in mode "none").  Without:
    the whole image, shrunk if the result would exceed MAX_OUTPUT_PIXELS.
    """
    if framing not in FRAMINGS:
        raise DemoError(f"Unknown framing {framing!r}; choose one of: {', '.join(FRAMINGS)}.")
    s = int(degradation.scale)
    h, w = photo.shape[:2]
    notes: list[str] = []
    small_square = max(h, w) <= AUTO_WHOLE_MAX_SIDE and max(h, w) <= 1.25 * min(h, w)
    if framing == "face" or (framing == "auto" and not small_square):
        boxes = detect(photo)
        if boxes:
            box = faces.face_frame(boxes[0])
            side = HR_SIZE if degradation.has_ground_truth else max(1, HR_SIZE // s)
            face = faces.resize(faces.crop(photo, box), (side, side))
            many = f"{len(boxes)} faces found; the largest is used. " if len(boxes) > 1 else ""
            notes.append(f"{many}Face found at x={boxes[0].x}, y={boxes[0].y} ({boxes[0].w}×{boxes[0].h} px); "
                         f"cropped {box.w}×{box.h} px around it and resized to {side}×{side}.")
            return Framed(face, photo, box, len(boxes), notes)
        notes.append("No face was found (the detector looks for upright, frontal faces); the whole image is used.")
    image = photo
    if degradation.has_ground_truth:
        image, shrunk = _shrink_to(image, MAX_OUTPUT_PIXELS, s)
        if shrunk:
            notes.append(f"The image was reduced to {image.shape[1]}×{image.shape[0]} px to keep the demo fast "
                         "(try face framing for photos).")
        if min(image.shape[:2]) // s < _MIN_LR_SIDE:
            raise DemoError(
                f"This image ({w}×{h} px) is too small to be made ×{s} smaller: it needs at least {_MIN_LR_SIDE * s} px on "
                "each side. Choose “None: my image is already low-resolution” to upscale it as it is.")
    else:
        image, shrunk = _shrink_to(image, MAX_OUTPUT_PIXELS // (s * s))
        if shrunk:
            notes.append(f"The input was reduced to {image.shape[1]}×{image.shape[0]} px so that the ×{s} result "
                         f"stays under {MAX_OUTPUT_PIXELS / 1e6:.2f} megapixels (CPU demo).")
    return Framed(image, photo, None, 0, notes)


# ---------------------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------------------
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
        hr = degradations.mod_crop(to_tensor(framed.image), degradation.scale)
        lr = degradation.apply(hr)
    else:
        hr, lr = None, to_tensor(framed.image)
    return Prepared(lr, hr, framed, degradation)


def score(sr: torch.Tensor, hr: torch.Tensor, scale: int) -> dict[str, float]:
    """PSNR-Y, SSIM-Y, PSNR-RGB (DIC protocol) and LPIPS of one image, as plain floats."""
    out = metrics.evaluate(sr, hr, protocol=PROTOCOL, scale=scale)
    return {k: float(v[0]) for k, v in out.items()}


def scorable(hr: torch.Tensor | None) -> bool:
    return hr is not None and min(hr.shape[-2:]) >= _MIN_SCORED_SIDE


def run_model(zoo: ModelZoo, name: str, prep: Prepared) -> tuple[torch.Tensor, float]:
    """Super-resolve prep.lr with model `name`; returns (SR tensor, milliseconds)."""
    entry = zoo.entry(name)
    s = int(prep.degradation.scale)
    if s not in entry.scales:
        raise DemoError(f"{entry.display} ({name}) works at {', '.join(f'×{v}' for v in entry.scales)} only, "
                        f"not ×{s}. Pick one of its scales, or another model.")
    model = zoo.get(name, s)
    t0 = time.perf_counter()
    with torch.inference_mode():
        sr = model.upscale(prep.lr, s)
    return sr, (time.perf_counter() - t0) * 1000.0


@dataclass
class UpscaleResult:
    model: ModelEntry
    degradation: Degradation
    lr: np.ndarray                     # uint8 (h, w, 3)
    lr_display: np.ndarray             # LR enlarged (nearest) to the output size
    sr: np.ndarray
    bicubic: np.ndarray | None         # None in mode "none" (nothing to compare against)
    hr: np.ndarray | None
    scores: dict[str, dict[str, float]]  # method -> metrics (+ time_ms); empty without ground truth
    times_ms: dict[str, float]
    framed: Framed
    photo_result: np.ndarray | None
    notes: list[str]

    def summary(self) -> dict:
        """JSON-ready description of the run (what the API's scores output holds); an
        infinite PSNR (result identical to the original) is given as None."""
        return {
            "model": self.model.name,
            "scale": int(self.degradation.scale),
            "degradation": self.degradation.as_dict(),
            "protocol": PROTOCOL_NOTE if self.scores else None,
            "input_size": [int(self.lr.shape[1]), int(self.lr.shape[0])],
            "output_size": [int(self.sr.shape[1]), int(self.sr.shape[0])],
            "face_box": self.framed.box.as_list() if self.framed.box else None,
            "scores": {m: {k: (v if math.isfinite(v) else None) for k, v in sc.items()} for m, sc in self.scores.items()},
            "time_ms": {k: round(v, 1) for k, v in self.times_ms.items()},
            "notes": self.notes,
        }


def run_upscale(zoo: ModelZoo, photo: np.ndarray, model: str, degradation: Degradation,
                framing: str = "auto", paste: bool = True) -> UpscaleResult:
    """One model on one input. Mode "none" upscales the whole photo (see `demo.whole`);
    the other modes frame a face (or the image), degrade it, and score the result."""
    if framing not in FRAMINGS:
        raise DemoError(f"Unknown framing {framing!r}; choose one of: {', '.join(FRAMINGS)}.")
    if not degradation.has_ground_truth:
        from .whole import plan_whole, run_whole  # whole.py builds on this module

        return run_whole(zoo, plan_whole(zoo, photo, model, degradation.scale, faces_only=framing == "face"))
    entry = zoo.entry(model)
    if int(degradation.scale) not in entry.scales:
        raise DemoError(f"{entry.display} ({model}) works at {', '.join(f'×{v}' for v in entry.scales)} only, "
                        f"not ×{degradation.scale}. Pick one of its scales, or another model.")
    prep = prepare(photo, degradation, framing)
    sr, ms = run_model(zoo, model, prep)
    times = {model: ms}
    if model == "bicubic":
        bic = sr
    else:
        bic, times["bicubic"] = run_model(zoo, "bicubic", prep)
    notes = list(prep.framed.notes)
    scores: dict[str, dict[str, float]] = {}
    if scorable(prep.hr):
        for name, out in ((model, sr), ("bicubic", bic)):
            if name not in scores:
                scores[name] = {**score(out, prep.hr, degradation.scale), "time_ms": round(times[name], 1)}
    elif prep.hr is not None:
        notes.append(f"The image is too small to score (the protocol needs at least {_MIN_SCORED_SIDE} px).")
    else:
        notes.append("No ground truth in this mode, so there are no scores.")
    sr8, lr8 = to_uint8(sr), to_uint8(prep.lr)
    if entry.untrained:
        notes.append(f"{entry.display} is untrained (random weights): the result is {describe_output(sr8)}.")
    photo_result = None
    if paste and prep.framed.box is not None:
        photo_result = faces.paste_back(prep.framed.photo, sr8, prep.framed.box)
    return UpscaleResult(
        model=entry, degradation=degradation, lr=lr8,
        lr_display=nearest_upscale(lr8, (sr8.shape[1], sr8.shape[0])), sr=sr8, bicubic=to_uint8(bic),
        hr=to_uint8(prep.hr) if prep.hr is not None else None, scores=scores, times_ms=times,
        framed=prep.framed, photo_result=photo_result, notes=notes)


@dataclass
class CompareRow:
    name: str
    label: str
    sr: np.ndarray | None
    scores: dict[str, float] | None
    time_ms: float | None
    skipped: str | None = None


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
            rows.append(CompareRow(name, entry.label, to_uint8(sr), sc, ms))
        done += 1
    if progress:
        progress(done, len(runnable), "done")
    return prep, rows
