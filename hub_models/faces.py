"""Find the faces in a photo, frame them the way the face models were trained, paste back.

    out, boxes = upscale_faces(photo_uint8, hub_models.load("rafsr-x4"), 4)   # whole photo x4

Detector: OpenCV's ``cv2.CascadeClassifier`` with the frontal-face Haar cascade
(Viola-Jones / Lienhart, ``haarcascade_frontalface_default.xml``) that the opencv-python
wheel ships in ``cv2.data.haarcascades``; nothing is downloaded. OpenCV 5 removed
``CascadeClassifier`` from the main module, so requirements pin ``opencv-python-headless<5``.

Framing: the x4/x8 face models are trained on 128x128 CelebA crops (FSRNet's alignment).
The detected box is turned into a square of ``FRAME_SCALE`` times its width, shifted by
``FRAME_SHIFT`` box widths, constants measured by running this detector on the CelebA
test faces so that a detection on a CelebA image gives back (about) the image itself.

`upscale_faces`: every detected face is upscaled by the face model (its square frame), the
background by bicubic interpolation (or a general model such as RDAN), and each face is
blended back with a feathered border, giving the whole photo at the chosen scale.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from typing import Callable

import numpy as np
import torch
from PIL import Image

CASCADE_FILE = "haarcascade_frontalface_default.xml"
CASCADE_NAME = "OpenCV haarcascade_frontalface_default.xml (Viola-Jones / Lienhart, frontal faces)"

#: side of the square crop / detected box width, and the crop centre's offset from the
#: box centre in box widths (x, y); measured on CelebA test faces (see module docstring)
FRAME_SCALE = 1.45
FRAME_SHIFT = (0.0, 0.09)

_DETECT_MAX_SIDE = 800  # the detector runs on the photo scaled down to this size
#: width of the feathered border of a pasted face, as a share of its side
FEATHER = 0.08


@dataclass(frozen=True)
class Box:
    """Axis-aligned box in pixel coordinates of the photo (may extend past its border)."""

    x: int
    y: int
    w: int
    h: int

    def as_list(self) -> list[int]:
        return [int(self.x), int(self.y), int(self.w), int(self.h)]


_CV2_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _opencv_cascade():
    """OpenCV's CascadeClassifier on the frontal-face cascade that opencv-python ships."""
    import cv2

    if not hasattr(cv2, "CascadeClassifier"):  # OpenCV 5 moved it out; requirements pin <5
        raise RuntimeError(f"OpenCV {cv2.__version__} has no CascadeClassifier: install opencv-python-headless<5")
    clf = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / CASCADE_FILE))
    if clf.empty():
        raise RuntimeError(f"could not load {CASCADE_FILE} from {cv2.data.haarcascades}")
    return clf


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB (H, W, 3) -> equalised uint8 grey, the usual input of the Haar detector."""
    import cv2

    gray = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    return cv2.equalizeHist(gray)


def detect_faces(rgb: np.ndarray) -> list[Box]:
    """Frontal faces in a uint8 RGB photo, largest first, in the photo's pixel coordinates.

    The photo is scaled down to at most 800 px on its long side for the search.
    """
    h, w = rgb.shape[:2]
    f = min(1.0, _DETECT_MAX_SIDE / max(h, w))
    small = rgb
    if f < 1.0:
        small = np.asarray(Image.fromarray(rgb).resize((max(1, round(w * f)), max(1, round(h * f))), Image.BILINEAR))
    gray = to_gray(small)
    min_size = max(24, round(min(gray.shape) * 0.08))
    with _CV2_LOCK:
        found = _opencv_cascade().detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_size, min_size))
    boxes = [Box(*map(int, b)) for b in (found if len(found) else [])]
    boxes = [Box(round(b.x / f), round(b.y / f), round(b.w / f), round(b.h / f)) for b in boxes]
    return sorted(boxes, key=lambda b: b.w * b.h, reverse=True)


# ---------------------------------------------------------------------------------------
# framing, cropping, pasting back
# ---------------------------------------------------------------------------------------
def face_frame(face: Box) -> Box:
    """The square crop around a detected face that matches the models' training framing."""
    side = max(1, round(max(face.w, face.h) * FRAME_SCALE))
    cx = face.x + face.w / 2 + FRAME_SHIFT[0] * face.w
    cy = face.y + face.h / 2 + FRAME_SHIFT[1] * face.w
    return Box(round(cx - side / 2), round(cy - side / 2), side, side)


def crop(rgb: np.ndarray, box: Box) -> np.ndarray:
    """The pixels of `box`; parts outside the photo are filled by mirroring its border."""
    h, w = rgb.shape[:2]
    pad_l, pad_t = max(0, -box.x), max(0, -box.y)
    pad_r, pad_b = max(0, box.x + box.w - w), max(0, box.y + box.h - h)
    if pad_l or pad_t or pad_r or pad_b:
        mode = "symmetric" if max(pad_l, pad_r) <= w and max(pad_t, pad_b) <= h else "edge"
        rgb = np.pad(rgb, ((pad_t, pad_b), (pad_l, pad_r), (0, 0)), mode=mode)
    x, y = box.x + pad_l, box.y + pad_t
    return rgb[y:y + box.h, x:x + box.w]


def resize(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 RGB resized to (width, height) with PIL's antialiased bicubic."""
    if rgb.shape[1] == size[0] and rgb.shape[0] == size[1]:
        return rgb
    return np.asarray(Image.fromarray(rgb).resize(size, Image.BICUBIC))


def paste_back(photo: np.ndarray, face: np.ndarray, box: Box, max_side: int = 2048) -> np.ndarray:
    """Blend `face` (a square result for `box`) back into `photo`.

    The photo is first enlarged (bicubic) so that the pasted face keeps its resolution
    (at most x8, and at most `max_side` px on the long side); the face is resized to the
    box at that size and blended in with a soft 8 %-wide border so no seam shows.
    """
    h, w = photo.shape[:2]
    f = face.shape[0] / box.w
    f = max(1.0, min(f, 8.0, max_side / max(h, w)))
    canvas = resize(photo, (round(w * f), round(h * f))).astype(np.float32)
    side = max(1, round(box.w * f))
    x0, y0 = round(box.x * f), round(box.y * f)
    patch = resize(face, (side, side)).astype(np.float32)
    mask = feather_mask(side)
    ch, cw = canvas.shape[:2]
    cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(cw, x0 + side), min(ch, y0 + side)
    if cx0 >= cx1 or cy0 >= cy1:
        return canvas.round().astype(np.uint8)
    px0, py0 = cx0 - x0, cy0 - y0
    px1, py1 = px0 + (cx1 - cx0), py0 + (cy1 - cy0)
    m = mask[py0:py1, px0:px1]
    region = canvas[cy0:cy1, cx0:cx1]
    canvas[cy0:cy1, cx0:cx1] = region * (1 - m) + patch[py0:py1, px0:px1] * m
    return np.clip(canvas.round(), 0, 255).astype(np.uint8)


def feather_mask(side: int, width: float = FEATHER) -> np.ndarray:
    """(side, side, 1) float32 weights: 1 inside, a linear ramp to 0 over `width` x side at the edges."""
    ramp = np.clip(np.minimum(np.arange(side), np.arange(side)[::-1]) / max(1.0, side * width), 0, 1)
    return np.minimum(ramp[:, None], ramp[None, :])[..., None].astype(np.float32)


def _blend(canvas: np.ndarray, patch: np.ndarray, x0: int, y0: int) -> None:
    """Blend a square uint8 `patch` into `canvas` (in place) at (x0, y0) with a feathered edge."""
    side = patch.shape[0]
    ch, cw = canvas.shape[:2]
    cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(cw, x0 + side), min(ch, y0 + side)
    if cx0 >= cx1 or cy0 >= cy1:
        return
    px0, py0 = cx0 - x0, cy0 - y0
    m = feather_mask(side)[py0:py0 + cy1 - cy0, px0:px0 + cx1 - cx0]
    region = canvas[cy0:cy1, cx0:cx1].astype(np.float32)
    mixed = region * (1 - m) + patch[py0:py0 + cy1 - cy0, px0:px0 + cx1 - cx0].astype(np.float32) * m
    canvas[cy0:cy1, cx0:cx1] = np.clip(mixed.round(), 0, 255).astype(np.uint8)


def _background_model(background, scale: int):
    from . import registry
    from .base import SRModel

    if isinstance(background, SRModel):
        return background
    if background == "bicubic":
        return registry.create("bicubic", scale=scale).eval()
    if background == "rdan":
        name = f"rdan-x{scale}"
        if name not in registry.list_checkpoints():
            raise ValueError(f"no RDAN checkpoint for x{scale} (shipped: "
                             f"{', '.join(n for n in registry.list_checkpoints() if n.startswith('rdan')) or 'none'}); "
                             "use background='bicubic' or pass a model")
        return registry.load(name)
    raise ValueError(f"background must be 'bicubic', 'rdan' or an SRModel, got {background!r}")


def upscale_faces(image: np.ndarray, model, scale: int | None = None, background="bicubic",
                  progress: Callable[[int, int], None] | None = None,
                  boxes: list[Box] | None = None) -> tuple[np.ndarray, list[Box]]:
    """The whole photo `image` (uint8 (H, W, 3) RGB) at `scale`: every face (detected, or
    `boxes`) upscaled by `model` (an SRModel or a checkpoint name), the rest by `background`
    ("bicubic", "rdan" or an SRModel), faces blended in with feathered edges.

    Returns the (H*s, W*s, 3) uint8 result and the face boxes (photo coordinates).
    `progress(done, total)` counts background tiles and faces."""
    from . import registry
    from .images import rgb_to_tensor, tensor_to_rgb
    from .tiling import plan_tiles

    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
        got = f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise TypeError(f"image must be a uint8 RGB array (H, W, 3), got {got}; "
                        "read files with hub_models.photo.read_image")
    model = registry.load(model) if isinstance(model, str) else model
    scale = model._resolve_scale(scale)
    bg = _background_model(background, scale)
    bg_scale = bg._resolve_scale(scale)
    boxes = detect_faces(image) if boxes is None else list(boxes)
    h, w = image.shape[:2]
    tiled = max(h, w) > bg.tile_size
    n_bg = plan_tiles(h, w, bg.tile_size, 0).count if tiled else 1  # estimate for the bar
    total = n_bg + len(boxes)

    def bg_progress(done: int, count: int) -> None:
        nonlocal n_bg, total
        n_bg, total = count, count + len(boxes)
        if progress is not None:
            progress(done, total)

    canvas = np.empty((h * bg_scale, w * bg_scale, 3), np.uint8)
    view = torch.from_numpy(canvas).permute(2, 0, 1)[None]  # writes go into `canvas`
    lr = rgb_to_tensor(image)
    if tiled:
        from .tiling import default_overlap, upscale_tiled

        upscale_tiled(bg, lr, bg.tile_size, default_overlap(bg, bg.tile_size, bg_scale), bg.tile_batch,
                      bg_progress, scale=bg_scale, out=view)
    else:
        canvas[:] = tensor_to_rgb(bg.upscale(lr, bg_scale))
        bg_progress(1, 1)
    for i, box in enumerate(boxes):
        frame = face_frame(box)
        sr = tensor_to_rgb(model.upscale(rgb_to_tensor(crop(image, frame)), scale))
        side = frame.w * bg_scale
        if sr.shape[0] != side:
            sr = resize(sr, (side, side))
        _blend(canvas, sr, frame.x * bg_scale, frame.y * bg_scale)
        if progress is not None:
            progress(n_bg + i + 1, total)
    return canvas, boxes
