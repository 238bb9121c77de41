"""The card protocol in one place: load HR faces, make the LR once, score.

    from hub_models.evaluation import evaluate_model, load_hr
    result = evaluate_model(model, load_hr(paths), scale=4)   # {"model": {...}, "bicubic": {...}, ...}

LR = `degradations.bicubic_lr_8bit` (antialiased MATLAB-style bicubic downscale of the
mod-cropped HR, rounded to 8 bits as a saved LR image would be). Scores:
`metrics.evaluate` (default protocol "dic": Y channel BT.601, rounded, 8-pixel border crop,
7x7 uniform SSIM; LPIPS AlexNet v0.1), per image, then averaged over images. The model and
bicubic are measured on the same LR. Used by the evaluate command (`python -m train.evaluate`),
training validation (`score`), the benchmark and the demo.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import torch

from . import metrics
from .registry import create
from .degradations import bicubic_lr_8bit, mod_crop, real_world_lr_fixed

DEGRADATIONS = ("bicubic", "real-world")


def read_rgb(path: Path | str):
    """uint8 HxWx3 RGB array, or None (with a warning) when the file is not a readable image
    (OpenCV reads every file as 3-channel colour)."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        warnings.warn(f"skipping unreadable image {path}", stacklevel=2)
        return None
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def load_hr(paths: list[Path]) -> list[torch.Tensor]:
    """The readable images of `paths` as float (3,H,W) tensors in [0,1] (unreadable ones are
    skipped with a warning)."""
    images = []
    for path in paths:
        rgb = read_rgb(path)
        if rgb is not None:
            images.append(torch.from_numpy(rgb).permute(2, 0, 1).float().div(255))
    return images


def per_image_scores(model, lr: torch.Tensor, hr: torch.Tensor, scale: int, protocol: str = metrics.DEFAULT_PROTOCOL,
                     batch_size: int = 16) -> dict[str, torch.Tensor]:
    """{metric: (N,) values} of `model.upscale(lr)` against `hr`, in chunks of `batch_size`."""
    scores: dict[str, list[torch.Tensor]] = {}
    for lr_chunk, hr_chunk in zip(lr.split(batch_size), hr.split(batch_size)):
        sr = model.upscale(lr_chunk, scale=scale)
        for key, values in metrics.evaluate(sr, hr_chunk.to(sr.device), protocol=protocol, scale=scale).items():
            scores.setdefault(key, []).append(values)
    return {key: torch.cat(values) for key, values in scores.items()}


@torch.no_grad()
def score(model, lr: torch.Tensor, hr: torch.Tensor, scale: int, protocol: str = metrics.DEFAULT_PROTOCOL,
          batch_size: int = 16) -> dict[str, float]:
    """Mean scores of `model` on given LR/HR pairs (e.g. training validation's fixed faces)."""
    return {key: float(values.mean()) for key, values in per_image_scores(model, lr, hr, scale, protocol,
                                                                           batch_size).items()}


@torch.no_grad()
def evaluate_model(model, hr_images: list[torch.Tensor], scale: int, protocol: str = "dic", batch_size: int = 16,
                   with_bicubic: bool = True, degradation: str = "bicubic") -> dict:
    """Mean scores of `model` (and bicubic) over `hr_images` at `scale`; also seconds/image.

    `degradation`: "bicubic" (the papers' benchmark, `bicubic_lr_8bit`) or "real-world" (eq. 28,
    fixed per-image draws, `real_world_lr_fixed`: image i of `hr_images` always gets the same).
    Returns {"model": {metric: mean}, "bicubic": {...} (with_bicubic), "seconds_per_image",
    "num_images"}; seconds count `model.upscale` only."""
    if degradation not in DEGRADATIONS:
        raise ValueError(f"degradation must be one of {', '.join(DEGRADATIONS)}, got {degradation!r}")
    bicubic = create("bicubic", scale=scale)
    sums: dict[str, dict[str, list]] = {"model": {}, "bicubic": {}}
    seconds = 0.0
    groups: dict[tuple, list[tuple[int, torch.Tensor]]] = {}
    for index, image in enumerate(hr_images):  # batch images of equal size together
        image = mod_crop(image.unsqueeze(0), scale)[0]
        groups.setdefault(tuple(image.shape), []).append((index, image))
    for images in groups.values():
        for start in range(0, len(images), batch_size):
            indices, batch = zip(*images[start : start + batch_size])
            hr = torch.stack(batch)
            lr = (bicubic_lr_8bit(hr, scale) if degradation == "bicubic" else
                  torch.cat([real_world_lr_fixed(image[None], scale, first_index=i) for i, image in zip(indices, batch)]))
            t0 = time.perf_counter()
            sr = model.upscale(lr, scale=scale)
            seconds += time.perf_counter() - t0
            runs = [("model", sr)] + ([("bicubic", bicubic.upscale(lr, scale=scale))] if with_bicubic else [])
            for who, out in runs:
                for key, values in metrics.evaluate(out, hr, protocol=protocol, scale=scale).items():
                    sums[who].setdefault(key, []).append(values)
    result = {who: {k: float(torch.cat(v).mean()) for k, v in scores.items()} for who, scores in sums.items() if scores}
    result["seconds_per_image"] = seconds / max(len(hr_images), 1)
    result["num_images"] = len(hr_images)
    return result
