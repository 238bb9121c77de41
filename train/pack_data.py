"""Copy a training set into a byte budget, for the device tool (which carries 64 MiB in all).

    python -m train.pack_data ../shared/data/utkface data_cache/utkface --max-mb 32

Keeps the whole validation list (2.3 MB for UTKFace's 476; `--val-count N` keeps its first N: enough
for `--val-pick first`, not for `--val-pick sharpest`, which picks among all of them) and then the
sharpest training images (variance of the Laplacian, as `--drop-blurry` ranks them) until the budget is spent, byte for byte: no re-encoding, so the packed faces are the originals.
Writes `train.txt`, `val.txt` and `PACKED.txt` (the rule and the counts) next to them. Training
on the packed copy then drops its own `--drop-blurry` fraction of what is left, as it would on
the full set.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from train.data import laplacian_variance, list_images


def pack(src: Path, dst: Path, max_bytes: int, train_list: str = "train.txt", val_list: str = "val.txt",
         val_count: int | None = None) -> dict:
    """Copy val images then the sharpest train images into `dst` within `max_bytes`; return counts."""
    val = list_images(src, val_list)[:val_count]
    train = list_images(src, train_list)
    used = sum(p.stat().st_size for p in val)
    if used > max_bytes:
        raise ValueError(f"the {len(val)} validation images alone take {used / 1e6:.1f} MB > --max-mb")
    scores = {p: laplacian_variance(p) for p in train}
    readable = [p for p in train if scores[p] == scores[p]]  # nan = unreadable
    chosen = []
    for path in sorted(readable, key=scores.__getitem__, reverse=True):
        size = path.stat().st_size
        if used + size > max_bytes:
            break
        chosen.append(path)
        used += size
    if not chosen:
        raise ValueError("no training image fits in the budget")
    dst.mkdir(parents=True, exist_ok=True)
    for path in val + chosen:
        shutil.copy2(path, dst / path.name)
    order = {p: i for i, p in enumerate(train)}
    chosen.sort(key=order.__getitem__)  # the source list's order, as a full-set run sees it
    (dst / "train.txt").write_text("".join(p.name + "\n" for p in chosen))
    (dst / "val.txt").write_text("".join(p.name + "\n" for p in val))
    info = {"train": len(chosen), "of": len(train), "val": len(val), "mb": round(used / 1e6, 1)}
    (dst / "PACKED.txt").write_text(
        f"Packed from {src} by `python -m train.pack_data` (no re-encoding): the first {len(val)} images of {val_list}, "
        f"then the {len(chosen)} sharpest of {len(train)} images of {train_list} (variance of the Laplacian) "
        f"that fit in {max_bytes / 1e6:.0f} MB.\n")
    if (src / "SOURCE.txt").is_file():
        shutil.copy2(src / "SOURCE.txt", dst / "SOURCE.txt")
    return info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("src", type=Path)
    p.add_argument("dst", type=Path)
    p.add_argument("--max-mb", type=float, required=True, help="budget for the copied images, in MB (1e6 bytes)")
    p.add_argument("--train-list", default="train.txt")
    p.add_argument("--val-list", default="val.txt")
    p.add_argument("--val-count", type=int, help="keep only the first N validation images (default: all)")
    args = p.parse_args(argv)
    if args.dst.exists() and any(args.dst.iterdir()):
        print(f"{args.dst} is not empty: pack into a new folder", file=sys.stderr)
        return 2
    try:
        info = pack(args.src, args.dst, int(args.max_mb * 1e6), args.train_list, args.val_list, args.val_count)
    except (FileNotFoundError, ValueError) as err:
        print(f"pack_data: {err}", file=sys.stderr)
        return 2
    print(f"packed {info['train']} of {info['of']} training and {info['val']} validation images, "
          f"{info['mb']} MB, into {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
