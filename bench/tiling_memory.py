"""Peak memory against image size for tiled inference: each size in a fresh subprocess.

    python -m bench.tiling_memory                          # default rows, writes bench/results/tiling_memory.md
    python -m bench.tiling_memory --rows rafsr-x4:256 bicubic-x4:4000 --max-s 900

Each row runs `hub_models.upscale_image` on a random uint8 LR image of side N (the path of
`python -m hub_models upscale`: tiles written into a uint8 result) and reports the peak
resident set of the process (ru_maxrss, so model, imports and output all count), its
resident set before the call (imports + model + input) and the wall time. Rows with
`:whole` run the whole image in one pass (`model.upscale(x, tile=0)`), for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.report import Column, fixed, header_lines, row_line

OUT_MD = Path(__file__).resolve().parent / "results" / "tiling_memory.md"
DEFAULT_ROWS = ["rafsr-x4:128:whole", "rafsr-x4:256:whole", "rafsr-x4:256", "rafsr-x4:512",
                "bicubic-x4:1000", "bicubic-x4:2000", "bicubic-x4:4000"]

CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
import hub_models
name, side, whole = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
torch.set_num_threads(2)
model = hub_models.load(name)
rgb = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
def rss_mib():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024
before = rss_mib()
t = time.perf_counter()
if whole:
    out = model.upscale(hub_models.images.rgb_to_tensor(rgb), tile=0)
    size = tuple(out.shape[-2:])
else:
    out = hub_models.upscale_image(rgb, model=model)
    size = out.size[::-1]
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"before_mib": before, "peak_mib": peak, "seconds": seconds, "out": list(size),
                  "tile": 0 if whole or side <= model.tile_size else model.tile_size}))
"""


def measure(row: str, max_s: float) -> dict:
    name, side, *rest = row.split(":")
    whole = bool(rest and rest[0] == "whole")
    cmd = [sys.executable, "-c", CHILD, name, side, "1" if whole else "0"]
    t = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=max_s, env=dict(os.environ))
    except subprocess.TimeoutExpired:
        return {"row": row, "note": f"not finished within {max_s:.0f} s"}
    if done.returncode != 0:
        return {"row": row, "note": f"failed (exit {done.returncode}): {done.stderr.strip().splitlines()[-1][:120]}"}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result.update(row=row, wall=time.perf_counter() - t)
    return result


TABLE = [
    Column("name", "model"), Column("side", "LR side"), Column("out", "output"), Column("mode", "mode"),
    Column("tile", "tile (LR px)"), Column("before_mib", "before MiB", fixed(0)), Column("peak_mib", "peak MiB", fixed(0)),
    Column("seconds", "s", fixed(1)), Column("note", "note"),
]


def table_row(row: str, r: dict) -> dict:
    """The table's row of `measure(row)`'s result `r`."""
    name, side, *rest = row.split(":")
    mode = "whole image" if rest and rest[0] == "whole" else "tiled"
    if "peak_mib" not in r:
        return {"name": name, "side": side, "mode": mode, "note": r["note"]}
    if not r["tile"]:
        mode = "whole image" + ("" if rest else " (not above the tile size)")
    return {"name": name, "side": side, "out": "x".join(str(v) for v in r["out"]), "mode": mode,
            "tile": r["tile"] or "-", "before_mib": r["before_mib"], "peak_mib": r["peak_mib"], "seconds": r["seconds"]}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", nargs="+", default=DEFAULT_ROWS, help="MODEL:SIDE[:whole]")
    ap.add_argument("--max-s", type=float, default=900, help="time limit per row (s)")
    ap.add_argument("--out", default=str(OUT_MD))
    args = ap.parse_args(argv)
    lines = ["Peak memory of tiled inference against image size (`python -m bench.tiling_memory`): each row a fresh "
             "process upscaling a random uint8 LR image of the given side with `hub_models.upscale_image` (tiled, "
             "tiles written into the uint8 result) or, for `whole` rows, `model.upscale(x, tile=0)`. Peak = the process's "
             "ru_maxrss (imports, weights, input and output included); before = resident set before the call. "
             f"2 threads; machine: {os.cpu_count()} CPUs, shared with other jobs (times are pessimistic).", "",
             *header_lines(TABLE)]
    for row in args.rows:
        line = row_line(TABLE, table_row(row, measure(row, args.max_s)))
        print(line, flush=True)
        lines.append(line)
    Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
