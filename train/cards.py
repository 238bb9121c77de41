"""Regenerate the shipped model cards with the project's card code, with their example images.

    python -m train.cards                 # every checkpoint under checkpoints/
    python -m train.cards rafsr-x4 mffcn  # some of them

For each checkpoint: examples/{input,bicubic,output,original}.png from one CelebA test face
(`EXAMPLE_FACE`, 128 px; input = its antialiased bicubic downscale at the model's default scale,
quantised to 8 bits as in the evaluation), then README.md and LICENSE.md rewritten from the
folder's training.json and eval_results.json (`train.evaluate.rewrite_card`). No metric is
measured here: the card's numbers are the evaluation command's records.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import torch

import hub_models
from hub_models.degradations import bicubic_lr_8bit, mod_crop
from hub_models.registry import CHECKPOINT_DIR
from hub_models.evaluation import read_rgb
from train.evaluate import rewrite_card

EXAMPLE_FACE = Path(__file__).resolve().parent.parent / "demo" / "examples" / "celeba_201606.jpg"


def png_bytes(image: torch.Tensor) -> bytes:
    """(3,H,W) float in [0,1] -> PNG file bytes."""
    from PIL import Image

    array = image.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).contiguous().numpy()
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


@torch.no_grad()
def example_images(model, face: Path = EXAMPLE_FACE, scale: int | None = None) -> dict[str, bytes]:
    """{"examples/input.png": ..., "examples/bicubic.png": ..., "examples/output.png": ...,
    "examples/original.png": ...} for `face` at `scale` (default: the model's)."""
    scale = scale or model.default_scale
    hr = torch.from_numpy(read_rgb(face)).permute(2, 0, 1).float().div(255)
    hr = mod_crop(hr.unsqueeze(0), scale)
    lr = bicubic_lr_8bit(hr, scale)
    images = {"input": lr, "bicubic": hub_models.create("bicubic", scale=scale).upscale(lr, scale=scale),
              "output": model.upscale(lr, scale=scale), "original": hr}
    return {f"examples/{name}.png": png_bytes(image[0]) for name, image in images.items()}


def write_examples(folder: Path, model=None) -> list[Path]:
    """Write the example images into `folder` (a model folder); returns their paths."""
    folder = Path(folder)
    model = model or hub_models.load(folder)
    written = []
    for rel, data in example_images(model).items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
        written.append(folder / rel)
    return written


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", help="checkpoint names (default: all under checkpoints/)")
    p.add_argument("--no-examples", action="store_true", help="only rewrite the cards, keep the images")
    args = p.parse_args(argv)
    for name in args.names or hub_models.list_checkpoints():
        folder = CHECKPOINT_DIR / name
        model = hub_models.load(folder)
        if not args.no_examples:
            write_examples(folder, model)
        rewrite_card(folder, model)
        print(f"card rewritten: {folder / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
