"""The Gradio demo launched in-process on a free port and driven with gradio_client through
its API (/upscale, /compare_all), plus the screenshot script.

Runs offline on tiny untrained models saved into a temporary checkpoints folder, so it does
not depend on shipped weights. The demo's parts without the server: tests/test_demo_units.py.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
from demo_files import EXAMPLES, FACE, PHOTO, two_face_photo
from PIL import Image

pytest_plugins = ["demo_files"]  # its fixtures: files, ckpt_dir


# ---------------------------------------------------------------------------------------
# the app through its API
# ---------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(ckpt_dir, tmp_path_factory):
    from gradio_client import Client

    import demo

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
