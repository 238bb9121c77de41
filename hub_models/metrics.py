"""Image-quality metrics for face super-resolution, matching the literature's protocols.

All functions take ``sr`` and ``hr`` as float tensors in [0, 1], RGB, shape ``(N, 3, H, W)``
(or a single ``(3, H, W)``), on any device, and return **per-image** values as a float64
tensor of shape ``(N,)`` (average them per image yourself; nothing is pooled).

PSNR/SSIM are computed on the 8-bit-quantised images (``round(x * 255)``), because papers
evaluate saved 8-bit files.  Y is ITU-R BT.601 as MATLAB's ``rgb2ycbcr`` (16-235 range):
``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` with R, G, B in [0, 1].

Protocols (``protocol=``), the three families found in face SR papers:

=========  ==================  ============  =============================================
name       Y                   border crop   SSIM
=========  ==================  ============  =============================================
dic        rounded to integer  8 pixels      7x7 uniform window, sample covariance
(default)                                    (scikit-image ``structural_similarity`` default)
sparnet    truncated (floor)   none          11x11 Gaussian, sigma 1.5 (Wang et al. 2004)
basicsr    float (no rounding) ``scale``     11x11 Gaussian, sigma 1.5 (Wang et al. 2004)
=========  ==================  ============  =============================================

SSIM constants: K1=0.01, K2=0.03, data range 255; SSIM is the mean of the SSIM map over
the windows that lie fully inside the (cropped) image.  PSNR uses data range 255.
``psnr_rgb`` is PSNR over the three quantised RGB channels with the protocol's crop.

PSNR of identical images is ``inf`` (not capped), as in BasicSR/skimage; filter or clip
before averaging if that can happen.

LPIPS is AlexNet v0.1 with weights converted offline (``python -m hub_models.lpips_convert``)
into ``hub_models/weights/lpips_alex_v0.1.safetensors``; nothing is downloaded at run time.

Bad inputs (non-tensors, integer dtypes, shape mismatch, not 3 channels, NaN/Inf, values
outside [0, 1] by more than half an 8-bit level) raise ``ValueError``; clamp model outputs
with ``sr.clamp(0, 1)`` first.  This module must not import the model code.
"""
from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .images import as_image_batch

__all__ = [
    "MetricSpec",
    "METRICS",
    "format_metric",
    "PROTOCOLS",
    "DEFAULT_PROTOCOL",
    "LPIPS_WEIGHTS",
    "rgb_to_y",
    "quantize_8bit",
    "psnr",
    "psnr_rgb",
    "ssim",
    "lpips",
    "lpips_loss",
    "get_lpips_net",
    "evaluate",
]

@dataclass(frozen=True)
class MetricSpec:
    """How a metric is named and shown: cards, benchmark tables and the demo format from it."""

    name: str               # the key in result rows ("psnr_y")
    label: str              # what a table or the demo calls it ("PSNR-Y")
    digits: int             # decimals shown
    higher_is_better: bool
    unit: str = ""          # "dB"

    @property
    def header(self) -> str:
        """A table column title: the label with its unit, e.g. "PSNR-Y (dB)"."""
        return f"{self.label} ({self.unit})" if self.unit else self.label


#: the metrics `evaluate` returns, in the order tables show them
METRICS: dict[str, MetricSpec] = {spec.name: spec for spec in (
    MetricSpec("psnr_y", "PSNR-Y", 2, True, "dB"),
    MetricSpec("ssim_y", "SSIM-Y", 4, True),
    MetricSpec("lpips", "LPIPS (alex)", 4, False),
    MetricSpec("psnr_rgb", "PSNR-RGB", 2, True, "dB"),
)}


def format_metric(name: str, value: float | None, *, digits: int | None = None, unit: bool = False) -> str:
    """`value` of metric `name` with its spec's digits (or `digits`), "-" for None/NaN;
    `unit=True` appends the unit ("30.40 dB")."""
    spec = METRICS[name]
    if value is None or value != value:
        return "-"
    text = f"{float(value):.{spec.digits if digits is None else digits}f}"
    return f"{text} {spec.unit}" if unit and spec.unit else text


LPIPS_WEIGHTS = Path(__file__).resolve().parent / "weights" / "lpips_alex_v0.1.safetensors"
RANGE_TOL = 0.5 / 255  # values this far outside [0, 1] are clamped (they quantise to 0/255)


@dataclass(frozen=True)
class Protocol:
    y_mode: str        # "round" | "floor" | "float"
    crop: str | int    # int pixels, or "scale"
    window: str        # "uniform7" | "gaussian11"
    sample_covariance: bool

    def describe(self) -> str:
        """In words, e.g. "Y rounded, 8 px border crop, 7x7 uniform SSIM" (Y: BT.601 luma)."""
        crop = "no crop" if not self.crop else "scale-pixel crop" if self.crop == "scale" else f"{self.crop} px border crop"
        return f"{_Y_WORDS.get(self.y_mode, self.y_mode)}, {crop}, {_WINDOW_WORDS.get(self.window, self.window)}"


_Y_WORDS = {"round": "Y rounded", "floor": "Y floored", "float": "Y float"}
_WINDOW_WORDS = {"uniform7": "7x7 uniform SSIM", "gaussian11": "11x11 Gaussian SSIM"}
#: how LPIPS is computed here (cards, benchmark and demo say it with these words)
LPIPS_NOTE = "LPIPS AlexNet v0.1 on RGB"


def describe_protocol(name: str) -> str:
    """`PROTOCOLS[name].describe()`, or the name itself for an unknown protocol."""
    return PROTOCOLS[name].describe() if name in PROTOCOLS else name


PROTOCOLS: dict[str, Protocol] = {
    "dic": Protocol(y_mode="round", crop=8, window="uniform7", sample_covariance=True),
    "sparnet": Protocol(y_mode="floor", crop=0, window="gaussian11", sample_covariance=False),
    "basicsr": Protocol(y_mode="float", crop="scale", window="gaussian11", sample_covariance=False),
}
DEFAULT_PROTOCOL = "dic"


# ---------------------------------------------------------------------------------------
# input handling
# ---------------------------------------------------------------------------------------
def _as_batch(x, name: str) -> torch.Tensor:
    return as_image_batch(x, name, range_tol=RANGE_TOL, hint="; clamp model outputs with .clamp(0, 1)")[0]


def _check_pair(sr, hr) -> tuple[torch.Tensor, torch.Tensor]:
    sr = _as_batch(sr, "sr")
    hr = _as_batch(hr, "hr")
    if sr.shape != hr.shape:
        raise ValueError(f"sr and hr shapes differ: {tuple(sr.shape)} vs {tuple(hr.shape)}")
    return sr, hr.to(sr.device)


def _get_protocol(protocol: str) -> Protocol:
    try:
        return PROTOCOLS[protocol]
    except (KeyError, TypeError):
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {sorted(PROTOCOLS)}") from None


def _crop_pixels(p: Protocol, protocol: str, scale) -> int:
    if p.crop != "scale":
        return int(p.crop)
    if scale is None:
        raise ValueError(f"protocol {protocol!r} crops `scale` border pixels: pass scale=")
    if isinstance(scale, bool) or int(scale) != scale or scale < 0:
        raise ValueError(f"scale must be a non-negative integer, got {scale!r}")
    return int(scale)


def _crop(x: torch.Tensor, c: int) -> torch.Tensor:
    if c == 0:
        return x
    if x.shape[-2] <= 2 * c or x.shape[-1] <= 2 * c:
        raise ValueError(f"image {x.shape[-2]}x{x.shape[-1]} is too small for a {c}-pixel border crop")
    return x[..., c:-c, c:-c]


def quantize_8bit(x: torch.Tensor) -> torch.Tensor:
    """8-bit levels 0..255 (float64): ``round(clamp(x, 0, 1) * 255)``."""
    return torch.round(x.to(torch.float64).clamp(0, 1) * 255)


# exact-arithmetic guard: Y values that are mathematically integers (e.g. grey 85 -> 89)
# must not fall just below the integer because of float64 rounding.
_Y_EPS = 1e-6


def rgb_to_y(x: torch.Tensor, mode: str = "round", quantize: bool = True) -> torch.Tensor:
    """BT.601 luma on the 0-255 scale as MATLAB ``rgb2ycbcr`` (16-235), float64, (N, 1, H, W).

    ``x`` is RGB in [0, 1], ``(N, 3, H, W)`` or ``(3, H, W)``.  With ``quantize`` (default) it
    is first rounded to 8-bit levels.  ``mode``: ``"round"`` -- round half up to an integer,
    like MATLAB's uint8 ``rgb2ycbcr`` (DIC protocol); ``"floor"`` -- truncate (SPARNet
    protocol); ``"float"`` -- no rounding (BasicSR protocol).
    """
    if mode not in ("round", "floor", "float"):
        raise ValueError(f"mode must be 'round', 'floor' or 'float', got {mode!r}")
    x = _as_batch(x, "x")
    v = quantize_8bit(x) if quantize else x.to(torch.float64) * 255
    y = 16.0 + (65.481 * v[:, 0:1] + 128.553 * v[:, 1:2] + 24.966 * v[:, 2:3]) / 255.0
    if mode == "round":
        y = torch.floor(y + 0.5 + _Y_EPS)
    elif mode == "floor":
        y = torch.floor(y + _Y_EPS)
    return y


def _mse_psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    mse = ((a - b) ** 2).flatten(1).mean(1)
    with torch.no_grad():
        return 10.0 * torch.log10((255.0 ** 2) / mse)  # mse == 0 -> inf


# ---------------------------------------------------------------------------------------
# PSNR / SSIM
# ---------------------------------------------------------------------------------------
def _prepared_y(sr, hr, protocol, scale):
    p = _get_protocol(protocol)
    sr, hr = _check_pair(sr, hr)
    c = _crop_pixels(p, protocol, scale)
    ys = _crop(rgb_to_y(sr, p.y_mode), c)
    yh = _crop(rgb_to_y(hr, p.y_mode), c)
    return p, ys, yh


def psnr(sr, hr, protocol: str = DEFAULT_PROTOCOL, scale: int | None = None) -> torch.Tensor:
    """PSNR (dB) on the Y channel per the protocol; float64 ``(N,)``; ``inf`` if identical."""
    _, ys, yh = _prepared_y(sr, hr, protocol, scale)
    return _mse_psnr(ys, yh)


def psnr_rgb(sr, hr, protocol: str = DEFAULT_PROTOCOL, scale: int | None = None) -> torch.Tensor:
    """PSNR (dB) over the quantised RGB channels with the protocol's border crop."""
    p = _get_protocol(protocol)
    sr, hr = _check_pair(sr, hr)
    c = _crop_pixels(p, protocol, scale)
    return _mse_psnr(_crop(quantize_8bit(sr), c), _crop(quantize_8bit(hr), c))


def _window_1d(kind: str, device) -> torch.Tensor:
    if kind == "uniform7":
        return torch.full((7,), 1.0 / 7, dtype=torch.float64, device=device)
    # scipy.ndimage.gaussian_filter(sigma=1.5, truncate=3.5): radius int(3.5*1.5+0.5) = 5
    sigma, radius = 1.5, 5
    t = torch.arange(-radius, radius + 1, dtype=torch.float64, device=device)
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    return g / g.sum()


def _ssim_y(a: torch.Tensor, b: torch.Tensor, window: str, sample_cov: bool) -> torch.Tensor:
    """Mean SSIM of (N, 1, H, W) float64 maps on the 0-255 scale, 'valid' windows only.

    Equals scikit-image ``structural_similarity`` (which filters with reflect padding and
    then crops (win-1)/2 pixels, i.e. keeps exactly the windows inside the image).
    """
    w = _window_1d(window, a.device)
    k = w.numel()
    if a.shape[-2] < k or a.shape[-1] < k:
        raise ValueError(f"image {a.shape[-2]}x{a.shape[-1]} (after crop) is smaller than the "
                         f"{k}x{k} SSIM window")
    n = a.shape[0]
    stack = torch.cat([a, b, a * a, b * b, a * b], 0)  # (5N, 1, H, W)
    if window == "uniform7":
        f = F.avg_pool2d(stack, k, stride=1)  # = 7x7 mean (scipy uniform_filter), faster
    else:
        f = F.conv2d(F.conv2d(stack, w.view(1, 1, k, 1)), w.view(1, 1, 1, k))
    ux, uy, uxx, uyy, uxy = f.split(n, 0)
    cov_norm = (k * k) / (k * k - 1) if sample_cov else 1.0
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1 = (0.01 * 255) ** 2
    c2 = (0.03 * 255) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1)


def ssim(sr, hr, protocol: str = DEFAULT_PROTOCOL, scale: int | None = None) -> torch.Tensor:
    """SSIM on the Y channel per the protocol; float64 ``(N,)``."""
    p, ys, yh = _prepared_y(sr, hr, protocol, scale)
    with torch.no_grad():
        return _ssim_y(ys, yh, p.window, p.sample_covariance)


# ---------------------------------------------------------------------------------------
# LPIPS
# ---------------------------------------------------------------------------------------
_LPIPS_NETS: dict[str, torch.nn.Module] = {}
_LPIPS_LOCK = threading.Lock()


def _build_lpips_net(device, weights: Path | str | None = None) -> torch.nn.Module:
    """A fresh LPIPS AlexNet v0.1 from our safetensors file; reads no other file, no network.

    ``pnet_rand=True`` makes torchvision build AlexNet with ``weights=None`` (no download),
    ``pretrained=False`` skips ``torch.load`` of the package's lin-layer .pth; all weights
    (backbone + lin heads) then come from our safetensors file, loaded strictly.
    """
    import lpips as lpips_pkg
    from safetensors.torch import load as load_safetensors

    path = Path(weights) if weights is not None else LPIPS_WEIGHTS
    if not path.is_file():
        raise FileNotFoundError(
            f"LPIPS weights {path} are missing; regenerate them with `python -m hub_models.lpips_convert`")
    with warnings.catch_warnings():
        # torchvision warns that lpips passes the deprecated `pretrained=` flag
        warnings.simplefilter("ignore", UserWarning)
        net = lpips_pkg.LPIPS(net="alex", version="0.1", pnet_rand=True, pretrained=False, verbose=False)
    state = load_safetensors(path.read_bytes())  # ~10 MB; plain Python read, no mmap
    net.load_state_dict(state, strict=True)
    net = net.to(device).eval()
    for prm in net.parameters():
        prm.requires_grad_(False)
    return net


def get_lpips_net(device="cpu") -> torch.nn.Module:
    """The cached LPIPS AlexNet v0.1 for ``device`` (frozen, eval mode; shared, don't .train() it).

    Call it as ``net(a, b)`` with images in **[-1, 1]** (or ``net(a, b, normalize=True)`` for
    [0, 1]); it returns ``(N, 1, 1, 1)`` distances and is differentiable w.r.t. the inputs.
    ``net.net(x)`` gives the five AlexNet relu feature maps (for perceptual losses; input
    after ``net.scaling_layer``).
    """
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    key = str(dev)
    with _LPIPS_LOCK:
        net = _LPIPS_NETS.get(key)
        if net is None:
            net = _build_lpips_net(dev)
            _LPIPS_NETS[key] = net
    return net


def lpips(sr, hr, quantize: bool = True) -> torch.Tensor:
    """LPIPS (AlexNet, v0.1) per image, float64 ``(N,)``; full image, RGB, no crop.

    Images are 8-bit quantised first (``quantize=True``, like the other metrics), then
    scaled to [-1, 1].  Runs on ``sr``'s device without gradients; see :func:`lpips_loss`.
    """
    sr, hr = _check_pair(sr, hr)
    if quantize:
        sr, hr = quantize_8bit(sr) / 255.0, quantize_8bit(hr) / 255.0
    return _lpips_checked(sr, hr)


def _lpips_checked(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    net = get_lpips_net(sr.device)
    net.eval()
    with torch.no_grad():
        d = net(sr.float() * 2 - 1, hr.float() * 2 - 1)
    return d.flatten().to(torch.float64)


def lpips_loss(sr: torch.Tensor, hr: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Differentiable LPIPS for training: inputs in [0, 1] (not validated or quantised).

    ``reduction``: ``"mean"`` (scalar) or ``"none"`` (per image, shape (N,)).  Uses the
    shared frozen net of :func:`get_lpips_net`; gradients flow to ``sr`` (and ``hr``).
    """
    if sr.ndim == 3:
        sr, hr = sr.unsqueeze(0), hr.unsqueeze(0)
    if sr.shape != hr.shape:
        raise ValueError(f"sr and hr shapes differ: {tuple(sr.shape)} vs {tuple(hr.shape)}")
    net = get_lpips_net(sr.device)
    d = net(sr * 2 - 1, hr * 2 - 1).flatten()
    if reduction == "none":
        return d
    if reduction == "mean":
        return d.mean()
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


# ---------------------------------------------------------------------------------------
# all at once
# ---------------------------------------------------------------------------------------
def evaluate(sr, hr, protocol: str = DEFAULT_PROTOCOL, scale: int | None = None,
             with_lpips: bool = True) -> dict[str, torch.Tensor]:
    """Per-image metrics: ``{"psnr_y", "ssim_y", "psnr_rgb", "lpips"}`` -> float64 ``(N,)``.

    One validation + quantisation pass; LPIPS on the full (uncropped) RGB image.
    ``with_lpips=False`` leaves out LPIPS (e.g. when the weights are unavailable).
    """
    p = _get_protocol(protocol)
    sr, hr = _check_pair(sr, hr)
    c = _crop_pixels(p, protocol, scale)
    qs, qh = quantize_8bit(sr), quantize_8bit(hr)
    ys = _crop(rgb_to_y(qs / 255.0, p.y_mode), c)
    yh = _crop(rgb_to_y(qh / 255.0, p.y_mode), c)
    with torch.no_grad():
        out = {
            "psnr_y": _mse_psnr(ys, yh),
            "ssim_y": _ssim_y(ys, yh, p.window, p.sample_covariance),
            "psnr_rgb": _mse_psnr(_crop(qs, c), _crop(qh, c)),
        }
    if with_lpips:
        out["lpips"] = _lpips_checked(qs / 255.0, qh / 255.0)
    return out
