"""hub_models.evaluation: the card protocol (load HR, make the LR once, score) in one place."""

import numpy as np
import pytest
import torch
from PIL import Image

import hub_models
from hub_models import metrics
from hub_models.degradations import bicubic_lr_8bit, mod_crop
from hub_models.evaluation import evaluate_model, load_hr, score


def _faces(n=3, size=(64, 60), seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, 3, size[0] // 2, size[1] // 2, generator=g)
    return [img for img in torch.nn.functional.interpolate(base, size=size, mode="bilinear").clamp(0, 1)]


def test_load_hr_reads_rgb_and_skips_unreadable_files(tmp_path):
    rgb = (np.arange(4 * 5 * 3) % 256).astype(np.uint8).reshape(4, 5, 3)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.warns(UserWarning, match="skipping unreadable image"):
        images = load_hr([tmp_path / "a.png", tmp_path / "broken.png"])
    assert len(images) == 1 and images[0].shape == (3, 4, 5) and images[0].dtype == torch.float32
    torch.testing.assert_close(images[0], torch.from_numpy(rgb).permute(2, 0, 1).float() / 255)


def test_evaluate_model_scores_model_and_bicubic_on_the_same_8bit_lr():
    torch.manual_seed(0)
    model = hub_models.create("srcnn", scale=2, **hub_models.SRCNN.test_config).eval()
    images = _faces() + _faces(2, size=(72, 68), seed=1)  # two sizes: batched per size
    result = evaluate_model(model, images, scale=2, batch_size=2)
    assert result["num_images"] == 5 and result["seconds_per_image"] >= 0
    assert set(result["model"]) == set(result["bicubic"]) == {"psnr_y", "ssim_y", "psnr_rgb", "lpips"}
    # the same numbers from score() on LR made by bicubic_lr_8bit, per size group, averaged per image
    per_image = {k: [] for k in result["model"]}
    for group in (images[:3], images[3:]):
        hr = mod_crop(torch.stack(group), 2)
        for key, value in score(model, bicubic_lr_8bit(hr, 2), hr, 2).items():
            per_image[key] += [value] * len(group)
    for key, values in per_image.items():
        assert result["model"][key] == pytest.approx(np.mean(values), abs=1e-6)
    bicubic_only = evaluate_model(hub_models.create("bicubic", scale=2), images, scale=2, with_bicubic=False)
    assert "bicubic" not in bicubic_only
    for key, value in bicubic_only["model"].items():
        assert result["bicubic"][key] == pytest.approx(value, abs=1e-6)  # batches differ: float rounding


def test_score_is_the_mean_of_metrics_evaluate():
    hr = torch.stack(_faces(4, size=(64, 64)))
    lr = bicubic_lr_8bit(hr, 4)
    bicubic = hub_models.create("bicubic", scale=4)
    expected = metrics.evaluate(bicubic.upscale(lr), hr, scale=4)
    got = score(bicubic, lr, hr, 4, batch_size=3)
    assert got == pytest.approx({k: float(v.mean()) for k, v in expected.items()}, abs=1e-6)


def test_real_world_evaluation_gives_each_image_one_fixed_draw():
    """`degradation="real-world"` (eq. 28, AGRNet-HR's benchmark rows): image i always gets the
    same LR, whatever the batching, and it differs from the bicubic LR."""
    from hub_models.degradations import real_world_lr_fixed

    images = _faces(4, size=(64, 64))
    bicubic = hub_models.create("bicubic", scale=4)
    one = evaluate_model(bicubic, images, scale=4, batch_size=1, with_bicubic=False, degradation="real-world")
    four = evaluate_model(bicubic, images, scale=4, batch_size=4, with_bicubic=False, degradation="real-world")
    for key, value in one["model"].items():
        assert four["model"][key] == pytest.approx(value, abs=1e-6)
    plain = evaluate_model(bicubic, images, scale=4, with_bicubic=False)
    assert plain["model"]["psnr_y"] != pytest.approx(one["model"]["psnr_y"], abs=0.1)
    first = torch.stack(images[:1])
    assert torch.equal(real_world_lr_fixed(torch.stack(images[1:2]), 4, first_index=1),
                       real_world_lr_fixed(torch.stack(images[:2]), 4)[1:])
    assert real_world_lr_fixed(first, 4).shape == (1, 3, 16, 16)
    with pytest.raises(ValueError, match="degradation must be one of bicubic, real-world"):
        evaluate_model(bicubic, images, scale=4, degradation="jpeg")


def test_evaluate_command_keeps_bicubic_and_real_world_rows_apart(tmp_path):
    from train.evaluate import store_result

    row = {"dataset": "CelebA-1000", "scale": 4, "protocol": "dic", "model": {}, "bicubic": {}}
    store_result(tmp_path, row)
    store_result(tmp_path, {**row, "dataset": "CelebA-1000 real-world", "degradation": "real-world"})
    store_result(tmp_path, {**row, "num_images": 2})  # measured again: replaces its own row only
    import json

    rows = json.loads((tmp_path / "eval_results.json").read_text())
    assert [(r["dataset"], r.get("degradation"), r.get("num_images")) for r in rows] == [
        ("CelebA-1000", None, 2), ("CelebA-1000 real-world", "real-world", None)]
