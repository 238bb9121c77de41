"""The demo's parts without the server: image I/O, face framing, the model catalogue,
degradations and running (`demo.imageio`, `demo.catalogue`, `demo.pipeline`, `demo.whole`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from demo_files import PHOTO, face_rgb
from PIL import Image

import hub_models
from demo import catalogue, imageio, pipeline, whole
from demo.catalogue import DemoError, ModelZoo
from demo.degradation import Degradation
from demo.imageio import UploadError, load_image
from hub_models import faces
from hub_models.images import rgb_to_tensor, tensor_to_rgb
from hub_models.registry import Capabilities

pytest_plugins = ["demo_files"]  # its fixtures: files, ckpt_dir


# ---------------------------------------------------------------------------------------
# image I/O
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["rgba", "grey", "palette", "16bit", "float", "cmyk"])
def test_load_image_converts_every_mode_to_rgb8(files, kind):
    img = load_image(files[kind])
    assert img.rgb.dtype == np.uint8 and img.rgb.shape == (128, 128, 3)
    if kind == "16bit":  # scaled to 8 bits, not clipped to white
        assert 60 < img.rgb.mean() < 200 and any("16-bit" in n for n in img.notes)
    if kind == "rgba":
        assert (img.rgb[:20, :20] == 255).all() and any("white" in n for n in img.notes)
    if kind == "float":
        ref = np.asarray(Image.open(files["grey"]))
        assert np.abs(img.rgb[..., 0].astype(int) - ref).max() <= 1


def test_load_image_follows_exif_orientation(files):
    img = load_image(files["exif"])
    assert img.rgb.shape == (128, 96, 3)  # stored 128 wide x 96 high, shown upright
    assert any("EXIF" in n for n in img.notes)


@pytest.mark.parametrize("kind,message", [
    ("text", "not an image"), ("empty", "empty"), ("tiny", None), ("bomb", "decompression-bomb"),
    ("truncated", "damaged or truncated")])
def test_load_image_refuses_bad_files_with_a_readable_message(files, kind, message):
    if message is None:  # an 8x8 image is fine to load (the pipeline decides what to do)
        assert load_image(files[kind]).rgb.shape == (8, 8, 3)
        return
    with pytest.raises(UploadError, match=message) as err:
        load_image(files[kind])
    assert str(files[kind].parent) not in str(err.value)  # never shows server paths


def test_load_image_scales_down_large_photos(tmp_path, files):
    path = tmp_path / "wide.jpg"
    Image.new("RGB", (5000, 1000), (90, 120, 200)).save(path, quality=80)
    img = load_image(path)
    assert max(img.rgb.shape[:2]) == imageio.MAX_SIDE
    assert img.original_size == (5000, 1000) and any("scaled down" in n for n in img.notes)
    huge = load_image(files["huge"])  # 64 megapixels (a 48 MP phone photo is smaller): scaled down, not refused
    assert huge.rgb.shape == (imageio.MAX_SIDE, imageio.MAX_SIDE, 3) and huge.original_size == (8000, 8000)


def test_tensor_round_trip_and_png(tmp_path):
    rgb = face_rgb()
    t = rgb_to_tensor(rgb)
    assert t.shape == (1, 3, 128, 128) and t.dtype == torch.float32 and 0 <= t.min() and t.max() <= 1
    assert np.array_equal(tensor_to_rgb(t), rgb)
    path = imageio.save_png(rgb, tmp_path / "x.png")
    assert np.array_equal(np.asarray(Image.open(path)), rgb)
    assert imageio.nearest_upscale(rgb[:4, :4], (16, 16)).shape == (16, 16, 3)


# ---------------------------------------------------------------------------------------
# faces
# ---------------------------------------------------------------------------------------
def test_face_is_found_in_the_example_photo_and_framed_like_training():
    photo = np.asarray(Image.open(PHOTO).convert("RGB"))
    boxes = faces.detect_faces(photo)
    assert len(boxes) == 1
    b = boxes[0]
    # the face was pasted at (250, 70) with its 128x128 CelebA framing
    frame = faces.face_frame(b)
    assert abs(frame.x - 250) <= 10 and abs(frame.y - 70) <= 10 and abs(frame.w - 128) <= 12


def test_no_face_in_a_flat_image():
    assert faces.detect_faces(np.full((300, 400, 3), 127, np.uint8)) == []


def test_crop_pads_outside_the_photo_and_paste_back_keeps_the_rest():
    photo = np.asarray(Image.open(PHOTO).convert("RGB"))
    box = faces.Box(-20, -10, 100, 100)
    c = faces.crop(photo, box)
    assert c.shape == (100, 100, 3)
    assert np.array_equal(c[10:, 20:], photo[:90, :80])
    face = np.zeros((128, 128, 3), np.uint8)
    out = faces.paste_back(photo, face, faces.Box(250, 70, 128, 128))
    assert out.shape == photo.shape
    assert np.array_equal(out[:, :200], photo[:, :200])       # far from the face: untouched
    assert out[130, 314].max() < 5                             # centre of the box: the pasted face
    big = faces.paste_back(photo, np.zeros((128, 128, 3), np.uint8), faces.Box(250, 70, 32, 32))
    assert big.shape == (photo.shape[0] * 4, photo.shape[1] * 4, 3)  # enlarged so the face keeps 128 px


# ---------------------------------------------------------------------------------------
# pipeline
# ---------------------------------------------------------------------------------------
def test_zoo_offers_checkpoints_bicubic_then_untrained_architectures(ckpt_dir, tmp_path):
    zoo = ModelZoo(ckpt_dir)
    untrained = [f"{a}-untrained" for a in sorted(hub_models.MODELS) if a not in ("bicubic", "mffcn", "rafsr")]
    assert list(zoo.entries) == ["mffcn-tiny", "rafsr-tiny-x4", "bicubic", *untrained]
    assert zoo.comparable == ["mffcn-tiny", "rafsr-tiny-x4", "bicubic"]  # "Compare all" skips random weights
    assert all(zoo.entries[n].untrained and "untrained" in zoo.entries[n].describe() for n in untrained)
    assert zoo.entries["agrnet-untrained"].scales == (8,) and zoo.default_model() == "mffcn-tiny"
    assert zoo.entries["mffcn-tiny"].scales == (2, 3, 4) and zoo.entries["rafsr-tiny-x4"].scales == (4,)
    assert zoo.entries["mffcn-tiny"].params and zoo.default_model() == "mffcn-tiny"
    assert any("not-a-model" in s for s in zoo.skipped)
    assert zoo.get("mffcn-tiny", 4) is zoo.get("mffcn-tiny", 3)  # cached
    empty = ModelZoo(tmp_path)
    assert list(empty.entries)[0] == "bicubic" and empty.default_model() == "bicubic"
    assert len(empty.entries) == len(hub_models.MODELS)  # bicubic + every architecture, untrained


def test_an_untrained_architecture_runs_with_fixed_random_weights():
    zoo = ModelZoo(Path("/nonexistent"))
    res = pipeline.run_upscale(zoo, face_rgb(), "srcnn-untrained", Degradation("bicubic", 4))
    again = pipeline.run_upscale(zoo, face_rgb(), "srcnn-untrained", Degradation("bicubic", 4))
    assert res.sr.shape == again.sr.shape and np.array_equal(res.sr, again.sr)  # seed 0: reproducible
    assert res.scores["srcnn-untrained"]["psnr_y"] < res.scores["bicubic"]["psnr_y"]
    assert any("untrained (random weights): the result is" in n for n in res.notes)  # said in the status line
    assert "flat black square" in catalogue.describe_output(np.zeros((16, 16, 3), np.uint8))
    noise = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    assert "meaningless patterns" in catalogue.describe_output(noise)


def test_display_names_come_from_the_model_classes():
    assert catalogue.display_name(hub_models.MODELS["rafsr"]) == "RAFSR"
    my_net = Capabilities("My-Net", scales=(4,), scale_key="scale", pre_upsampled=False)
    assert catalogue.display_name(type("Net", (), {"capabilities": my_net})) == "My-Net"
    zoo = ModelZoo(Path("/nonexistent"))
    assert all(e.display == catalogue.display_name(hub_models.MODELS[e.architecture]) for e in zoo.entries.values()
               if e.architecture != "bicubic")


def write_card(folder: Path, gain: float, degradation: str = "bicubic") -> None:
    rows = [{"dataset": d, "scale": 4, "model": {"psnr_y": b + gain, "lpips": 0.2}, "bicubic": {"psnr_y": b}}
            for d, b in (("CelebA-1000", 27.4), ("UTKFace-val", 28.0))]
    (folder / "eval_results.json").write_text(json.dumps(rows))
    (folder / "training.json").write_text(json.dumps({"recipe": {"degradation": degradation}}))


def test_default_model_is_the_best_measured_checkpoint_not_the_first_name(ckpt_dir, tmp_path):
    for name in ("a-first-x4", "b-best-x4"):
        shutil.copytree(ckpt_dir / "rafsr-tiny-x4", tmp_path / name)
    write_card(tmp_path / "a-first-x4", 0.5)
    write_card(tmp_path / "b-best-x4", 1.5)
    zoo = ModelZoo(tmp_path)
    assert zoo.default_model() == "b-best-x4" and zoo.entry("b-best-x4").gain(4) == pytest.approx(1.5)
    assert "PSNR-Y 28.90 dB (bicubic 27.40)" in zoo.entry("b-best-x4").describe()
    write_card(tmp_path / "a-first-x4", 2.0)
    assert ModelZoo(tmp_path).default_model() == "a-first-x4"


def test_real_world_mode_says_which_models_were_trained_for_it(ckpt_dir, tmp_path):
    from demo.handlers import degradation_note

    zoo = ModelZoo(ckpt_dir)
    assert zoo.trained_for("real-world") == []
    assert "No shipped model was trained on real-world degradation yet" in degradation_note(zoo, "real-world")
    shutil.copytree(ckpt_dir / "rafsr-tiny-x4", tmp_path / "rw-x4")
    write_card(tmp_path / "rw-x4", 1.0, degradation="real_world")
    zoo = ModelZoo(tmp_path)
    assert zoo.trained_for("real-world") == ["rw-x4"] and "`rw-x4`" in degradation_note(zoo, "real-world")


def test_real_world_mode_offers_the_real_world_model_first(ckpt_dir, tmp_path):
    from demo.handlers import Handlers

    shutil.copytree(ckpt_dir / "rafsr-tiny-x4", tmp_path / "a-bicubic-x4")
    write_card(tmp_path / "a-bicubic-x4", 2.0)
    shutil.copytree(ckpt_dir / "rafsr-tiny-x4", tmp_path / "rw-x4")
    write_card(tmp_path / "rw-x4", 1.0, degradation="real_world")
    h = Handlers(ModelZoo(tmp_path))
    assert h.default_model == "a-bicubic-x4"  # the best bicubic gain stays the default
    menu = h.on_degradation("real-world", "a-bicubic-x4")[-1]
    assert menu.value == "rw-x4" and [name for _, name in menu.choices][:2] == ["rw-x4", "a-bicubic-x4"]
    assert h.on_degradation("real-world", "rw-x4")[-1].value == "rw-x4"
    back = h.on_degradation("bicubic", "rw-x4")[-1]
    assert back.value == "rw-x4" and [name for _, name in back.choices][0] == "a-bicubic-x4"  # catalogue order again
    # no real-world checkpoint: the menu and the choice stay as they were
    plain = Handlers(ModelZoo(ckpt_dir)).on_degradation("real-world", "mffcn-tiny")[-1]
    assert plain.value == "mffcn-tiny"


def test_whole_image_is_capped_only_when_too_slow_and_the_note_names_the_command():
    zoo = ModelZoo(Path("/nonexistent"))
    photo = np.asarray(Image.open(PHOTO).convert("RGB"))  # 480x320
    full = whole.plan_whole(zoo, photo, "bicubic", 4, max_seconds=1e6)
    assert full.lr.shape == photo.shape and full.notes == [] and full.seconds > 0
    capped = whole.plan_whole(zoo, photo, "bicubic", 4, max_seconds=full.seconds / 4, source="me.png")
    assert abs(capped.lr.shape[1] - 240) <= 2 and abs(capped.lr.shape[0] - 160) <= 2
    assert capped.seconds <= full.seconds / 4 * 1.01
    assert "`python -m hub_models upscale me.png --model bicubic --scale 4`" in capped.notes[0]
    ticks = []
    res = whole.run_whole(zoo, capped, progress=lambda done, total: ticks.append((done, total)))
    assert res.sr.shape == (capped.lr.shape[0] * 4, capped.lr.shape[1] * 4, 3) and res.hr is None
    assert res.notes[0] == capped.notes[0] and res.scores == {}


def test_degradation_settings_are_validated():
    with pytest.raises(DemoError, match="Unknown degradation"):
        Degradation("blurry", 4)
    with pytest.raises(DemoError, match="odd"):
        Degradation("real-world", 4, blur_size=4)
    with pytest.raises(DemoError, match="Scale"):
        Degradation("bicubic", 5)


def test_tiny_image_needs_the_low_resolution_mode():
    tiny = face_rgb()[:8, :8]
    with pytest.raises(DemoError, match="already low-resolution"):
        pipeline.prepare(tiny, Degradation("bicubic", 8))
    prep = pipeline.prepare(tiny, Degradation("none", 4))
    assert prep.hr is None and prep.lr.shape == (1, 3, 8, 8)


def test_flat_image_gives_json_safe_scores():
    zoo = ModelZoo(Path("/nonexistent"))
    res = pipeline.run_upscale(zoo, np.full((64, 64, 3), 128, np.uint8), "bicubic", Degradation("bicubic", 4))
    assert res.scores["bicubic"]["psnr_y"] == float("inf")
    info = json.loads(json.dumps(res.summary(), allow_nan=False))
    assert info["scores"]["bicubic"]["psnr_y"] is None and info["scores"]["bicubic"]["ssim_y"] == pytest.approx(1.0)


@pytest.mark.skipif(not hub_models.list_checkpoints(), reason="no shipped checkpoints yet")
def test_a_shipped_checkpoint_beats_nothing_on_a_test_face():
    zoo = ModelZoo()
    name = zoo.default_model()
    scale = 4 if 4 in zoo.entry(name).scales else zoo.entry(name).scales[0]
    res = pipeline.run_upscale(zoo, face_rgb(), name, Degradation("bicubic", scale))
    assert 15 < res.scores[name]["psnr_y"] < 60 and 0 < res.scores[name]["ssim_y"] <= 1
