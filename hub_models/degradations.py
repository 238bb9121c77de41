"""Degradations used to make low-resolution (LR) inputs from high-resolution (HR) faces.

Conventions: images are float tensors in [0, 1], RGB, shape ``(N, 3, H, W)``; a single
``(3, H, W)`` image is accepted and returned without the batch axis.  Every function
works on the input's device (CPU or GPU) and is batched.

* :func:`imresize` -- bicubic resize that reproduces MATLAB's ``imresize`` (cubic kernel
  a=-0.5, antialiasing when downscaling, symmetric border handling; in `resize.py`).
* :func:`mod_crop` / :func:`bicubic_degrade` -- the evaluation protocol of the face SR
  literature: crop HR to a multiple of the scale, then bicubic-downscale it;
  :func:`bicubic_lr_8bit` is the card protocol's LR (the one place it is made).
* :class:`RealWorldParams` / :func:`real_world_degrade` -- the random "real-world"
  pipeline of eq. (28) in the AGRNet paper: blur -> downscale -> Gaussian noise -> JPEG
  (-> optional bicubic upsampling back to a fixed size).

This module must not import the model code.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .images import as_image_batch
from .resize import as_any_batch, as_pair, imresize

__all__ = [
    "imresize",
    "mod_crop",
    "bicubic_degrade",
    "bicubic_lr_8bit",
    "RealWorldParams",
    "real_world_degrade",
    "real_world_lr_fixed",
    "real_world_ranges",
    "BLUR_KINDS",
]

BLUR_KINDS = ("gaussian", "box", "median", "motion")


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def _check_image(x: torch.Tensor, name: str = "hr", tol: float = 1e-3) -> None:
    """Validate a batched RGB float image in [0, 1]."""
    as_image_batch(x, name, range_tol=tol)


# ---------------------------------------------------------------------------------------
# Bicubic evaluation protocol
# ---------------------------------------------------------------------------------------
def mod_crop(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """Crop the bottom/right so that H and W are multiples of ``scale`` (MATLAB modcrop)."""
    x, squeeze = as_any_batch(hr, "hr")
    scale = _int_scale(scale)
    h, w = x.shape[-2:]
    h2, w2 = h - h % scale, w - w % scale
    if h2 == 0 or w2 == 0:
        raise ValueError(f"image {h}x{w} is smaller than the scale {scale}")
    x = x[..., :h2, :w2]
    return x.squeeze(0) if squeeze else x


def _int_scale(scale) -> int:
    if isinstance(scale, bool) or not float(scale).is_integer() or int(scale) < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    return int(scale)


def bicubic_degrade(hr: torch.Tensor, scale: int, *, clamp: bool = True,
                    quantize: bool = False) -> torch.Tensor:
    """LR = MATLAB-style bicubic downscale (antialiased) of HR by an integer ``scale``.

    HR sizes not divisible by ``scale``: HR is first cropped with :func:`mod_crop` (bottom
    and right), so LR is exactly ``(H // scale, W // scale)``; compare SR outputs against
    ``mod_crop(hr, scale)``.  The result is clamped to [0, 1] by default (an LR *image*,
    as a saved 8-bit LR file would be); ``quantize=True`` also rounds to 8-bit levels, as
    when LR inputs are stored as PNG files.
    """
    x, squeeze = as_any_batch(hr, "hr")
    _check_image(x, "hr")
    scale = _int_scale(scale)
    x = mod_crop(x, scale)
    h, w = x.shape[-2:]
    lr = imresize(x, scale=1.0 / scale)
    assert lr.shape[-2:] == (h // scale, w // scale)
    if clamp or quantize:
        lr = lr.clamp(0, 1)
    if quantize:
        lr = torch.round(lr * 255) / 255
    return lr.squeeze(0) if squeeze else lr


def bicubic_lr_8bit(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """The card protocol's LR: `bicubic_degrade` rounded to 8-bit levels, as a saved LR PNG
    would be. Evaluation, training validation, the benchmark and the demo all make it here."""
    return bicubic_degrade(hr, scale, quantize=True)


# ---------------------------------------------------------------------------------------
# Real-world degradation pipeline (AGRNet paper, eq. 28)
# ---------------------------------------------------------------------------------------
def _opencv_gaussian_sigma(ksize: int) -> float:
    """OpenCV's sigma for ``GaussianBlur(img, (k, k), 0)``: 0.3*((k-1)*0.5 - 1) + 0.8."""
    return 0.3 * ((ksize - 1) * 0.5 - 1) + 0.8


#: the paper's ranges of eq. 28 (AGRNet, Sec. 4.2), for 512-px HR; all inclusive
PAPER_RANGES = {"blur_size": (3, 15), "motion_size": (5, 25), "downscale": (32 / 512, 128 / 512),
                "noise_sigma": (0.0, 25.0), "jpeg_quality": (60, 85)}


def _kernel_range(paper_range: tuple[int, int], hr_size: int) -> tuple[int, int]:
    """A kernel-size range given for 512-px HR, rescaled to `hr_size` (at least 3)."""
    lo = max(3, int(round(paper_range[0] * hr_size / 512)))
    return lo, max(lo, int(round(paper_range[1] * hr_size / 512)))


def real_world_ranges(hr_size: int | None = None) -> dict:
    """The ranges `RealWorldParams.sample` draws from by default, kernel sizes rescaled to
    `hr_size` as it does (what a real-world run's training record and card state)."""
    ranges = {"blur_kinds": list(BLUR_KINDS), **{k: list(v) for k, v in PAPER_RANGES.items()}, "hr_size": hr_size}
    if hr_size is not None:
        ranges["blur_size"] = list(_kernel_range(PAPER_RANGES["blur_size"], hr_size))
        ranges["motion_size"] = list(_kernel_range(PAPER_RANGES["motion_size"], hr_size))
    return ranges


@dataclass(frozen=True)
class RealWorldParams:
    """Parameters of one draw of the real-world degradation (eq. 28 of the AGRNet paper).

        LR = JPEG_q( downscale_s( HR * k_r ) + n_p )   [ -> bicubic up to ``upsample_to`` ]

    Fields (all can be set by hand, e.g. from demo sliders, or drawn with :meth:`sample`):
        blur_kind: ``"gaussian" | "box" | "median" | "motion" | "none"``.
        blur_size: odd kernel size in pixels of the HR image (paper: 3-15; motion 5-25).
        blur_sigma: Gaussian sigma; ``None`` = OpenCV's rule from the size
            (``GaussianBlur(img, (k, k), 0)``, which the paper's setting implies).
        motion_angle: motion-blur direction in degrees.
        downscale: LR size / HR size (paper: s in [32/512, 128/512] = [1/16, 1/4]); the LR
            size is ``max(1, round(H * downscale))`` per axis, so it works for any HR size.
        noise_sigma: std of additive white Gaussian noise on the 0-255 scale (paper: 0-25).
        jpeg_quality: JPEG quality 1-100 (paper: 60-85); ``None`` skips JPEG.
        upsample_to: ``None`` (return the LR) or an int / (h, w) to bicubic-upsample the
            degraded LR back to (the paper's ``I_LR-UP``, used as network input).
        seed: seeds the torch.Generator of the noise, so a params object fully
            determines the output.
    """

    blur_kind: str = "gaussian"
    blur_size: int = 7
    blur_sigma: float | None = None
    motion_angle: float = 0.0
    downscale: float = 0.25
    noise_sigma: float = 0.0
    jpeg_quality: int | None = 75
    upsample_to: int | tuple | None = None
    seed: int = 0

    def __post_init__(self):
        if self.blur_kind not in BLUR_KINDS + ("none",):
            raise ValueError(f"blur_kind must be one of {BLUR_KINDS + ('none',)}, got {self.blur_kind!r}")
        if self.blur_kind != "none":
            if int(self.blur_size) != self.blur_size or self.blur_size < 1 or self.blur_size % 2 == 0:
                raise ValueError(f"blur_size must be a positive odd integer, got {self.blur_size!r}")
            if self.blur_kind == "motion" and self.blur_size < 3:
                raise ValueError(f"motion blur needs blur_size >= 3, got {self.blur_size}")
        if self.blur_sigma is not None and not self.blur_sigma > 0:
            raise ValueError(f"blur_sigma must be > 0 or None, got {self.blur_sigma!r}")
        if not (0 < self.downscale <= 1):
            raise ValueError(f"downscale (LR/HR size ratio) must be in (0, 1], got {self.downscale!r}")
        if not (self.noise_sigma >= 0 and math.isfinite(self.noise_sigma)):
            raise ValueError(f"noise_sigma must be >= 0 (0-255 scale), got {self.noise_sigma!r}")
        if self.jpeg_quality is not None and not (1 <= int(self.jpeg_quality) <= 100):
            raise ValueError(f"jpeg_quality must be in [1, 100] or None, got {self.jpeg_quality!r}")
        if self.upsample_to is not None:
            for v in as_pair(self.upsample_to, "upsample_to"):
                if int(v) != v or v < 1:
                    raise ValueError(f"upsample_to must be positive ints, got {self.upsample_to!r}")

    @classmethod
    def sample(cls, rng_or_seed=None, *, kinds: Sequence[str] = BLUR_KINDS,
               blur_size_range: tuple[int, int] = PAPER_RANGES["blur_size"],
               motion_size_range: tuple[int, int] = PAPER_RANGES["motion_size"],
               downscale_range: tuple[float, float] = PAPER_RANGES["downscale"],
               noise_range: tuple[float, float] = PAPER_RANGES["noise_sigma"],
               jpeg_range: tuple[int, int] = PAPER_RANGES["jpeg_quality"],
               upsample_to=None, hr_size: int | None = None, **fixed) -> "RealWorldParams":
        """Draw parameters with the paper's ranges (defaults; all inclusive).

        ``rng_or_seed`` is an int seed or a ``numpy.random.Generator`` (draw a list for a
        batch from one generator: ``[RealWorldParams.sample(rng) for _ in range(n)]``).
        Any field passed in ``fixed`` (e.g. ``downscale=0.25``) overrides the draw.

        The kernel-size ranges are the paper's, for 512x512 HR; on 128x128 HR the same
        sizes blur 4x more relative to the face.  ``hr_size`` (e.g. 128) rescales both
        kernel-size ranges by ``hr_size / 512`` (rounded, odd, at least 3: at 128 this
        gives 3 for gaussian/box/median and 3-5 for motion).  ``downscale`` is already a
        fraction of the HR size, so it needs no rescaling.
        """
        rng = rng_or_seed if isinstance(rng_or_seed, np.random.Generator) \
            else np.random.default_rng(rng_or_seed)
        unknown = set(fixed) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise TypeError(f"unknown RealWorldParams fields: {sorted(unknown)}")

        if hr_size is not None:
            if int(hr_size) != hr_size or hr_size < 1:
                raise ValueError(f"hr_size must be a positive integer, got {hr_size!r}")
            blur_size_range = _kernel_range(blur_size_range, hr_size)
            motion_size_range = _kernel_range(motion_size_range, hr_size)

        def odd(lo, hi):
            choices = [k for k in range(int(lo), int(hi) + 1) if k % 2 == 1]
            if not choices:
                raise ValueError(f"no odd kernel size in [{lo}, {hi}]")
            return int(rng.choice(choices))

        # draw everything in a fixed order so a seed always gives the same params
        kind = str(kinds[int(rng.integers(len(kinds)))])
        size = odd(*motion_size_range) if kind == "motion" else odd(*blur_size_range)
        angle = float(rng.uniform(0.0, 180.0))
        downscale = float(rng.uniform(*downscale_range))
        noise = float(rng.uniform(*noise_range))
        quality = int(rng.integers(jpeg_range[0], jpeg_range[1] + 1))
        seed = int(rng.integers(0, 2**62))
        values = dict(blur_kind=kind, blur_size=size, blur_sigma=None,
                      motion_angle=angle if kind == "motion" else 0.0,
                      downscale=downscale, noise_sigma=noise, jpeg_quality=quality,
                      upsample_to=upsample_to, seed=seed)
        values.update(fixed)
        return cls(**values)


def _median_blur(x: torch.Tensor, k: int) -> torch.Tensor:
    """k x k median with replicate borders (OpenCV medianBlur's border).

    Same result as ``kornia.filters.median_blur(x, k, border_type="replicate")`` (tested),
    but kornia gathers the k*k neighbours with a one-hot convolution (k^4 multiply-adds per
    pixel): 3.4x slower for k=15 on CPU.  Here the neighbours are gathered with unfold.
    """
    r = k // 2
    u = F.pad(x, (r, r, r, r), mode="replicate").unfold(2, k, 1).unfold(3, k, 1)
    return u.reshape(*u.shape[:4], k * k).median(dim=-1).values


def _blur(x: torch.Tensor, p: RealWorldParams) -> torch.Tensor:
    import kornia.filters as kf

    k = int(p.blur_size)
    if p.blur_kind == "none" or k == 1:
        return x
    # Border handling follows OpenCV (what such pipelines are usually written with):
    # reflect-101 ('reflect' in torch) for filters, replicate for the median.
    if p.blur_kind == "gaussian":
        s = float(p.blur_sigma) if p.blur_sigma is not None else _opencv_gaussian_sigma(k)
        return kf.gaussian_blur2d(x, (k, k), (s, s), border_type="reflect")
    if p.blur_kind == "box":
        return kf.box_blur(x, (k, k), border_type="reflect")
    if p.blur_kind == "median":
        return _median_blur(x, k)
    if p.blur_kind == "motion":
        return kf.motion_blur(x, k, float(p.motion_angle), 0.0, border_type="reflect")
    raise AssertionError(p.blur_kind)


def _jpeg_opencv(x: torch.Tensor, quality: int) -> torch.Tensor:
    """Real libjpeg round trip (4:2:0, standard tables) of one (1, 3, h, w) image."""
    import cv2

    u8 = torch.round(x[0].detach().clamp(0, 1) * 255).to(torch.uint8)
    arr = np.ascontiguousarray(u8.permute(1, 2, 0).cpu().numpy()[:, :, ::-1])  # RGB -> BGR
    ok, buf = cv2.imencode(".jpg", arr, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise RuntimeError("OpenCV failed to encode JPEG")
    dec = cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1]
    out = torch.from_numpy(np.ascontiguousarray(dec)).permute(2, 0, 1)[None]
    return out.to(device=x.device, dtype=x.dtype) / 255


def _jpeg_kornia(x: torch.Tensor, quality: int) -> torch.Tensor:
    from kornia.enhance import jpeg_codec_differentiable

    q = torch.tensor([float(quality)], device=x.device, dtype=torch.float32)
    return jpeg_codec_differentiable(x, q).clamp(0, 1)


def _degrade_one(x: torch.Tensor, p: RealWorldParams, jpeg: str) -> torch.Tensor:
    h, w = x.shape[-2:]
    x = _blur(x, p)
    lr_h, lr_w = max(1, round(h * p.downscale)), max(1, round(w * p.downscale))
    if (lr_h, lr_w) != (h, w):
        x = imresize(x, size=(lr_h, lr_w)).clamp(0, 1)
    if p.noise_sigma > 0:
        # Noise is drawn on the CPU from a generator seeded by params.seed and then moved,
        # so the same params give the same noise on CPU and GPU.
        g = torch.Generator(device="cpu").manual_seed(int(p.seed))
        n = torch.randn(x.shape, generator=g, dtype=torch.float32)
        x = (x + (n * (p.noise_sigma / 255.0)).to(device=x.device, dtype=x.dtype)).clamp(0, 1)
    if p.jpeg_quality is not None:
        x = _jpeg_opencv(x, p.jpeg_quality) if jpeg == "opencv" else _jpeg_kornia(x, p.jpeg_quality)
    if p.upsample_to is not None:
        x = imresize(x, size=as_pair(p.upsample_to, "upsample_to")).clamp(0, 1)
    return x


def real_world_degrade(hr: torch.Tensor, params=None, *, seed=None,
                       jpeg: str = "opencv", **sample_kwargs) -> torch.Tensor:
    """Apply the real-world degradation (eq. 28) to a batch, with per-image parameters.

    Args:
        hr: ``(N, 3, H, W)`` or ``(3, H, W)`` float in [0, 1], on any device.
        params: a :class:`RealWorldParams` (used for every image; image ``i`` gets noise
            seed ``params.seed + i`` so the noise differs between images), a sequence of N
            params (one per image), or ``None`` to draw per-image params with
            ``RealWorldParams.sample`` from a generator seeded by ``seed`` (``sample_kwargs``
            are passed on, e.g. ``downscale=0.25``, ``upsample_to=128``).
        jpeg: ``"opencv"`` (default) runs the real libjpeg codec per image; the small LR
            image makes a CPU round trip (the only step that leaves the device).  It is the
            correct degradation (real quantisation, 4:2:0 chroma, 8-bit output) and costs
            well under a millisecond for a 32x32 LR.  ``"kornia"`` uses
            ``kornia.enhance.jpeg_codec_differentiable``, which stays on the device but is
            an approximation of the codec; use it when the CPU round trip matters.  (The
            pipeline runs under ``torch.no_grad``: it makes training inputs.)

    Returns the degraded images, clamped to [0, 1], same dtype/device as ``hr``.  Without
    ``upsample_to`` the LR size is ``round(H * downscale)``; all images of a batch must end
    up the same size (same ``downscale`` or a common ``upsample_to``), else ValueError.
    Blur runs on the HR (inputs are assumed to be RGB faces; JPEG needs 3 channels).
    """
    x, squeeze = as_any_batch(hr, "hr")
    _check_image(x, "hr")
    if jpeg not in ("opencv", "kornia"):
        raise ValueError(f"jpeg must be 'opencv' or 'kornia', got {jpeg!r}")
    n = x.shape[0]
    if params is None:
        rng = np.random.default_rng(seed)
        plist = [RealWorldParams.sample(rng, **sample_kwargs) for _ in range(n)]
    else:
        if seed is not None or sample_kwargs:
            raise ValueError("seed= and sampling options are only used when params is None")
        if isinstance(params, RealWorldParams):
            plist = [dataclasses.replace(params, seed=params.seed + i) for i in range(n)]
        else:
            plist = list(params)
            if len(plist) != n or not all(isinstance(p, RealWorldParams) for p in plist):
                raise ValueError(f"params must be a RealWorldParams or a list of {n} of them")
    with torch.no_grad():
        outs = [_degrade_one(x[i:i + 1], p, jpeg) for i, p in enumerate(plist)]
    shapes = {tuple(o.shape[-2:]) for o in outs}
    if len(shapes) != 1:
        raise ValueError(
            f"images of the batch got different LR sizes {sorted(shapes)}: use one downscale "
            "for the batch or set upsample_to, or call real_world_degrade per image")
    out = torch.cat(outs, 0)
    return out.squeeze(0) if squeeze else out


#: first per-image seed of the fixed real-world draws (training validation and `train.evaluate`)
FIXED_REAL_WORLD_SEED = 10_000


def real_world_lr_fixed(hr: torch.Tensor, scale: int, first_index: int = 0) -> torch.Tensor:
    """The real-world LR of a fixed test set: image `first_index + i` of the batch gets eq. 28's
    parameters drawn from seed `FIXED_REAL_WORLD_SEED + first_index + i` (kernel sizes rescaled to
    its HR size), downscaled by exactly `scale`; so every model is scored on the same inputs."""
    params = [RealWorldParams.sample(FIXED_REAL_WORLD_SEED + first_index + i, hr_size=int(hr.shape[-1]),
                                     downscale=1 / scale) for i in range(hr.shape[0])]
    return real_world_degrade(hr, params)
