"""How sharp is a folder of faces at a given size? Percentiles of the variance of the Laplacian.

    python -m train.sharpness ../shared/data/celeba_test1000/HR --size 128
    python -m train.sharpness ../shared/data/utkface --list val.txt --size 104 --crop 0.925

The training data's sharpness should match the benchmark's: SR trained on soft targets learns
to be soft. Each image is the centre square covering `--crop` of its shorter side, area-resized
to `--size` (the crops validation uses), scored on the grey image (`train.data.sharpness`).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from train.data import center_square, list_images, sharpness

PERCENTILES = (10, 30, 50, 70, 90)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="folder of images")
    p.add_argument("--list", help="file of image names inside the folder")
    p.add_argument("--size", type=int, default=128, help="side the centre square is resized to")
    p.add_argument("--crop", type=float, default=1.0, help="fraction of the shorter side the centre square covers")
    p.add_argument("--limit", type=int, help="only the first N images")
    args = p.parse_args(argv)
    try:
        paths = list_images(args.data, args.list)[: args.limit]
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    scores = []
    for path in paths:
        try:
            scores.append(sharpness(center_square(path, args.size, args.crop)))
        except FileNotFoundError as err:
            print(f"skipped: {err}", file=sys.stderr)
    if not scores:
        print("error: no readable image", file=sys.stderr)
        return 2
    values = np.percentile(scores, PERCENTILES)
    print(f"{args.data} ({len(scores)} images, centre {args.crop:g} of the shorter side at {args.size} px): "
          "variance of the Laplacian " + ", ".join(f"p{q} {v:.0f}" for q, v in zip(PERCENTILES, values)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
