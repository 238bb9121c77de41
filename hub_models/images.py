"""Input checks shared by the models, degradations and metrics: one place that says what an
image tensor must be (float, (N,3,H,W) or (3,H,W), finite, in [0, 1]) and how it is told."""

from __future__ import annotations

import math

import torch


class ImageInputError(ValueError, TypeError):
    """A tensor that is not a valid image batch (type, shape, dtype, NaN/Inf or range).

    Both a ValueError and a TypeError, so callers may catch either: a wrong dtype is a type
    problem to some and a value problem to others."""


def as_image_batch(x, name: str = "image", *, channels: int | None = 3,
                   range_tol: float | None = None, hint: str = "") -> tuple[torch.Tensor, bool]:
    """Check ``x`` and return it as a batch ``(N,C,H,W)`` plus whether a batch axis was added.

    ``channels``: required channel count (None: any). ``range_tol``: when given, values must
    lie in [0, 1] within this tolerance. ``hint`` is appended to the range message. Float
    dtype, a non-empty tensor and finite values are always required."""
    if not isinstance(x, torch.Tensor):
        raise ImageInputError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    squeezed = x.ndim == 3
    if squeezed:
        x = x.unsqueeze(0)
    expected = f"(N, {channels}, H, W) or ({channels}, H, W)" if channels else "(N, C, H, W) or (C, H, W)"
    if x.ndim != 4:
        raise ImageInputError(f"{name} must have shape {expected}, got {tuple(x.shape)}")
    if channels is not None and x.shape[1] != channels:
        kind = " (RGB)" if channels == 3 else ""
        raise ImageInputError(f"{name} must have {channels}{kind} channels, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ImageInputError(f"{name} must be a float tensor in [0, 1], got dtype {x.dtype}; "
                              "convert 8-bit images with x.float() / 255")
    if x.numel() == 0:
        raise ImageInputError(f"{name} is empty: shape {tuple(x.shape)}")
    lo, hi = (float(v) for v in torch.aminmax(x.detach()))  # one pass; NaN/Inf propagate here
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ImageInputError(f"{name} contains NaN or Inf values")
    if range_tol is not None and (lo < -range_tol or hi > 1 + range_tol):
        raise ImageInputError(f"{name} values must lie in [0, 1] (tolerance {range_tol:.4g}), "
                              f"got range [{lo:.4g}, {hi:.4g}]{hint}")
    return x, squeezed


#: how to fix an out-of-range input, appended to the range error of `upscale`
RANGE_HINT = ("; models take float images in [0, 1]: divide 0..255 images by 255 "
              "(x.float() / 255) and map [-1, 1] images with (x + 1) / 2")


def check_image_batch(x: torch.Tensor, name: str = "lr") -> torch.Tensor:
    """Validate an image batch (N,3,H,W) float in [0,1]; a single (3,H,W) gets a batch dim."""
    return as_image_batch(x, name)[0]


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad the bottom and right of (N,C,H,W) to multiples of `multiple`: reflect, or replicate
    where the image is too small to reflect (the caller crops the output back)."""
    pad_h, pad_w = (-x.shape[-2]) % multiple, (-x.shape[-1]) % multiple
    if not (pad_h or pad_w):
        return x
    mode = "reflect" if pad_h < x.shape[-2] and pad_w < x.shape[-1] else "replicate"
    return torch.nn.functional.pad(x, (0, pad_w, 0, pad_h), mode=mode)


def rgb_to_tensor(rgb) -> torch.Tensor:
    """uint8 (H, W, 3) RGB array -> float (1, 3, H, W) in [0, 1]."""
    import numpy as np

    arr = np.asarray(rgb)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ImageInputError(f"expected a uint8 RGB array (H, W, 3), got {arr.dtype} of shape {arr.shape}")
    return torch.from_numpy(np.array(arr, copy=not arr.flags.writeable or None)).permute(2, 0, 1).unsqueeze(0).float().div_(255)


def tensor_to_rgb(x: torch.Tensor):
    """float (1, 3, H, W) or (3, H, W) in [0, 1] -> uint8 (H, W, 3) array, rounded."""
    if x.dim() == 4:
        x = x[0]
    return (x.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
