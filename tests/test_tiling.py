"""Tiled inference, the input contract of upscale(), the sparse imresize, upscale_image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import hub_models
from hub_models import metrics
from hub_models.degradations import imresize
from hub_models.tiling import plan_tiles, receptive_radius, upscale_tiled


def _model(name: str, **extra):
    torch.manual_seed(0)
    cls = hub_models.get_class(name)
    return cls(**{**cls.test_config, **extra}).eval()


def _seam_columns(w: int, tile: int, overlap: int, scale: int) -> list[int]:
    plan = plan_tiles(8, w, tile, overlap)
    return sorted({(x0 + tile - overlap // 2) * scale for x0 in plan.xs[:-1]} | {x0 * scale for x0 in plan.xs[1:]})


@pytest.mark.parametrize("name", ["srcnn", "vdsr", "mffcn", "bicubic"])
def test_local_networks_tiled_equal_untiled_at_the_seams_too(name):
    model = _model(name)
    x = torch.rand(1, 3, 45, 58, generator=torch.Generator().manual_seed(1))
    whole = model.upscale(x, tile=0)
    tiled = model.upscale(x, tile=24)
    s = model.default_scale
    assert plan_tiles(45, 58, 24, 12).count > 4  # several tiles in both directions
    assert tiled.shape == whole.shape == (1, 3, 45 * s, 58 * s)
    assert (tiled - whole).abs().max() < 1 / 255
    cols = _seam_columns(58, 24, 12, s)
    seams = whole[..., cols] - tiled[..., cols]
    assert seams.abs().max() < 1 / 255


def test_too_small_margin_breaks_equality():
    """The margin is what makes local networks exact: without it tiles differ at the seams."""
    model = _model("vdsr")
    x = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(2))
    whole = model.upscale(x, tile=0)
    exact = upscale_tiled(model, x, tile=20, overlap=10)
    naive = upscale_tiled(model, x, tile=20, overlap=10, margin=0)
    assert (exact - whole).abs().max() < 1 / 255
    assert (naive - whole).abs().max() > 1 / 255


def test_receptive_radius_bounds_local_networks():
    assert receptive_radius(hub_models.create("srcnn")) == 4  # (4 + 0 + 2) HR px / 4 -> 2, + 2 for bicubic
    assert receptive_radius(_model("vdsr")) == 3  # 4 convs at HR: 4 / 4 + 2


def _y_steps(y: torch.Tensor) -> torch.Tensor:
    gray = metrics.rgb_to_y(y, quantize=False)
    return (gray[..., 1:] - gray[..., :-1]).abs().mean(dim=(0, 1, 2))  # column c -> c+1


def _assert_no_seam(tiled: torch.Tensor, whole: torch.Tensor, cols: list[int]):
    steps, ref = _y_steps(tiled), _y_steps(whole)
    inside = torch.quantile(steps, 0.9)
    for c in cols:
        assert steps[c] <= inside, f"seam at column {c}: step {steps[c]:.4f} > 90th percentile inside {inside:.4f}"
        assert abs(steps[c] - ref[c]) <= 0.5 * inside  # the boundary adds less than half a typical step


def test_no_seam_with_the_shipped_attention_model(shared_dir):
    """rafsr-x4 (CBAM: pooled channel attention) at its chosen tile size on a real face."""
    model = hub_models.load("rafsr-x4")
    hr = Image.open(sorted((shared_dir / "data" / "celeba_test1000" / "HR").glob("*"))[0]).convert("RGB")
    lr = imresize(hub_models.images.rgb_to_tensor(np.asarray(hr)), size=(96, 224)).clamp(0, 1)
    tile, overlap = model.tile_size, model.tile_overlap
    whole = model.upscale(lr, tile=0)
    tiled = model.upscale(lr)  # 224 > tile_size: tiled by default
    assert len(plan_tiles(96, 224, tile, overlap).xs) == 2
    assert metrics.psnr(tiled, whole).item() > 40
    _assert_no_seam(tiled, whole, _seam_columns(224, tile, overlap, 4))


def test_no_seam_with_self_attention_per_tile():
    """CRLNet's self-attention runs per tile; a live attention layer (gamma 1) shows no seam."""
    model = _model("crlnet")
    for block in model.blocks:
        if hasattr(block.attention, "gamma"):
            block.attention.gamma.data.fill_(1.0)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 40), torch.linspace(0, 1, 72), indexing="ij")
    lr = torch.stack([xx, yy, (xx + yy) / 2])[None] * 0.8 + 0.1  # smooth content: steps are small
    whole = model.upscale(lr, tile=0)
    tiled = model.upscale(lr, tile=32, overlap=12)
    _assert_no_seam(tiled, whole, _seam_columns(72, 32, 12, 4))


def test_seam_check_detects_a_seam():
    """The seam check fails on an image with an artificial step (so it can fail)."""
    x = torch.rand(1, 3, 32, 64, generator=torch.Generator().manual_seed(3)) * 0.1 + 0.4
    stepped = x.clone()
    stepped[..., 40:] += 0.3
    with pytest.raises(AssertionError):
        _assert_no_seam(stepped, x, [39])


def test_tiles_run_in_batches_with_progress():
    model = _model("srcnn")
    calls = []
    x = torch.rand(2, 3, 50, 50)
    y = model.upscale(x, tile=20, overlap=10, batch=3, progress=lambda d, t: calls.append((d, t)))
    total = 2 * plan_tiles(50, 50, 20, 10).count  # two images
    assert y.shape == (2, 3, 200, 200) and total > 8
    assert calls[-1] == (total, total) and all(t == total for _, t in calls)
    assert all(0 < b[0] - a[0] <= 3 for a, b in zip(calls, calls[1:]))  # at most `batch` tiles per step


def test_uint8_out_is_filled_in_place():
    model = _model("srcnn")
    x = torch.rand(1, 3, 30, 41)
    out = np.zeros((120, 164, 3), np.uint8)
    upscale_tiled(model, x, tile=16, overlap=8, out=torch.from_numpy(out).permute(2, 0, 1)[None])
    ref = hub_models.images.tensor_to_rgb(model.upscale(x, tile=0))
    assert np.abs(out.astype(int) - ref).max() <= 1


# -- input contract ----------------------------------------------------------------------
@pytest.mark.parametrize("bad, hint", [(torch.rand(1, 3, 8, 8) * 255, "/ 255"), (torch.rand(1, 3, 8, 8) - 1, "(x + 1) / 2")])
def test_upscale_refuses_floats_outside_0_1(bad, hint):
    with pytest.raises(hub_models.ImageInputError, match="must lie in \\[0, 1\\]") as err:
        _model("srcnn").upscale(bad)
    assert hint in str(err.value)


def test_unbatched_input_gives_unbatched_output():
    model = _model("srcnn")
    assert model.upscale(torch.rand(3, 10, 12)).shape == (3, 40, 48)
    assert model.upscale(torch.rand(3, 30, 12), tile=16).shape == (3, 120, 48)  # tiled too


# -- sparse MATLAB resize ----------------------------------------------------------------
@pytest.mark.parametrize("scale", [4, 0.25, 1 / 3, 2.5, (0.5, 3)])
def test_sparse_imresize_equals_dense(scale):
    x = torch.rand(2, 3, 37, 53, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    dense, sparse = imresize(x, scale=scale, sparse=False), imresize(x, scale=scale, sparse=True)
    assert dense.shape == sparse.shape
    assert (dense - sparse).abs().max() < 1e-12


def test_large_imresize_takes_the_sparse_path(monkeypatch):
    from hub_models import resize  # the MATLAB imresize (degradations re-exports it)

    monkeypatch.setattr(resize, "_resize_matrix", lambda *a: pytest.fail("dense matrix built"))
    out = imresize(torch.rand(1, 3, 8, 1100), scale=(1, 2))
    assert out.shape == (1, 3, 8, 2200)


# -- upscale_image -----------------------------------------------------------------------
def test_upscale_image_accepts_paths_pil_and_arrays(tmp_path):
    model = _model("srcnn")
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    results = [hub_models.upscale_image(src, model=model) for src in (tmp_path / "a.png", Image.fromarray(rgb), rgb)]
    assert all(isinstance(r, Image.Image) and r.size == (120, 80) for r in results)
    assert np.array_equal(np.asarray(results[0]), np.asarray(results[2]))


def test_upscale_image_bad_input_says_what_to_do(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(hub_models.ImageInputError, match="not an image"):
        hub_models.upscale_image(tmp_path / "notes.txt", model=_model("srcnn"))
    with pytest.raises(hub_models.ImageInputError, match="uint8"):
        hub_models.upscale_image(np.zeros((8, 8, 3), np.float32), model=_model("srcnn"))
