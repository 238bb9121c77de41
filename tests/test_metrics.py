"""Tests for hub_models.metrics: protocols vs scikit-image, LPIPS vs published values, offline."""
from __future__ import annotations

import csv
import io
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from hub_models import metrics
from hub_models.metrics import evaluate, lpips, psnr, psnr_rgb, rgb_to_y, ssim


def _pair(seed, n=3, h=48, w=40):
    """Smooth 'image' plus a degraded version, both 8-bit-quantised, in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, max(2, h // 8), max(2, w // 8), generator=g, dtype=torch.float64)
    hr = F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
    hr = (hr + 0.05 * torch.randn(n, 3, h, w, generator=g, dtype=torch.float64)).clamp(0, 1)
    sr = (hr + 0.04 * torch.randn(n, 3, h, w, generator=g, dtype=torch.float64)).clamp(0, 1)
    q = lambda t: (torch.round(t * 255) / 255).float()  # noqa: E731
    return q(sr), q(hr)


def _y_exact(img_u8: np.ndarray, mode: str) -> np.ndarray:
    """Independent Y: exact integer arithmetic of 16 + (65.481 R + 128.553 G + 24.966 B)/255."""
    r, g, b = (img_u8[..., i].astype(np.int64) for i in range(3))
    num = 65481 * r + 128553 * g + 24966 * b          # Y - 16 = num / 255000
    if mode == "round":                                # half up (MATLAB uint8 conversion)
        return (16 + (2 * num + 255000) // 510000).astype(np.float64)
    if mode == "floor":
        return (16 + num // 255000).astype(np.float64)
    return 16 + num / 255000.0


def _u8(t):  # (3,H,W) [0,1] -> (H,W,3) uint8
    return np.round(t.permute(1, 2, 0).double().numpy() * 255).astype(np.uint8)


SKIMAGE_SSIM = {
    "dic": dict(win_size=7, gaussian_weights=False, use_sample_covariance=True),
    "sparnet": dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False),
    "basicsr": dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False),
}
CROP = {"dic": lambda s: 8, "sparnet": lambda s: 0, "basicsr": lambda s: s}
YMODE = {"dic": "round", "sparnet": "floor", "basicsr": "float"}


# ---------------------------------------------------------------------------------------
# Y conversion
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["round", "floor", "float"])
def test_rgb_to_y_exact(mode):
    grey = torch.arange(256, dtype=torch.float64).view(1, 1, 1, 256).expand(1, 3, 1, 256) / 255
    rnd = torch.randint(0, 256, (1, 3, 64, 64), generator=torch.Generator().manual_seed(0)).double() / 255
    for x in (grey, rnd):
        ours = rgb_to_y(x, mode)[0, 0].numpy()
        ref = _y_exact(_u8(x[0]), mode)
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-9 if mode == "float" else 0)
    # greys 85/170/255 give exact integers Y = 89/162/235: no off-by-one from float round-off
    y = rgb_to_y(grey, mode)[0, 0, 0]
    assert y[0] == 16 and y[85] == 89 and y[170] == 162 and y[255] == 235
    with pytest.raises(ValueError):
        rgb_to_y(grey, "nearest")


# ---------------------------------------------------------------------------------------
# protocols vs scikit-image on the same numpy arrays
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", ["dic", "sparnet", "basicsr"])
@pytest.mark.parametrize("scale", [4, 8])
def test_protocol_matches_skimage(protocol, scale):
    sr, hr = _pair(seed=scale, n=3, h=48, w=40)
    got_psnr = psnr(sr, hr, protocol=protocol, scale=scale)
    got_ssim = ssim(sr, hr, protocol=protocol, scale=scale)
    got_rgb = psnr_rgb(sr, hr, protocol=protocol, scale=scale)
    assert got_psnr.dtype == torch.float64 and got_psnr.shape == (3,)
    c = CROP[protocol](scale)
    for i in range(3):
        ys, yh = _y_exact(_u8(sr[i]), YMODE[protocol]), _y_exact(_u8(hr[i]), YMODE[protocol])
        if c:
            ys, yh = ys[c:-c, c:-c], yh[c:-c, c:-c]
        ref_psnr = peak_signal_noise_ratio(yh, ys, data_range=255)
        ref_ssim = structural_similarity(yh, ys, data_range=255, **SKIMAGE_SSIM[protocol])
        assert abs(float(got_psnr[i]) - ref_psnr) < 1e-8
        assert abs(float(got_ssim[i]) - ref_ssim) < 1e-8   # measured ~1e-15
        rs, rh = _u8(sr[i]).astype(np.float64), _u8(hr[i]).astype(np.float64)
        if c:
            rs, rh = rs[c:-c, c:-c], rh[c:-c, c:-c]
        assert abs(float(got_rgb[i]) - peak_signal_noise_ratio(rh, rs, data_range=255)) < 1e-8


def test_protocols_differ_and_default_is_dic():
    sr, hr = _pair(seed=1, n=2, h=64, w=64)
    vals = {p: float(ssim(sr, hr, p, scale=4)[0]) for p in ("dic", "sparnet", "basicsr")}
    assert len(set(vals.values())) == 3
    assert metrics.DEFAULT_PROTOCOL == "dic"
    torch.testing.assert_close(ssim(sr, hr), ssim(sr, hr, "dic"))
    torch.testing.assert_close(psnr(sr, hr), psnr(sr, hr, "dic", scale=8))


def test_identical_images_and_single_image():
    _, hr = _pair(seed=2, n=2)
    assert torch.isinf(psnr(hr, hr)).all() and torch.isinf(psnr_rgb(hr, hr)).all()
    torch.testing.assert_close(ssim(hr, hr), torch.ones(2, dtype=torch.float64))
    sr, hr = _pair(seed=3, n=2)
    torch.testing.assert_close(psnr(sr[1], hr[1]), psnr(sr, hr)[1:])


def test_quantisation_before_metrics():
    sr, hr = _pair(seed=4, n=1)
    # sub-level perturbations (< half an 8-bit level) don't change PSNR/SSIM
    jitter = (torch.rand_like(sr) - 0.5) * (0.8 / 255)
    torch.testing.assert_close(psnr(sr + jitter, hr), psnr(sr, hr))
    torch.testing.assert_close(ssim((sr + jitter).clamp(0, 1), hr), ssim(sr, hr))


# ---------------------------------------------------------------------------------------
# evaluate
# ---------------------------------------------------------------------------------------
def test_evaluate_dict_consistent():
    sr, hr = _pair(seed=5, n=4, h=64, w=64)
    out = evaluate(sr, hr, protocol="basicsr", scale=4)
    assert set(out) == {"psnr_y", "ssim_y", "psnr_rgb", "lpips"}
    for v in out.values():
        assert v.dtype == torch.float64 and v.shape == (4,)
    torch.testing.assert_close(out["psnr_y"], psnr(sr, hr, "basicsr", 4))
    torch.testing.assert_close(out["ssim_y"], ssim(sr, hr, "basicsr", 4))
    torch.testing.assert_close(out["psnr_rgb"], psnr_rgb(sr, hr, "basicsr", 4))
    torch.testing.assert_close(out["lpips"], lpips(sr, hr))
    assert (out["lpips"] > 0).all() and (lpips(hr, hr).abs() < 1e-6).all()
    assert set(evaluate(sr, hr, with_lpips=False)) == {"psnr_y", "ssim_y", "psnr_rgb"}


# ---------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------
def test_bad_inputs_raise_clear_errors():
    sr, hr = _pair(seed=6, n=2, h=32, w=32)
    cases = [
        ((sr, hr[:, :, :-1]), "shapes differ"),
        (((sr * 255).to(torch.uint8), hr), "dtype"),
        ((sr * 1.1 + 0.05, hr), r"\[0, 1\]"),
        ((sr - 1.0, hr), r"\[0, 1\]"),
        ((sr[:, :1], hr[:, :1]), "3 \\(RGB\\) channels"),
        ((torch.cat([sr, sr[:, :1]], 1), torch.cat([hr, hr[:, :1]], 1)), "channels"),
        ((sr.clone().index_fill_(3, torch.tensor([3]), float("nan")), hr), "NaN"),
        ((sr[0, 0], hr[0, 0]), "shape"),
        ((sr.numpy(), hr), "torch.Tensor"),
    ]
    for fn in (psnr, ssim, psnr_rgb, evaluate, lpips):
        for (a, b), msg in cases:
            with pytest.raises(ValueError, match=msg):
                fn(a, b)
    with pytest.raises(ValueError, match="protocol"):
        psnr(sr, hr, protocol="matlab")
    with pytest.raises(ValueError, match="scale="):
        ssim(sr, hr, protocol="basicsr")
    with pytest.raises(ValueError, match="too small"):
        psnr(sr[..., :16, :16], hr[..., :16, :16])            # 8-pixel crop of 16x16
    # values within half an 8-bit level outside [0, 1] are accepted (clamped)
    psnr((sr + 1e-3).clamp(max=1.001), hr)


def test_bad_inputs_small_window():
    sr, hr = _pair(seed=7, n=1, h=10, w=10)
    with pytest.raises(ValueError, match="window"):
        ssim(sr, hr, "sparnet")


# ---------------------------------------------------------------------------------------
# LPIPS
# ---------------------------------------------------------------------------------------
def test_lpips_lin_heads_equal_lpips_package():
    import lpips as lpips_pkg
    from safetensors.torch import load_file

    ours = load_file(str(metrics.LPIPS_WEIGHTS))
    ref_path = Path(lpips_pkg.__file__).parent / "weights" / "v0.1" / "alex.pth"
    ref = torch.load(ref_path, map_location="cpu", weights_only=True)
    assert len(ref) == 5
    for k, v in ref.items():
        torch.testing.assert_close(ours[k], v, rtol=0, atol=0)
        torch.testing.assert_close(ours[k.replace("lin", "lins.")], v, rtol=0, atol=0)
    assert ours["net.slice1.0.weight"].shape == (64, 3, 11, 11)
    assert all(t.dtype == torch.float32 for t in ours.values())


def test_lpips_reproduces_published_tid2013(shared_dir):
    from PIL import Image

    ref_dir = shared_dir / "lpips_reference"
    rows = list(csv.DictReader(open(ref_dir / "published.csv")))

    def load(name):
        a = np.array(Image.open(ref_dir / name).convert("RGB"))
        return torch.from_numpy(a).permute(2, 0, 1).float() / 255

    refs = torch.stack([load(r["reference"]) for r in rows])
    dists = torch.stack([load(r["distorted"]) for r in rows])
    got = lpips(dists, refs)                      # full resolution (384x512), batched
    pub = torch.tensor([float(r["lpips_alex_v0.1_published"]) for r in rows], dtype=torch.float64)
    # measured: 0.72370 0.25716 0.05079 0.05205 0.42532 vs 0.7237 0.2572 0.05079 0.05205 0.4253
    assert (got - pub).abs().max() < 5e-4, list(zip(got.tolist(), pub.tolist()))
    torch.testing.assert_close(lpips(refs, dists), got, atol=1e-6, rtol=0)  # symmetric


def test_lpips_net_built_offline_from_our_file_only():
    """Building the net reads no file but our safetensors and opens no socket."""
    import lpips as _  # noqa: F401  (import first: module files are not what we check)
    import torchvision  # noqa: F401

    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    events = []
    active = [True]

    def hook(event, args):
        if not active[0]:
            return
        if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
            events.append(("open", os.fsdecode(args[0])))
        elif event.startswith("socket.") or event.startswith("urllib"):
            events.append((event, repr(args)[:100]))

    sys.addaudithook(hook)   # cannot be removed; deactivated below
    try:
        net = metrics._build_lpips_net("cpu")
    finally:
        active[0] = False
    weight_ext = (".pth", ".pt", ".ckpt", ".safetensors", ".bin", ".pkl", ".npz")
    weight_files = {p for e, p in events if e == "open" and p.endswith(weight_ext)}
    assert weight_files == {str(metrics.LPIPS_WEIGHTS)}, events
    assert not [e for e in events if e[0] != "open"], events
    assert not any("hub" in p and "checkpoints" in p for _, p in events)
    assert not net.training and not any(p.requires_grad for p in net.parameters())


def test_lpips_cache_and_loss_differentiable():
    assert metrics.get_lpips_net("cpu") is metrics.get_lpips_net(torch.device("cpu"))
    sr, hr = _pair(seed=8, n=2, h=64, w=64)
    x = sr.clone().requires_grad_(True)
    loss = metrics.lpips_loss(x, hr)
    loss.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    per = metrics.lpips_loss(sr, hr, reduction="none")
    torch.testing.assert_close(per.double(), lpips(sr, hr), atol=1e-6, rtol=0)


def test_safe_unpickler_refuses_code():
    from hub_models.lpips_convert import RestrictedUnpickler, safe_load_pickle

    arrays = {"a": {"kernel": np.arange(6, dtype=np.float32).reshape(1, 2, 3, 1)}}
    back = safe_load_pickle(pickle.dumps(arrays))
    np.testing.assert_array_equal(back["a"]["kernel"], arrays["a"]["kernel"])
    for evil in (pickle.dumps(os.getcwd), pickle.dumps(print), pickle.dumps(np.load)):
        with pytest.raises(pickle.UnpicklingError, match="refusing"):
            RestrictedUnpickler(io.BytesIO(evil)).load()


def test_convert_mapping_roundtrip(tmp_path):
    """Flax layout (HWIO) -> lpips state dict reproduces the shipped safetensors byte for byte."""
    from safetensors.torch import load_file

    from hub_models.lpips_convert import METADATA, _BACKBONE, _LINS, convert_arrays, save_deterministic

    ours = load_file(str(metrics.LPIPS_WEIGHTS))
    arrays = {}
    for src, dst in list(_BACKBONE.items()) + list(_LINS.items()):
        arrays[f"{src}/kernel"] = ours[f"{dst}.weight"].numpy().transpose(2, 3, 1, 0).copy()
        if src in _BACKBONE:
            arrays[f"{src}/bias"] = ours[f"{dst}.bias"].numpy().copy()
    state = convert_arrays(arrays)
    assert set(state) == set(ours)
    for k in ours:
        torch.testing.assert_close(state[k], ours[k], rtol=0, atol=0)
    save_deterministic(state, tmp_path / "w.safetensors", METADATA)
    assert (tmp_path / "w.safetensors").read_bytes() == metrics.LPIPS_WEIGHTS.read_bytes()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_metrics_on_gpu_match_cpu():
    sr, hr = _pair(seed=9, n=4, h=64, w=64)
    cpu = evaluate(sr, hr, scale=4)
    gpu = evaluate(sr.cuda(), hr.cuda(), scale=4)
    for k in cpu:
        assert gpu[k].device.type == "cuda"
        torch.testing.assert_close(gpu[k].cpu(), cpu[k], atol=1e-4 if k == "lpips" else 1e-9, rtol=0)


def test_metric_specs_format_every_metric_evaluate_returns():
    from hub_models.metrics import METRICS, MetricSpec, format_metric

    sr, hr = _pair(seed=10, n=1, h=64, w=64)
    assert list(METRICS) == ["psnr_y", "ssim_y", "lpips", "psnr_rgb"] and set(METRICS) == set(evaluate(sr, hr))
    assert all(isinstance(spec, MetricSpec) and spec.name == key for key, spec in METRICS.items())
    assert [METRICS[k].higher_is_better for k in METRICS] == [True, True, False, True]
    assert METRICS["psnr_y"].header == "PSNR-Y (dB)" and METRICS["lpips"].header == "LPIPS (alex)"
    assert format_metric("psnr_y", 30.404) == "30.40" and format_metric("ssim_y", 0.81234) == "0.8123"
    assert format_metric("lpips", 0.13949, digits=3) == "0.139" and format_metric("psnr_y", 25.7, unit=True) == "25.70 dB"
    assert format_metric("lpips", None) == "-" and format_metric("psnr_y", float("nan")) == "-"
    with pytest.raises(KeyError):
        format_metric("no_such_metric", 1.0)
