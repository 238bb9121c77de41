"""Choose the tile size of the attention networks by measurement.

For each model and (tile, overlap) pair: Y-PSNR (DIC protocol) of tiled against whole-image
inference on CelebA test faces bicubic-upsampled to `--side` px (a large LR input), and the
seam ratio (mean absolute step across tile boundaries / mean step between neighbouring
columns and rows inside tiles; 1.0 = no seam visible in the statistics).

    python -m bench.tiling_tiles --images 4 --side 256 --models rafsr-x4 rdan-x4
    python -m bench.tiling_tiles --images 2 --side 160 --models crlnet-x4 --append
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import hub_models
from bench.report import Column, fixed, header_lines, metric, row_line
from hub_models import metrics
from hub_models.degradations import imresize
from hub_models.tiling import plan_tiles, receptive_radius

ROOT = Path(__file__).resolve().parent.parent
HR_DIR = ROOT.parent / "shared" / "data" / "celeba_test1000" / "HR"
OUT_MD = Path(__file__).resolve().parent / "results" / "tiling_tiles.md"
CONFIGS = [(48, 24), (64, 16), (64, 32), (96, 32), (128, 32)]


def faces(n: int, side: int) -> torch.Tensor:
    files = sorted(HR_DIR.glob("*.*"))[:n]
    imgs = [torch.from_numpy(np.array(Image.open(f).convert("RGB"))).permute(2, 0, 1).float() / 255 for f in files]
    return imresize(torch.stack(imgs), size=(side, side)).clamp(0, 1)


def seam_ratio(sr: torch.Tensor, lr_len: int, tile: int, overlap: int, scale: int) -> float:
    """Steps across the tile-grid boundaries (centre of each overlap) vs steps inside."""
    plan = plan_tiles(lr_len, lr_len, tile, overlap)
    cuts = sorted({(plan.xs[i] + tile - overlap // 2) * scale for i in range(len(plan.xs) - 1)})
    y = metrics.rgb_to_y(sr, quantize=False)
    col = (y[..., 1:] - y[..., :-1]).abs().mean(dim=(0, 1, 2))  # step between column c and c+1
    row = (y[..., 1:, :] - y[..., :-1, :]).abs().mean(dim=(0, 1, 3))
    if not cuts:
        return 1.0
    at = torch.stack([col[cuts].mean(), row[cuts].mean()]).mean()
    return float(at / torch.stack([col.mean(), row.mean()]).mean())


TABLE = [
    Column("name", "model"), Column("side", "LR side"), Column("images", "images"),
    Column("radius", "receptive radius bound (LR px)"), Column("tile", "tile"), Column("overlap", "overlap"),
    Column("psnr_y", "Y-PSNR tiled vs whole (dB)", metric("psnr_y")),
    Column("seam", "seam ratio", value=lambda r: f"{r['seam']:.3f} (whole: {r['seam_whole']:.3f})"),
    Column("s_whole", "s whole", fixed(1)), Column("s_tiled", "s tiled", fixed(1)),
]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["rafsr-x4", "rdan-x4"])
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--side", type=int, default=256, help="LR input side (faces upsampled to it)")
    ap.add_argument("--append", action="store_true")
    ap.add_argument("--configs", nargs="+", default=[f"{t}/{o}" for t, o in CONFIGS], help="TILE/OVERLAP pairs")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    lr = faces(args.images, args.side)
    lines = [] if args.append and OUT_MD.exists() else [
        "Tiled vs whole-image inference (`python -m bench.tiling_tiles`): Y-PSNR (DIC protocol) of the tiled result against the "
        "whole-image result, CelebA test faces (first N of celeba_test1000/HR) bicubic-upsampled to the LR side given; "
        "seam ratio = mean |step| across tile boundaries / mean |step| everywhere (1.0: no seam).", "",
        *header_lines(TABLE)]
    for name in args.models:
        model = hub_models.load(name)
        radius = receptive_radius(model)
        t = time.perf_counter()
        whole = torch.cat([model.upscale(lr[i:i + 1], tile=0) for i in range(len(lr))])
        t_whole = time.perf_counter() - t
        for tile, overlap in (map(int, c.split("/")) for c in args.configs):
            if tile >= args.side:
                continue
            t = time.perf_counter()
            tiled = torch.cat([model.upscale(lr[i:i + 1], tile=tile, overlap=overlap) for i in range(len(lr))])
            t_tiled = time.perf_counter() - t
            p = float(metrics.psnr(tiled, whole, scale=model.default_scale).mean())
            s = seam_ratio(tiled, args.side, tile, overlap, model.default_scale)
            s_whole = seam_ratio(whole, args.side, tile, overlap, model.default_scale)
            line = row_line(TABLE, {"name": name, "side": args.side, "images": len(lr), "radius": radius, "tile": tile,
                                    "overlap": overlap, "psnr_y": p, "seam": s, "seam_whole": s_whole,
                                    "s_whole": t_whole, "s_tiled": t_tiled})
            print(line, flush=True)
            lines.append(line)
    with OUT_MD.open("a" if args.append else "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
