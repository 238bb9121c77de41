"""The Gradio demo: image I/O and face framing units, then the app launched in-process on a
free port and driven with gradio_client through its API (/upscale, /compare_all).

Runs offline on tiny untrained models saved into a temporary checkpoints folder, so it does
not depend on shipped weights (one test uses a shipped checkpoint when there is one).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import hub_models
from demo import catalogue, faces, imageio, pipeline, whole
from demo.imageio import ImageInputError, load_image

EXAMPLES = Path(__file__).resolve().parent.parent / "demo" / "examples"
FACE = EXAMPLES / "celeba_201606.jpg"
PHOTO = EXAMPLES / "photo_480x320_201625.jpg"


# ---------------------------------------------------------------------------------------
# files of every awkward kind
# ---------------------------------------------------------------------------------------
def face_rgb() -> np.ndarray:
    return np.asarray(Image.open(FACE).convert("RGB"))


def png_with_fake_size(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width x height (its data is tiny and would not decode)."""
    buf = io.BytesIO()
    Image.new("L", (8, 8)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    ihdr = data[12:29]  # b"IHDR" + 13 bytes
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    path.write_bytes(bytes(data))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("uploads")
    rgb = face_rgb()
    out: dict[str, Path] = {}
    out["text"] = d / "notes.png"
    out["text"].write_text("this is not an image\n" * 10)
    out["empty"] = d / "empty.png"
    out["empty"].write_bytes(b"")
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    rgba[:20, :20, 3] = 0  # a transparent corner
    out["rgba"] = d / "rgba.png"
    Image.fromarray(rgba, "RGBA").save(out["rgba"])
    out["grey"] = d / "grey.png"
    Image.fromarray(rgb).convert("L").save(out["grey"])
    out["palette"] = d / "palette.gif"
    Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE).save(out["palette"], transparency=0)
    out["16bit"] = d / "grey16.png"
    grey16 = (np.asarray(Image.fromarray(rgb).convert("L")).astype(np.uint16) * 257)
    Image.fromarray(grey16).save(out["16bit"])
    out["float"] = d / "float.tiff"
    Image.fromarray(np.asarray(Image.fromarray(rgb).convert("L"), np.float32) / 255.0, "F").save(out["float"])
    out["cmyk"] = d / "cmyk.jpg"
    Image.fromarray(rgb).convert("CMYK").save(out["cmyk"], quality=95)
    out["exif"] = d / "rotated.jpg"
    wide = Image.fromarray(rgb).resize((128, 96))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    wide.save(out["exif"], exif=exif, quality=95)
    out["tiny"] = d / "tiny.png"
    Image.fromarray(rgb).resize((8, 8)).save(out["tiny"])
    out["huge"] = d / "huge.png"
    Image.new("1", (8000, 8000)).save(out["huge"])  # 64 megapixels, a few kB on disk
    out["bomb"] = png_with_fake_size(d / "bomb.png", 30000, 30000)
    out["truncated"] = d / "truncated.jpg"
    full = io.BytesIO()
    Image.fromarray(rgb).save(full, format="JPEG", quality=95)
    out["truncated"].write_bytes(full.getvalue()[: len(full.getvalue()) // 2])
    return out


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
    with pytest.raises(ImageInputError, match=message) as err:
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
    t = imageio.to_tensor(rgb)
    assert t.shape == (1, 3, 128, 128) and t.dtype == torch.float32 and 0 <= t.min() and t.max() <= 1
    assert np.array_equal(imageio.to_uint8(t), rgb)
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
@pytest.fixture(scope="module")
def ckpt_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    hub_models.create("mffcn", **hub_models.MODELS["mffcn"].test_config).save_pretrained(d / "mffcn-tiny")
    hub_models.create("rafsr", **hub_models.MODELS["rafsr"].test_config).save_pretrained(d / "rafsr-tiny-x4")
    (d / "not-a-model").mkdir()
    (d / "not-a-model" / "config.json").write_text(json.dumps({"architecture": "nope"}))
    return d


def test_zoo_offers_checkpoints_bicubic_then_untrained_architectures(ckpt_dir, tmp_path):
    zoo = pipeline.ModelZoo(ckpt_dir)
    untrained = [f"{a}-untrained" for a in sorted(hub_models.MODELS) if a not in ("bicubic", "mffcn", "rafsr")]
    assert list(zoo.entries) == ["mffcn-tiny", "rafsr-tiny-x4", "bicubic", *untrained]
    assert zoo.comparable == ["mffcn-tiny", "rafsr-tiny-x4", "bicubic"]  # "Compare all" skips random weights
    assert all(zoo.entries[n].untrained and "untrained" in zoo.entries[n].describe() for n in untrained)
    assert zoo.entries["agrnet-untrained"].scales == (8,) and zoo.default_model() == "mffcn-tiny"
    assert zoo.entries["mffcn-tiny"].scales == (2, 3, 4) and zoo.entries["rafsr-tiny-x4"].scales == (4,)
    assert zoo.entries["mffcn-tiny"].params and zoo.default_model() == "mffcn-tiny"
    assert any("not-a-model" in s for s in zoo.skipped)
    assert zoo.get("mffcn-tiny", 4) is zoo.get("mffcn-tiny", 3)  # cached
    empty = pipeline.ModelZoo(tmp_path)
    assert list(empty.entries)[0] == "bicubic" and empty.default_model() == "bicubic"
    assert len(empty.entries) == len(hub_models.MODELS)  # bicubic + every architecture, untrained


def test_an_untrained_architecture_runs_with_fixed_random_weights():
    zoo = pipeline.ModelZoo(Path("/nonexistent"))
    res = pipeline.run_upscale(zoo, face_rgb(), "srcnn-untrained", pipeline.Degradation("bicubic", 4))
    again = pipeline.run_upscale(zoo, face_rgb(), "srcnn-untrained", pipeline.Degradation("bicubic", 4))
    assert res.sr.shape == again.sr.shape and np.array_equal(res.sr, again.sr)  # seed 0: reproducible
    assert res.scores["srcnn-untrained"]["psnr_y"] < res.scores["bicubic"]["psnr_y"]
    assert any("untrained (random weights): the result is" in n for n in res.notes)  # said in the status line
    assert "flat black square" in catalogue.describe_output(np.zeros((16, 16, 3), np.uint8))
    noise = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    assert "meaningless patterns" in catalogue.describe_output(noise)


def test_display_names_come_from_the_model_classes():
    assert catalogue.display_name(hub_models.MODELS["rafsr"]) == "RAFSR"
    assert catalogue.display_name(type("Net", (), {"display_name": "My-Net"})) == "My-Net"
    zoo = pipeline.ModelZoo(Path("/nonexistent"))
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
    zoo = pipeline.ModelZoo(tmp_path)
    assert zoo.default_model() == "b-best-x4" and zoo.entry("b-best-x4").gain(4) == pytest.approx(1.5)
    assert "PSNR-Y 28.90 dB (bicubic 27.40)" in zoo.entry("b-best-x4").describe()
    write_card(tmp_path / "a-first-x4", 2.0)
    assert pipeline.ModelZoo(tmp_path).default_model() == "a-first-x4"


def test_real_world_mode_says_which_models_were_trained_for_it(ckpt_dir, tmp_path):
    from demo.handlers import degradation_note

    zoo = pipeline.ModelZoo(ckpt_dir)
    assert zoo.trained_for("real-world") == []
    assert "No shipped model was trained on real-world degradation yet" in degradation_note(zoo, "real-world")
    shutil.copytree(ckpt_dir / "rafsr-tiny-x4", tmp_path / "rw-x4")
    write_card(tmp_path / "rw-x4", 1.0, degradation="real_world")
    zoo = pipeline.ModelZoo(tmp_path)
    assert zoo.trained_for("real-world") == ["rw-x4"] and "`rw-x4`" in degradation_note(zoo, "real-world")


def test_whole_image_is_capped_only_when_too_slow_and_the_note_names_the_command():
    zoo = pipeline.ModelZoo(Path("/nonexistent"))
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
    with pytest.raises(pipeline.DemoError, match="Unknown degradation"):
        pipeline.Degradation("blurry", 4)
    with pytest.raises(pipeline.DemoError, match="odd"):
        pipeline.Degradation("real-world", 4, blur_size=4)
    with pytest.raises(pipeline.DemoError, match="Scale"):
        pipeline.Degradation("bicubic", 5)


def test_tiny_image_needs_the_low_resolution_mode():
    tiny = face_rgb()[:8, :8]
    with pytest.raises(pipeline.DemoError, match="already low-resolution"):
        pipeline.prepare(tiny, pipeline.Degradation("bicubic", 8))
    prep = pipeline.prepare(tiny, pipeline.Degradation("none", 4))
    assert prep.hr is None and prep.lr.shape == (1, 3, 8, 8)


def test_flat_image_gives_json_safe_scores():
    zoo = pipeline.ModelZoo(Path("/nonexistent"))
    res = pipeline.run_upscale(zoo, np.full((64, 64, 3), 128, np.uint8), "bicubic", pipeline.Degradation("bicubic", 4))
    assert res.scores["bicubic"]["psnr_y"] == float("inf")
    info = json.loads(json.dumps(res.summary(), allow_nan=False))
    assert info["scores"]["bicubic"]["psnr_y"] is None and info["scores"]["bicubic"]["ssim_y"] == pytest.approx(1.0)


@pytest.mark.skipif(not hub_models.list_checkpoints(), reason="no shipped checkpoints yet")
def test_a_shipped_checkpoint_beats_nothing_on_a_test_face():
    zoo = pipeline.ModelZoo()
    name = zoo.default_model()
    scale = 4 if 4 in zoo.entry(name).scales else zoo.entry(name).scales[0]
    res = pipeline.run_upscale(zoo, face_rgb(), name, pipeline.Degradation("bicubic", scale))
    assert 15 < res.scores[name]["psnr_y"] < 60 and 0 < res.scores[name]["ssim_y"] <= 1


# ---------------------------------------------------------------------------------------
# the app through its API
# ---------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(ckpt_dir, tmp_path_factory):
    import demo
    from gradio_client import Client

    port = free_port()
    old = os.environ.get("GRADIO_SERVER_PORT")
    os.environ["GRADIO_SERVER_PORT"] = str(port)  # launch() must honour it
    app = demo.build_app(checkpoints_dir=ckpt_dir)
    try:
        _, url, _ = demo.launch(app, prevent_thread_lock=True, quiet=True)
    finally:
        if old is None:
            os.environ.pop("GRADIO_SERVER_PORT", None)
        else:
            os.environ["GRADIO_SERVER_PORT"] = old
    client = Client(url, verbose=False, analytics_enabled=False,
                    download_files=str(tmp_path_factory.mktemp("downloads")))
    yield app, url, client, port
    client.close() if hasattr(client, "close") else None
    app.close()


def upscale(client, path, **kw):
    from gradio_client import handle_file

    return client.predict(image=handle_file(str(path)), api_name="/upscale", **kw)


def check_scores(s: dict):
    assert 10 < s["psnr_y"] < 60 and 10 < s["psnr_rgb"] < 60
    assert 0 < s["ssim_y"] <= 1 and 0 <= s["lpips"] <= 1 and s["time_ms"] >= 0


def test_server_is_local_private_and_limited(served):
    app, url, client, port = served
    assert url.startswith(f"http://127.0.0.1:{port}")
    assert app.share is False and app.analytics_enabled is False
    assert app.max_file_size == 50 * 1024 * 1024
    assert app.allowed_paths == []
    api = client.view_api(print_info=False, return_format="dict")
    assert sorted(api["named_endpoints"]) == ["/compare_all", "/upscale"]
    params = [p["parameter_name"] for p in api["named_endpoints"]["/upscale"]["parameters"]]
    assert params[:3] == ["image", "model", "degradation"]
    assert all(p["parameter_has_default"] for p in api["named_endpoints"]["/upscale"]["parameters"][1:])


def test_upscale_bicubic_mode(served):
    _, _, client, _ = served
    lr, sr, hr, pair, table, info, photo, downloads, status = upscale(client, FACE, degradation="bicubic")
    assert Image.open(lr).size == Image.open(sr).size == Image.open(hr).size == (128, 128)
    assert Image.open(sr).format == "PNG" and len(pair) == 2
    assert info["model"] == "mffcn-tiny" and info["degradation"] == {"mode": "bicubic", "scale": 4}
    assert set(info["scores"]) == {"mffcn-tiny", "bicubic"}
    for s in info["scores"].values():
        check_scores(s)
    assert [row[0] for row in table["data"]][1] == "Bicubic (same input)"
    assert table["headers"][1].startswith("PSNR") and "LPIPS" in table["headers"][4]
    assert photo is None and {Path(f).suffix for f in downloads} == {".png"}
    assert "MFFCN" in status


def test_upscale_real_world_mode_and_bicubic_model(served):
    _, _, client, _ = served
    out = upscale(client, FACE, model="bicubic", degradation="real-world", scale=8, blur_kind="motion",
                  blur_size=5, noise=10, jpeg_quality=60, seed=3)
    info = out[5]
    assert info["degradation"]["mode"] == "real-world" and info["input_size"] == [16, 16]
    assert list(info["scores"]) == ["bicubic"]
    check_scores(info["scores"]["bicubic"])
    assert Image.open(out[1]).size == (128, 128)


def test_already_low_resolution_mode_has_no_scores(served):
    _, _, client, _ = served
    lr, sr, hr, _, table, info, _, _, status = upscale(client, EXAMPLES / "lowres_32px_201608.png",
                                                      model="rafsr-tiny-x4", degradation="none")
    assert hr is None and info["scores"] == {} and info["protocol"] is None
    assert Image.open(sr).size == (128, 128)
    assert all(v == "–" for v in table["data"][0][1:5])
    assert "no scores" in status


def test_low_resolution_mode_is_the_default_and_upscales_the_whole_photo(served):
    _, _, client, _ = served
    lr, sr, hr, _, table, info, photo, downloads, status = upscale(client, PHOTO, model="bicubic")
    assert info["degradation"] == {"mode": "none", "scale": 4} and info["face_box"] is None
    assert info["input_size"] == [480, 320] and info["output_size"] == [1920, 1280]
    assert Image.open(sr).size == Image.open(lr).size == (1920, 1280) and hr is None and photo is None
    assert "480×320 → 1920×1280 px" in status and len(table["data"]) == 1


def test_low_resolution_mode_with_face_framing_upscales_every_face(served, tmp_path):
    from test_browser import two_face_photo

    _, _, client, _ = served
    out = upscale(client, two_face_photo(tmp_path / "two.jpg"), model="rafsr-tiny-x4", framing="face")
    assert Image.open(out[1]).size == (2400, 3200) and out[5]["output_size"] == [2400, 3200]
    assert "2 face(s) upscaled with RAFSR; the rest of the photo with bicubic" in out[8]


def test_photo_face_is_cropped_and_pasted_back(served):
    _, _, client, _ = served
    out = upscale(client, PHOTO, model="bicubic", degradation="bicubic", scale=4)
    info = out[5]
    assert info["face_box"] is not None and info["input_size"] == [32, 32]
    assert Image.open(out[6]).size[0] >= 480  # the photo, with the face pasted back
    assert len(out[7]) == 3


def test_incompatible_scale_is_explained(served):
    _, _, client, _ = served
    with pytest.raises(Exception, match="works at ×4 only"):
        upscale(client, FACE, model="rafsr-tiny-x4", scale=8)
    with pytest.raises(Exception, match="works at ×4 only"):
        upscale(client, FACE, model="rafsr-tiny-x4", scale=8, degradation="bicubic")


def test_compare_all_runs_every_model_at_the_scale(served):
    from gradio_client import handle_file

    _, _, client, _ = served
    gallery, table, status = client.predict(image=handle_file(str(FACE)), degradation="bicubic", scale=3,
                                            api_name="/compare_all")
    names = [row[0] for row in table["data"]]
    assert len(names) == 3 and "skipped" in table["data"][names.index("RAFSR (rafsr-tiny-x4)")][6]
    assert len(gallery) == 2 + 2  # input, mffcn, bicubic, original
    assert "Compared 2 model(s)" in status


@pytest.mark.parametrize("kind,message", [("text", "not an image"), ("bomb", "decompression-bomb"),
                                          ("rgba", None), ("16bit", None), ("tiny", "already low-resolution")])
def test_bad_uploads_are_refused_cleanly_and_the_server_keeps_serving(served, files, kind, message):
    _, _, client, _ = served
    if message is None:
        info = upscale(client, files[kind], model="bicubic", degradation="bicubic")[5]
        check_scores(info["scores"]["bicubic"])
    else:
        with pytest.raises(Exception, match=message):
            upscale(client, files[kind], model="bicubic", degradation="bicubic")
    assert upscale(client, FACE, model="bicubic", degradation="none")[1] is not None


def test_oversized_upload_is_rejected_by_the_server(served, tmp_path):
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG" + os.urandom(51 * 1024 * 1024))
    _, _, client, _ = served
    with pytest.raises(Exception):
        upscale(client, big)
    assert upscale(client, FACE, model="bicubic", degradation="none")[1] is not None


def test_files_outside_the_upload_folder_cannot_be_read(served):
    import httpx

    _, url, _, _ = served
    payload = {"data": [{"path": str(FACE), "meta": {"_type": "gradio.FileData"}}, "bicubic", "none", 4,
                        "auto", True, "gaussian", 3, 5, 75, 0]}
    r = httpx.post(f"{url}gradio_api/call/upscale", json=payload, timeout=30)
    event = r.json()["event_id"]
    body = httpx.get(f"{url}gradio_api/call/upscale/{event}", timeout=30).text
    assert "event: error" in body and "complete" not in body.split("event: error")[0]
    for path in (FACE, Path(__file__)):  # and nothing on disk is served directly
        assert httpx.get(f"{url}gradio_api/file={path}", timeout=30).status_code == 403


@pytest.mark.skipif(not (shutil.which("chromium") or shutil.which("chromium-browser")),
                    reason="needs Debian's chromium (apt-get install chromium) for the headless screenshot")
def test_screenshot_script_renders_the_page_after_clicking_an_example(tmp_path):
    """demo/screenshot.py: the app in-process, headless Chromium, an example clicked; the PNG
    shows a page (not blank) at the requested width."""
    from demo import screenshot

    out = screenshot.main(["--out", str(tmp_path / "page.png"), "--width", "1000", "--height", "800"])
    page = np.asarray(Image.open(out).convert("RGB"))
    assert page.shape[1] == 1000 and page.shape[0] >= 800
    assert page.std() > 20  # text and images, not an empty page
