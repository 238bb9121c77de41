"""How sharp is a folder of faces at a given size? Percentiles of the variance of the Laplacian.

    python -m train.sharpness ../shared/data/celeba_test1000/HR --size 128
    python -m train.sharpness ../shared/data/utkface --list val.txt --size 104 --crop 0.925
    python -m train.sharpness ../shared/data/utkface --list val.txt --size 104 --crop 0.925 \
        --export runs/utk-val-sharp64 --count 64        # the crops `--val-pick sharpest` validates on

The training data's sharpness should match the benchmark's: SR trained on soft targets learns
to be soft. Each image is the centre square covering `--crop` of its shorter side, area-resized
to `--size` (the crops validation uses), scored on the grey image (`train.data.sharpness`).
`--export DIR` writes the `--count` sharpest (or `--pick first`) crops as PNG (lossless), a folder
`train.evaluate` measures checkpoints on: the validation set of `train.py --val-pick sharpest`,
outside training.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from train.data import center_square, list_images, sharpest, sharpness

PERCENTILES = (10, 30, 50, 70, 90)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="folder of images")
    p.add_argument("--list", help="file of image names inside the folder")
    p.add_argument("--size", type=int, default=128, help="side the centre square is resized to")
    p.add_argument("--crop", type=float, default=1.0, help="fraction of the shorter side the centre square covers")
    p.add_argument("--limit", type=int, help="only the first N images")
    p.add_argument("--export", help="write the --count sharpest crops into this (new or empty) folder as PNG")
    p.add_argument("--count", type=int, default=64, help="how many crops --export writes")
    p.add_argument("--pick", choices=["sharpest", "first"], default="sharpest",
                   help="which crops --export writes: the sharpest, or the list's first (train.py's --val-pick)")
    args = p.parse_args(argv)
    try:
        paths = list_images(args.data, args.list)[: args.limit]
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.export and Path(args.export).exists() and any(Path(args.export).iterdir()):
        print(f"error: --export {args.export} is not empty", file=sys.stderr)
        return 2
    crops, names = [], []
    for path in paths:
        try:
            crops.append(center_square(path, args.size, args.crop))
            names.append(path.name)
        except FileNotFoundError as err:
            print(f"skipped: {err}", file=sys.stderr)
    if not crops:
        print("error: no readable image", file=sys.stderr)
        return 2
    scores = [sharpness(c) for c in crops]
    values = np.percentile(scores, PERCENTILES)
    print(f"{args.data} ({len(scores)} images, centre {args.crop:g} of the shorter side at {args.size} px): "
          "variance of the Laplacian " + ", ".join(f"p{q} {v:.0f}" for q, v in zip(PERCENTILES, values)))
    if args.export:
        out = Path(args.export)
        out.mkdir(parents=True, exist_ok=True)
        order = sharpest(scores, args.count) if args.pick == "sharpest" else range(min(args.count, len(crops)))
        for rank, i in enumerate(order):  # rank first: unique names, in pick order
            name = f"{rank:04d}_{names[i].split('.')[0]}.png"
            cv2.imwrite(str(out / name), np.ascontiguousarray(crops[i].transpose(1, 2, 0)[..., ::-1]))
        print(f"wrote {args.pick} {len(order)} crops to {out} "
              f"(variance of the Laplacian >= {min(scores[i] for i in order):.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
