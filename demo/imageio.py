"""Reading uploads safely and converting between arrays, tensors and PNG files.

Every upload goes through :func:`load_image`, which decodes the file itself (the Gradio
component hands over only the path), so that whatever arrives -- RGBA, greyscale,
palette, 16-bit, float TIFF, CMYK, EXIF-rotated, animated, truncated, enormous, or not an
image at all -- either becomes a plain uint8 RGB array or raises :class:`UploadError`
with a message meant for a person.  Nothing here imports Gradio.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from hub_models import ImageInputError

#: uploads above this many pixels are refused before they are decoded: PIL's
#: decompression-bomb limit (~179 MP); anything smaller is decoded and scaled down
MAX_PIXELS = int(float(os.environ.get("FACESR_MAX_PIXELS", Image.MAX_IMAGE_PIXELS)))
#: decoded photos larger than this on their long side are scaled down (face search and
#: paste-back do not need more)
MAX_SIDE = 2048
#: images smaller than this on their short side are refused
MIN_SIDE = 4
#: files larger than this are refused (the web server also limits uploads)
MAX_FILE_BYTES = 50 * 1024 * 1024


class UploadError(ImageInputError):
    """An upload that cannot be used: the library's ImageInputError whose message is written
    for the person who sent it (and names no server path), so the page may show it as is."""


@dataclass
class LoadedImage:
    rgb: np.ndarray                      # (H, W, 3) uint8
    original_size: tuple[int, int]       # (width, height) as stored in the file
    format: str = ""
    notes: list[str] = field(default_factory=list)


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


def load_image(path: str | os.PathLike | None, max_pixels: int = MAX_PIXELS, max_side: int = MAX_SIDE) -> LoadedImage:
    """Decode an uploaded file into uint8 RGB, or raise UploadError saying why not."""
    if path is None or str(path) == "":
        raise UploadError("Please upload an image first (or click one of the examples).")
    path = Path(path)
    if not path.is_file():
        raise UploadError("The uploaded file could not be found on the server; please upload it again.")
    size = path.stat().st_size
    if size == 0:
        raise UploadError("The uploaded file is empty.")
    if size > MAX_FILE_BYTES:
        raise UploadError(f"The file is {_mb(size)}; the demo accepts files up to {_mb(MAX_FILE_BYTES)}.")
    notes: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(path)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise UploadError(
                f"This image is far too large (over {Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels, the "
                "decompression-bomb limit that protects the server); please scale it down first."
            ) from None
        except UnidentifiedImageError:
            raise UploadError(
                "This file is not an image the demo can read. Please upload a PNG, JPEG, WebP, BMP, "
                "TIFF or GIF picture."
            ) from None
        except OSError as err:
            raise UploadError(f"The file could not be opened as an image ({_short(err)}).") from None
        with im:
            w, h = im.size
            if w * h > max_pixels:
                raise UploadError(
                    f"This image is {w}×{h} pixels ({w * h / 1e6:.1f} megapixels), above the {max_pixels / 1e6:.0f}-"
                    "megapixel decompression-bomb limit that protects the server. Please scale it down first."
                )
            if min(w, h) < MIN_SIDE:
                raise UploadError(f"This image is only {w}×{h} pixels; it needs at least {MIN_SIDE} pixels on each side.")
            fmt = im.format or ""
            stored_size = (w, h)
            if getattr(im, "n_frames", 1) > 1:
                notes.append("The file has several frames; the first one is used.")
                im.seek(0)
            if fmt == "JPEG" and max(w, h) > 2 * max_side:
                im.draft("RGB", (max_side, max_side))  # decode at 1/2, 1/4 or 1/8 size: cheap
            try:
                im.load()
            except (Image.DecompressionBombError, Image.DecompressionBombWarning):
                raise UploadError("This image is far too large to decode.") from None
            except (OSError, SyntaxError, ValueError) as err:
                raise UploadError(f"The image file is damaged or truncated ({_short(err)}).") from None
            try:
                orientation = im.getexif().get(0x0112, 1)
                if orientation not in (1, None):
                    im = ImageOps.exif_transpose(im)
                    notes.append("The photo was turned upright following its EXIF orientation tag.")
            except Exception:  # broken EXIF: keep the pixels as stored
                notes.append("The EXIF orientation tag could not be read; the image is used as stored.")
            rgb = _to_rgb8(im, notes)
    h, w = rgb.shape[:2]
    if max(h, w) > max_side:
        f = max_side / max(h, w)
        nw, nh = max(1, round(w * f)), max(1, round(h * f))
        rgb = np.asarray(Image.fromarray(rgb).resize((nw, nh), Image.BICUBIC, reducing_gap=3.0))
        notes.append(f"The photo was scaled down from {stored_size[0]}×{stored_size[1]} to {nw}×{nh} pixels "
                     f"(at most {max_side} px on the long side).")
    return LoadedImage(np.ascontiguousarray(rgb), stored_size, fmt, notes)


def _short(err: BaseException) -> str:
    """The first line of an error, or only its type where the text names a server path."""
    text = str(err).split("\n")[0][:120]
    return type(err).__name__ if "/" in text or "\\" in text else text


def _to_rgb8(im: Image.Image, notes: list[str]) -> np.ndarray:
    """Any PIL mode -> (H, W, 3) uint8 RGB; transparency is flattened onto white."""
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        arr = np.asarray(im).astype(np.float64)
        if mode == "F":
            lo, hi = np.nanmin(arr), np.nanmax(arr)
            arr = np.nan_to_num(arr)
            scale = 255.0 if hi <= 1.0 and lo >= 0.0 else 255.0 / max(hi, 1e-12)
            notes.append("Floating-point image converted to 8 bits.")
        else:
            hi = arr.max()
            scale = 255.0 / 65535.0 if hi > 255 and hi <= 65535 else (255.0 / hi if hi > 65535 else 1.0)
            if hi > 255:
                notes.append("16-bit image converted to 8 bits.")
        g = np.clip(np.round(arr * scale), 0, 255).astype(np.uint8)
        return np.repeat(g[..., None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in im.info) \
            or (mode in ("L", "RGB") and "transparency" in im.info):
        rgba = im.convert("RGBA")
        alpha = np.asarray(rgba)[..., 3]
        if alpha.min() < 255:
            notes.append("Transparent areas were filled with white.")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(bg, rgba).convert("RGB"))
    if mode == "CMYK":
        notes.append("CMYK image converted to RGB.")
    try:
        out = im.convert("RGB")
    except (ValueError, OSError) as err:
        raise UploadError(f"Images in the {mode} colour mode are not supported ({_short(err)}).") from None
    return np.asarray(out)


# ---------------------------------------------------------------------------------------
# showing and saving (tensor <-> array: hub_models.images.rgb_to_tensor / tensor_to_rgb)
# ---------------------------------------------------------------------------------------
def nearest_upscale(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Enlarge with nearest-neighbour to (width, height): shows the LR pixels as blocks."""
    return np.asarray(Image.fromarray(rgb).resize(size, Image.NEAREST))


def save_png(rgb: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a lossless PNG and return its path."""
    path = Path(path)
    Image.fromarray(rgb).save(path, format="PNG", optimize=False, compress_level=6)
    return path
