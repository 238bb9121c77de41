"""Every face in a photo (hub_models.faces.upscale_faces) and `python -m hub_models upscale`."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import hub_models
from hub_models import faces
from hub_models.__main__ import main
from hub_models.images import rgb_to_tensor, tensor_to_rgb

EXAMPLES = Path(__file__).resolve().parent.parent / "demo" / "examples"


def _srcnn():
    torch.manual_seed(0)
    return hub_models.SRCNN(**hub_models.SRCNN.test_config).eval()


def group_photo() -> np.ndarray:
    """Three example faces (80 px) side by side on a grey background: 304x120."""
    photo = np.full((120, 304, 3), 90, np.uint8)
    for k, n in enumerate(("06", "12", "31")):
        face = Image.open(EXAMPLES / f"celeba_2016{n}.jpg").convert("RGB").resize((80, 80), Image.BICUBIC)
        photo[20:100, 16 + k * 96:96 + k * 96] = np.asarray(face)
    return photo


def test_every_face_of_a_group_photo_is_upscaled_and_pasted_back():
    photo, model, s = group_photo(), _srcnn(), 4
    calls = []
    out, boxes = faces.upscale_faces(photo, model, s, progress=lambda d, t: calls.append((d, t)))
    assert out.shape == (120 * s, 304 * s, 3) and out.dtype == np.uint8
    assert len(boxes) == 3
    centres = sorted(b.x + b.w / 2 for b in boxes)
    assert [int(c // 96) for c in centres] == [0, 1, 2]  # one box on each face
    background = tensor_to_rgb(hub_models.create("bicubic", scale=s).upscale(rgb_to_tensor(photo), tile=0))
    frames = [faces.face_frame(b) for b in boxes]
    covered = np.zeros(out.shape[:2], bool)
    for f in frames:
        covered[max(0, f.y * s):(f.y + f.h) * s, max(0, f.x * s):(f.x + f.w) * s] = True
        # the face's centre is the face model's output for its frame, not bicubic
        sr = tensor_to_rgb(model.upscale(rgb_to_tensor(faces.crop(photo, f)), s))
        o = (f.h // 2) * s  # the frame's centre, in its own result
        cy, cx = f.y * s + o, f.x * s + o
        ours = out[cy - 8:cy + 8, cx - 8:cx + 8].astype(int)
        assert np.abs(ours - sr[o - 8:o + 8, o - 8:o + 8]).max() <= 1
        assert np.abs(ours - background[cy - 8:cy + 8, cx - 8:cx + 8]).mean() > 2
        # feathered: the frame's outermost row blends to the background
        edge = out[f.y * s, max(0, f.x * s):(f.x + f.w) * s].astype(int)
        assert np.abs(edge - background[f.y * s, max(0, f.x * s):(f.x + f.w) * s]).max() <= 1
    assert np.array_equal(out[~covered], background[~covered])  # outside the faces: the background
    assert calls[-1][0] == calls[-1][1] and calls[-1][1] >= 4  # background step(s) + 3 faces


def test_upscale_faces_refuses_float_arrays():
    with pytest.raises(TypeError, match="uint8 RGB array"):
        faces.upscale_faces(np.zeros((20, 20, 3), np.float32), _srcnn(), 4)


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


@pytest.fixture
def mixed_folder(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(group_photo()[:40, :60]).save(folder / "a.png")
    Image.fromarray(group_photo()[60:100, 100:150]).save(folder / "b.jpg", quality=90)
    (folder / "notes.txt").write_text("not an image")
    (folder / "broken.jpg").write_bytes((folder / "b.jpg").read_bytes()[:300])
    return folder


def test_cli_upscales_a_folder_of_good_and_bad_files(mixed_folder, capsys):
    before = _digest(mixed_folder)
    rc = main(["upscale", str(mixed_folder), "--model", "bicubic-x4"])
    out, err = capsys.readouterr()
    dest = mixed_folder.with_name("photos_x4")
    assert rc == 1  # some files failed
    assert sorted(p.name for p in dest.iterdir()) == ["a.png", "b.jpg"]
    assert Image.open(dest / "a.png").size == (240, 160) and Image.open(dest / "b.jpg").size == (200, 160)
    assert "4 file(s)" in out and "2 upscaled x4" in out and "2 failed" in out
    assert "broken.jpg" in out and "notes.txt" in out and "not an image" in out
    assert "%|" in err and "4/4" in err  # the tqdm bar
    assert _digest(mixed_folder) == before  # inputs untouched
    # a second run skips the existing outputs instead of writing over them
    stamp = (dest / "a.png").stat().st_mtime_ns
    main(["upscale", str(mixed_folder), "--model", "bicubic-x4"])
    assert "2 skipped (output exists)" in capsys.readouterr().out
    assert (dest / "a.png").stat().st_mtime_ns == stamp


def test_cli_never_writes_over_an_input(mixed_folder, capsys):
    before = _digest(mixed_folder)
    assert main(["upscale", str(mixed_folder / "a.png"), str(mixed_folder / "a.png"), "--model", "bicubic-x4",
                 "--overwrite"]) == 1
    # an existing file that is not an input is replaced only with --overwrite
    assert main(["upscale", str(mixed_folder / "a.png"), str(mixed_folder / "b.jpg"), "--model", "bicubic-x4"]) == 0
    assert "0 upscaled x4 with bicubic-x4, 0 failed, 1 skipped (output exists)" in capsys.readouterr().out
    assert main(["upscale", str(mixed_folder), str(mixed_folder), "--model", "bicubic-x4", "--overwrite"]) == 1
    out = capsys.readouterr().out
    assert "is an input" in out
    assert _digest(mixed_folder) == before


def test_cli_single_file_with_faces_and_bad_arguments(tmp_path, capsys):
    src = tmp_path / "group.png"
    Image.fromarray(group_photo()).save(src)
    assert main(["upscale", str(src), "--model", "bicubic-x2", "--faces"]) == 0
    assert Image.open(tmp_path / "group_x2.png").size == (608, 240)
    assert "1 upscaled x2" in capsys.readouterr().out
    assert main(["upscale", str(tmp_path / "missing.png")]) == 2
    assert main(["upscale", str(src), "--model", "no-such-model"]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "no model called 'no-such-model'" in err
