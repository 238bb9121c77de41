"""Shared by the demo's tests: the example files, uploads of every awkward kind, and a
checkpoints folder of tiny untrained models (so nothing depends on shipped weights).
Test modules import the fixtures they use from here."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import hub_models

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


def two_face_photo(path: Path) -> Path:
    """600 wide x 800 high: a gradient with two CelebA test faces (240 px) pasted in."""
    yy, xx = np.mgrid[0:800, 0:600]
    bg = np.stack([90 + xx / 8, 110 + yy / 10, np.full(xx.shape, 140)], axis=-1).astype(np.uint8)
    im = Image.fromarray(bg)
    for name, xy in (("celeba_201606.jpg", (40, 120)), ("celeba_201631.jpg", (330, 430))):
        im.paste(Image.open(EXAMPLES / name).convert("RGB").resize((240, 240), Image.BICUBIC), xy)
    im.save(path, quality=92)
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


@pytest.fixture(scope="module")
def ckpt_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    hub_models.create("mffcn", **hub_models.MODELS["mffcn"].test_config).save_pretrained(d / "mffcn-tiny")
    hub_models.create("rafsr", **hub_models.MODELS["rafsr"].test_config).save_pretrained(d / "rafsr-tiny-x4")
    (d / "not-a-model").mkdir()
    (d / "not-a-model" / "config.json").write_text(json.dumps({"architecture": "nope"}))
    return d
