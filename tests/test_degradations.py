"""Tests for hub_models.degradations: MATLAB-exact imresize, bicubic protocol, real-world pipeline."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hub_models.degradations import (
    BLUR_KINDS,
    RealWorldParams,
    bicubic_degrade,
    imresize,
    mod_crop,
    real_world_degrade,
)


# ---------------------------------------------------------------------------------------
# Test-only reference: the well-known pure-numpy port of MATLAB's imresize (bicubic),
# as in BasicSR's matlab_functions.imresize / fatheral's matlab_imresize.
# ---------------------------------------------------------------------------------------
def _np_cubic(x):
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return ((1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


def _np_contributions(in_len, out_len, scale, antialias):
    kernel_width = 4.0
    if scale < 1 and antialias:
        def kernel(x):
            return scale * _np_cubic(scale * x)
        kernel_width = kernel_width / scale
    else:
        kernel = _np_cubic
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    p = int(math.ceil(kernel_width)) + 2
    ind = left[:, None] + np.arange(p)[None, :]
    weights = kernel(u[:, None] - ind)
    weights = weights / weights.sum(axis=1, keepdims=True)
    aux = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    ind = aux[np.mod(ind.astype(np.int64) - 1, aux.size)]
    keep = np.any(weights != 0, axis=0)
    return weights[:, keep], ind[:, keep]


def matlab_imresize_ref(img, scale=None, out_hw=None, antialias=True):
    """img: (H, W[, C]) float64.  MATLAB: out = ceil(in*scale); smallest factor resized first."""
    img = np.asarray(img, dtype=np.float64)
    h, w = img.shape[:2]
    if out_hw is None:
        out_hw = (int(math.ceil(h * scale)), int(math.ceil(w * scale)))
        factors = (scale, scale)
    else:
        factors = (out_hw[0] / h, out_hw[1] / w)
    out = img
    for d in np.argsort(factors, kind="stable"):
        weights, ind = _np_contributions(out.shape[d], out_hw[d], factors[d], antialias)
        o = np.moveaxis(out, d, 0)
        o = np.einsum("op,op...->o...", weights, o[ind])
        out = np.moveaxis(o, 0, d)
    return out


def _psnr01(a, b):
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def _to_np(t):  # (3,H,W) -> (H,W,3)
    return t.permute(1, 2, 0).double().cpu().numpy()


def _smooth_image(seed, h=128, w=128, n=1, texture=0.08):
    """Face-like test content: smooth random field + some texture, in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, h // 8, w // 8, generator=g, dtype=torch.float64)
    img = F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
    img = img + texture * torch.randn(n, 3, h, w, generator=g, dtype=torch.float64)
    return img.clamp(0, 1)


# ---------------------------------------------------------------------------------------
# imresize
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("scale", [1 / 2, 1 / 3, 1 / 4, 1 / 8, 2, 3, 4, 8])
def test_imresize_matches_matlab_reference_scales(scale):
    x = _smooth_image(1, 48, 40)  # H != W, 48 and 40 divisible by 2, 4, 8; x3 -> ceil
    ours = imresize(x, scale=scale)[0]
    ref = matlab_imresize_ref(_to_np(x[0]), scale=scale)
    assert ours.shape[-2:] == ref.shape[:2]
    p = _psnr01(_to_np(ours), ref)
    assert p > 100, f"scale {scale}: {p:.1f} dB vs MATLAB reference"  # measured ~300 dB (fp64)


@pytest.mark.parametrize("size", [(37, 53), (16, 16), (77, 45), (128, 9)])
def test_imresize_matches_matlab_reference_sizes(size):
    x = _smooth_image(2, 40, 30)
    ours = imresize(x, size=size)[0]
    ref = matlab_imresize_ref(_to_np(x[0]), out_hw=size)
    assert tuple(ours.shape[-2:]) == size
    assert _psnr01(_to_np(ours), ref) > 100


def test_imresize_no_antialias_matches_reference():
    x = _smooth_image(3, 32, 32)
    ours = imresize(x, scale=0.25, antialias=False)[0]
    ref = matlab_imresize_ref(_to_np(x[0]), scale=0.25, antialias=False)
    assert _psnr01(_to_np(ours), ref) > 100


def test_imresize_float32_and_library_comparison():
    """The issue's target is > 40 dB vs the MATLAB reference.  Ours: exact; torch's
    F.interpolate(bicubic, antialias=True) is identical in the interior but differs at
    the borders (truncated kernel instead of MATLAB's symmetric padding)."""
    x = _smooth_image(4, 120, 120, n=1)  # divisible by 2, 3, 4, 8
    for s in (2, 3, 4, 8):
        ref = matlab_imresize_ref(_to_np(x[0]), scale=1 / s)
        ours32 = imresize(x.float(), scale=1 / s)[0]
        assert ours32.dtype == torch.float32
        p_ours = _psnr01(_to_np(ours32), ref)
        lib = F.interpolate(x, size=ref.shape[:2], mode="bicubic", antialias=True, align_corners=False)[0]
        p_lib = _psnr01(_to_np(lib), ref)
        interior = slice(2, -2)
        p_lib_interior = _psnr01(_to_np(lib)[interior, interior], ref[interior, interior])
        assert p_ours > 120, (s, p_ours)          # measured ~135-140 dB in float32
        assert p_lib_interior > 200                # same kernel: interior is exact
        assert p_lib < p_ours                      # only the borders differ


def test_imresize_real_faces(shared_dir):
    """Measured on CelebA 128x128 test faces: ours vs MATLAB reference, x2..x8."""
    from PIL import Image

    files = sorted((shared_dir / "data" / "celeba_test1000" / "HR").glob("*"))[:4]
    if not files:
        pytest.skip("no CelebA test images in shared data")
    hr = torch.stack([torch.from_numpy(np.asarray(Image.open(f).convert("RGB"), dtype=np.float64)).permute(2, 0, 1)
                      for f in files]) / 255
    worst = {}
    for s in (2, 3, 4, 8):
        h = mod_crop(hr, s)
        lr = imresize(h, scale=1 / s)              # batched
        up = imresize(lr, scale=s)
        ps = []
        for i in range(len(files)):
            ps.append(_psnr01(_to_np(lr[i]), matlab_imresize_ref(_to_np(h[i]), scale=1 / s)))
            ps.append(_psnr01(_to_np(up[i]), matlab_imresize_ref(_to_np(lr[i]), scale=s)))
        worst[s] = min(ps)
    # target > 40 dB; measured > 290 dB (float64 round-off only).  For comparison
    # torch F.interpolate(bicubic, antialias=True): mean 44.4 / min 39.8 dB at x8 down,
    # and F.interpolate(bicubic) upsampling x8: mean 40.8 / min 39.0 dB on these faces.
    assert min(worst.values()) > 100, worst


def test_imresize_batched_single_and_no_clamp():
    x = _smooth_image(5, 32, 32, n=3).float()
    batch = imresize(x, scale=0.5)
    single = imresize(x[1], scale=0.5)
    assert single.shape == (3, 16, 16)
    torch.testing.assert_close(batch[1], single)
    # a hard edge overshoots under bicubic upsampling: nothing is clamped
    edge = torch.zeros(1, 3, 8, 8)
    edge[..., 4:] = 1.0
    up = imresize(edge, scale=4)
    assert up.min() < 0 and up.max() > 1
    # identity
    torch.testing.assert_close(imresize(x, scale=1), x)


def test_imresize_output_size_rounding_and_errors():
    x = torch.rand(1, 3, 126, 126)
    assert imresize(x, scale=1 / 3).shape[-2:] == (42, 42)  # not 43 from 126*(1/3) round-off
    assert imresize(x, scale=(0.5, 0.25)).shape[-2:] == (63, 32)
    with pytest.raises(ValueError):
        imresize(x)
    with pytest.raises(ValueError):
        imresize(x, scale=0.5, size=10)
    with pytest.raises(ValueError):
        imresize(x, scale=-1)
    with pytest.raises(ValueError):
        imresize((x * 255).to(torch.uint8), scale=0.5)
    with pytest.raises(ValueError):
        imresize(torch.rand(2, 2, 3, 3, 3), scale=0.5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_imresize_and_degrade_on_gpu():
    x = _smooth_image(6, 64, 64, n=2).float()
    xc = x.cuda()
    torch.testing.assert_close(imresize(xc, scale=0.25).cpu(), imresize(x, scale=0.25), atol=1e-5, rtol=0)
    p = RealWorldParams(blur_kind="motion", blur_size=7, motion_angle=30, downscale=0.25,
                        noise_sigma=10, jpeg_quality=70, seed=3)
    a = real_world_degrade(x, p)
    b = real_world_degrade(xc, p)
    assert b.device.type == "cuda"
    assert (a - b.cpu()).abs().mean() < 2e-3  # same noise; JPEG may flip a few 8-bit levels


# ---------------------------------------------------------------------------------------
# bicubic protocol
# ---------------------------------------------------------------------------------------
def test_mod_crop_and_bicubic_degrade():
    hr = _smooth_image(7, 130, 127, n=2).float()
    assert mod_crop(hr, 4).shape[-2:] == (128, 124)
    assert mod_crop(hr[0], 8).shape == (3, 128, 120)
    lr = bicubic_degrade(hr, 4)
    assert lr.shape == (2, 3, 32, 31)
    torch.testing.assert_close(lr, imresize(mod_crop(hr, 4), scale=0.25).clamp(0, 1))
    assert lr.min() >= 0 and lr.max() <= 1
    q = bicubic_degrade(hr, 8, quantize=True)
    torch.testing.assert_close(q * 255, torch.round(q * 255))
    assert bicubic_degrade(hr[0], 2).shape == (3, 65, 63)
    for bad in (0, 2.5, -4, True):
        with pytest.raises(ValueError):
            bicubic_degrade(hr, bad)
    with pytest.raises(ValueError):
        bicubic_degrade(hr * 2, 4)
    with pytest.raises(ValueError):
        bicubic_degrade(hr[:, :1], 4)


def test_bicubic_lr_8bit_is_the_quantised_bicubic_degrade():
    from hub_models.degradations import bicubic_lr_8bit

    hr = _smooth_image(8, 66, 70, n=2).float()
    lr = bicubic_lr_8bit(hr, 4)
    torch.testing.assert_close(lr, bicubic_degrade(hr, 4, quantize=True), rtol=0, atol=0)
    torch.testing.assert_close(lr * 255, torch.round(lr * 255))
    assert lr.shape == (2, 3, 16, 17) and bicubic_lr_8bit(hr[0], 2).shape == (3, 33, 35)


# ---------------------------------------------------------------------------------------
# real-world pipeline
# ---------------------------------------------------------------------------------------
def test_params_sample_reproducible_and_in_range():
    assert RealWorldParams.sample(123) == RealWorldParams.sample(123)
    assert RealWorldParams.sample(123) != RealWorldParams.sample(124)
    rng = np.random.default_rng(0)
    draws = [RealWorldParams.sample(rng) for _ in range(400)]
    assert {d.blur_kind for d in draws} == set(BLUR_KINDS)
    for d in draws:
        lo, hi = (5, 25) if d.blur_kind == "motion" else (3, 15)
        assert lo <= d.blur_size <= hi and d.blur_size % 2 == 1
        assert 32 / 512 <= d.downscale <= 128 / 512
        assert 0 <= d.noise_sigma <= 25
        assert 60 <= d.jpeg_quality <= 85
    assert {d.jpeg_quality for d in draws} >= {60, 85}
    small = [RealWorldParams.sample(rng, hr_size=128) for _ in range(100)]
    assert {d.blur_size for d in small if d.blur_kind != "motion"} == {3}
    assert {d.blur_size for d in small if d.blur_kind == "motion"} == {3, 5}
    assert {d.blur_size for d in (RealWorldParams.sample(rng, hr_size=512) for _ in range(200))} \
        == set(range(3, 26, 2))
    fixed = RealWorldParams.sample(5, downscale=0.25, upsample_to=128)
    assert fixed.downscale == 0.25 and fixed.upsample_to == 128
    with pytest.raises(TypeError):
        RealWorldParams.sample(5, not_a_field=1)


def test_params_validation():
    for kw in (dict(blur_kind="sharpen"), dict(blur_size=4), dict(downscale=0),
               dict(downscale=1.5), dict(noise_sigma=-1), dict(jpeg_quality=0),
               dict(upsample_to=0), dict(blur_sigma=0.0)):
        with pytest.raises(ValueError):
            RealWorldParams(**kw)


def test_real_world_degrade_shapes_and_reproducibility():
    hr = _smooth_image(8, 64, 64, n=4).float()
    p = RealWorldParams(blur_kind="gaussian", blur_size=7, downscale=0.25, noise_sigma=15,
                       jpeg_quality=70, seed=11)
    a = real_world_degrade(hr, p)
    b = real_world_degrade(hr, p)
    assert a.shape == (4, 3, 16, 16) and a.dtype == torch.float32
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert a.min() >= 0 and a.max() <= 1
    # single params on a batch: per-image noise seeds seed+i -> image 1 == image 0 of a
    # batch that starts there with seed+1
    c = real_world_degrade(hr[1:2], dataclasses.replace(p, seed=12))
    torch.testing.assert_close(a[1:2], c, rtol=0, atol=0)
    # per-image params drawn from one seed, upsampled back to 128
    small = dict(blur_size_range=(3, 7), motion_size_range=(5, 9), upsample_to=64)
    d1 = real_world_degrade(hr, seed=7, **small)
    d2 = real_world_degrade(hr, seed=7, **small)
    d3 = real_world_degrade(hr, seed=8, **small)
    assert d1.shape == hr.shape
    torch.testing.assert_close(d1, d2, rtol=0, atol=0)
    assert not torch.equal(d1, d3)
    # a single (3, H, W) image
    assert real_world_degrade(hr[0], p).shape == (3, 16, 16)
    # LR size from the factor: 128 * 1/16 = 8 ... 128 * 1/4 = 32
    hr128 = _smooth_image(8, 128, 128, n=1).float()
    for f, side in ((32 / 512, 8), (128 / 512, 32)):
        assert real_world_degrade(hr128, dataclasses.replace(p, downscale=f)).shape[-1] == side


@pytest.mark.parametrize("kind", BLUR_KINDS + ("none",))
def test_real_world_each_blur_kind(kind):
    hr = _smooth_image(9, 64, 64, n=1).float()
    size = 9
    p = RealWorldParams(blur_kind=kind, blur_size=size, motion_angle=45.0, downscale=1.0,
                        noise_sigma=0.0, jpeg_quality=None)
    out = real_world_degrade(hr, p)
    assert out.shape == hr.shape
    if kind == "none":
        torch.testing.assert_close(out, hr)
    else:
        # blurring removes high-frequency energy (Laplacian variance drops)
        lap = torch.tensor([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=torch.float32).view(1, 1, 3, 3)
        def sharp(t):
            return F.conv2d(t.mean(1, keepdim=True), lap).var()
        assert sharp(out) < 0.5 * sharp(hr), kind
        if kind == "median":  # our unfold median == kornia's, with OpenCV's replicate border
            import kornia.filters as kf
            torch.testing.assert_close(out, kf.median_blur(hr, (size, size), border_type="replicate"))
        # no dark frame: border handling is reflect/replicate, not zero padding
        assert abs(float(out[..., 0, :].mean() - hr[..., 0, :].mean())) < 0.1


def test_real_world_noise_and_jpeg_steps():
    hr = _smooth_image(10, 64, 64, n=1, texture=0.02).float()
    base = dict(blur_kind="none", downscale=1.0, jpeg_quality=None)
    noisy = real_world_degrade(hr, RealWorldParams(noise_sigma=25, **base))
    resid = (noisy - hr)[(hr > 0.1) & (hr < 0.9)]
    assert 20 / 255 < float(resid.std()) < 30 / 255
    base["jpeg_quality"] = 60
    jp = real_world_degrade(hr, RealWorldParams(**base))
    torch.testing.assert_close(jp * 255, torch.round(jp * 255))  # 8-bit decoded output
    assert 0 < float((jp - hr).abs().mean()) < 0.05
    jk = real_world_degrade(hr, RealWorldParams(**base), jpeg="kornia")
    assert jk.shape == hr.shape and float((jk - jp).abs().mean()) < 0.03
    with pytest.raises(ValueError):
        real_world_degrade(hr, RealWorldParams(**base), jpeg="pillow")


def test_real_world_degrade_errors():
    hr = _smooth_image(11, 64, 64, n=2).float()
    ps = [RealWorldParams(downscale=0.25), RealWorldParams(downscale=0.5)]
    with pytest.raises(ValueError, match="different LR sizes"):
        real_world_degrade(hr, ps)
    # per-image factors are fine with a common upsample_to
    ps = [dataclasses.replace(p, upsample_to=64) for p in ps]
    assert real_world_degrade(hr, ps).shape == hr.shape
    with pytest.raises(ValueError):
        real_world_degrade(hr, ps[:1])
    with pytest.raises(ValueError):
        real_world_degrade(hr, ps[0], seed=3)
    with pytest.raises(ValueError):
        real_world_degrade((hr * 255).to(torch.uint8), ps[0])
    with pytest.raises(ValueError):
        real_world_degrade(hr.clone().fill_(float("nan")), ps[0])
    with pytest.raises(ValueError):
        real_world_degrade(torch.cat([hr, hr[:, :1]], 1), ps[0])
