"""Which part of the upload the model sees: a face brought to the models' framing, or the
whole image (shrunk where the result would be too large for a CPU demo).

    framed = frame(photo, "auto", Degradation("bicubic", 4))
    framed.image, framed.box, framed.notes     # 128x128 face, its square in the photo, what was done
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from hub_models import faces

from .catalogue import DemoError
from .degradation import Degradation

#: framing -> what the radio button says
FRAMINGS = {
    "auto": "Auto: find the face in larger photos",
    "face": "Always look for a face",
    "whole": "Use the whole image",
}
#: side of the faces the x4/x8 face models are trained on (train/recipes.py: hr_size)
HR_SIZE = 128
#: results larger than this many pixels are avoided by shrinking the input: the larger
#: published models take ~5 s for a 128x128 face on two CPU cores, ~50 s at 512x512
MAX_OUTPUT_PIXELS = int(os.environ.get("FACESR_MAX_OUTPUT_PIXELS", 256 * 256))
#: images up to this size (and about square) are taken as already-framed faces in "auto"
AUTO_WHOLE_MAX_SIDE = 160
_MIN_LR_SIDE = 4  # a degraded input smaller than this is not worth showing


@dataclass
class Framed:
    image: np.ndarray                  # what the model pipeline starts from (HR, or LR for "none")
    photo: np.ndarray                  # the whole uploaded photo
    box: faces.Box | None = None       # the square crop in photo coordinates, if a face was cropped
    faces_found: int = 0
    notes: list[str] = field(default_factory=list)


def check_framing(framing: str) -> str:
    """`framing` if it is one of FRAMINGS, else a DemoError naming the choices."""
    if framing not in FRAMINGS:
        raise DemoError(f"Unknown framing {framing!r}; choose one of: {', '.join(FRAMINGS)}.")
    return framing


def _shrink_to(rgb: np.ndarray, max_pixels: int, multiple: int = 1) -> tuple[np.ndarray, bool]:
    h, w = rgb.shape[:2]
    if h * w <= max_pixels:
        return rgb, False
    f = math.sqrt(max_pixels / (h * w))
    nw, nh = max(multiple, int(w * f) // multiple * multiple), max(multiple, int(h * f) // multiple * multiple)
    return faces.resize(rgb, (nw, nh)), True


def _face(photo: np.ndarray, boxes: list[faces.Box], degradation: Degradation) -> Framed:
    """The largest face, squared (`faces.face_frame`) and resized to the models' framing."""
    box = faces.face_frame(boxes[0])
    s = int(degradation.scale)
    side = HR_SIZE if degradation.has_ground_truth else max(1, HR_SIZE // s)
    face = faces.resize(faces.crop(photo, box), (side, side))
    many = f"{len(boxes)} faces found; the largest is used. " if len(boxes) > 1 else ""
    note = (f"{many}Face found at x={boxes[0].x}, y={boxes[0].y} ({boxes[0].w}×{boxes[0].h} px); "
            f"cropped {box.w}×{box.h} px around it and resized to {side}×{side}.")
    return Framed(face, photo, box, len(boxes), [note])


def _whole(photo: np.ndarray, degradation: Degradation, notes: list[str]) -> Framed:
    """The whole image, shrunk where the result would exceed MAX_OUTPUT_PIXELS."""
    s = int(degradation.scale)
    h, w = photo.shape[:2]
    if degradation.has_ground_truth:
        image, shrunk = _shrink_to(photo, MAX_OUTPUT_PIXELS, s)
        if shrunk:
            notes.append(f"The image was reduced to {image.shape[1]}×{image.shape[0]} px to keep the demo fast "
                         "(try face framing for photos).")
        if min(image.shape[:2]) // s < _MIN_LR_SIDE:
            raise DemoError(
                f"This image ({w}×{h} px) is too small to be made ×{s} smaller: it needs at least {_MIN_LR_SIDE * s} px on "
                "each side. Choose “None: my image is already low-resolution” to upscale it as it is.")
    else:
        image, shrunk = _shrink_to(photo, MAX_OUTPUT_PIXELS // (s * s))
        if shrunk:
            notes.append(f"The input was reduced to {image.shape[1]}×{image.shape[0]} px so that the ×{s} result "
                         f"stays under {MAX_OUTPUT_PIXELS / 1e6:.2f} megapixels (CPU demo).")
    return Framed(image, photo, None, 0, notes)


def frame(photo: np.ndarray, framing: str, degradation: Degradation, detect: Callable = faces.detect_faces) -> Framed:
    """Choose the part of the photo the model sees and bring it to the models' framing.

    With a face: a square around it (see `faces.face_frame`), resized to 128x128 as the
    ground truth (or to 128/scale as the low-resolution input in mode "none").  Without:
    the whole image, shrunk if the result would exceed MAX_OUTPUT_PIXELS.
    """
    check_framing(framing)
    h, w = photo.shape[:2]
    small_square = max(h, w) <= AUTO_WHOLE_MAX_SIDE and max(h, w) <= 1.25 * min(h, w)
    notes: list[str] = []
    if framing == "face" or (framing == "auto" and not small_square):
        boxes = detect(photo)
        if boxes:
            return _face(photo, boxes, degradation)
        notes.append("No face was found (the detector looks for upright, frontal faces); the whole image is used.")
    return _whole(photo, degradation, notes)
