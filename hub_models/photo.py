"""Photos in, photos out: the one helper for files, PIL images and uint8 arrays.

    import hub_models
    big = hub_models.upscale_image("photo.jpg", model="rafsr-x4")             # PIL.Image, x4
    big = hub_models.upscale_image(pil_image, model="rafsr-x4", faces=True)   # faces by the model, rest bicubic
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .images import ImageInputError, rgb_to_tensor, tensor_to_rgb

DEFAULT_MODEL = "rafsr-x4"


def read_image(source) -> np.ndarray:
    """A path, PIL image or uint8 (H, W, 3) / (H, W) array -> uint8 (H, W, 3) RGB.

    Files are turned upright by their EXIF orientation; transparency is flattened onto
    white. Raises ImageInputError saying what was wrong."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise ImageInputError(f"{path}: no such file")
        try:
            with Image.open(path) as im:
                im.load()
                return read_image(ImageOps.exif_transpose(im))
        except UnidentifiedImageError:
            raise ImageInputError(f"{path}: not an image file PIL can read (PNG, JPEG, WebP, BMP, TIFF, GIF ...)") from None
        except Image.DecompressionBombError as err:
            raise ImageInputError(f"{path}: {err}") from None
        except (OSError, SyntaxError, ValueError) as err:
            raise ImageInputError(f"{path}: damaged or truncated image ({str(err).splitlines()[0][:100]})") from None
    if isinstance(source, Image.Image):
        if source.mode in ("RGBA", "LA", "PA") or "transparency" in source.info:
            rgba = source.convert("RGBA")
            source = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
        return np.asarray(source.convert("RGB"))
    if isinstance(source, np.ndarray):
        if source.dtype != np.uint8:
            raise ImageInputError(f"arrays must be uint8 (0..255), got {source.dtype}; for floats in [0, 1] "
                                  "use (a * 255).round().astype(np.uint8), or pass a tensor to model.upscale")
        if source.ndim == 2:
            source = np.repeat(source[..., None], 3, axis=2)
        if source.ndim != 3 or source.shape[2] not in (3, 4):
            raise ImageInputError(f"arrays must be (H, W), (H, W, 3) or (H, W, 4), got shape {source.shape}")
        return np.ascontiguousarray(source[..., :3])
    raise ImageInputError(f"expected a file path, a PIL image or a uint8 array, got {type(source).__name__}")


def upscale_image(image, model=DEFAULT_MODEL, scale: int | None = None, faces: bool = False,
                  progress: Callable[[int, int], None] | None = None) -> Image.Image:
    """Upscale a photo (path, PIL image or uint8 array) and return a PIL RGB image.

    model: an SRModel or a name for `hub_models.load` (default "rafsr-x4"); scale: the
    model's default when None. faces=False runs the whole image through the model (tiled
    when large); faces=True upscales each detected face with the model and the rest with
    bicubic (`hub_models.faces.upscale_faces`). progress(done, total) as in `upscale`."""
    from . import registry

    rgb = read_image(image)
    model = registry.load(model) if isinstance(model, (str, os.PathLike)) else model
    if faces:
        from .faces import upscale_faces

        out, _ = upscale_faces(rgb, model, scale, progress=progress)
        return Image.fromarray(out)
    scale = model._resolve_scale(scale)
    h, w = rgb.shape[:2]
    if not model.tile_size or max(h, w) <= model.tile_size:
        return Image.fromarray(tensor_to_rgb(model.upscale(rgb_to_tensor(rgb), scale, progress=progress)))
    from .tiling import default_overlap, upscale_tiled

    # large: tiles are written straight into the uint8 result (no float copy of the output)
    out = np.empty((h * scale, w * scale, 3), np.uint8)
    upscale_tiled(model, rgb_to_tensor(rgb), model.tile_size, default_overlap(model, model.tile_size, scale),
                  model.tile_batch, progress, scale=scale, out=torch.from_numpy(out).permute(2, 0, 1)[None])
    return Image.fromarray(out)
