"""Benchmarks: our models' quality side by side with the papers' own figures, and their
speed against the goal (one 128x128 face in <= 100 ms, batch 1) and the machine's limit.

    python -m bench                         # speed + quality, default suite -> bench/results/
    python -m bench --write-modes           # also store the chosen fast modes for upscale()
    python -m bench --part quality --data ~/faces --protocol sparnet --limit 200
    python -m bench --quick                 # tiny configs, seconds: checks the command works

Speed (`--part speed`, bench.speed), per architecture at its default config and default
scale, output 128x128 (LR 32 for x4, 16 for x8). Speed does not depend on the weights, so
untrained default-config models are timed (checkpoints whose config differs from the default
get a row of their own). Latency is the median wall time of `model.upscale(lr)` at batch 1
(bicubic pre-upsampling, padding, clamp included), throughput is images/s at batch 16,
GFLOPs come from `torch.utils.flop_counter.FlopCounterMode` (2 FLOPs per multiply-add,
bench.profiling). Peak memory (bench.timing): on CUDA `torch.cuda.max_memory_allocated` minus
the memory allocated before the call; on CPU the growth of the process's peak resident set
during one call (`/proc/self/clear_refs` resets VmHWM; glibc's mmap threshold is set to 64
KiB for that call so freed buffers leave the resident set): activations and workspaces, not
the weights. Each candidate mode (channels_last, bf16, torch.compile and their combinations)
is timed at batch 1; bf16/fp16 modes more than 3x slower than fp32 on a 32x32-output probe
are not timed at full size (recorded as such). One profiled run per model (torch.profiler)
says where the time goes: the "bound" column (bench.bounds). Cost against output size
(64..512) is timed where one run is estimated under `--scaling-max-s` seconds (GFLOPs are
counted for every size, on meta tensors).

Limit, engines, tiles, GPU (bench.sections): the dense-conv peak is measured in fp32 and bf16
(fp16 too on CUDA) and each model's FLOPs are set against the peak of the precision its
default mode runs in (`bench.peaks`); onnxruntime and OpenVINO run the exported network
against the default mode (`bench.backends`); a tiled job to 4096x4096 per model
(`bench.tiled`); on a CUDA machine bf16/fp16 eager and compiled (`bench.gpu`).

Modes: for each architecture, the fastest measured mode that is >= 5% faster than fp32 and
changes the mean Y-PSNR (against HR, `--protocol`) by < 0.05 dB (every eligible mode is
checked, bf16 included), stored under this machine's CPU class (`hub_models.machine.cpu_class`)
or GPU device type, on the first `--mode-images` images of the first dataset, with the
architecture's checkpoint when one exists (else the untrained default config: then the check
measures numeric drift only). torch.compile is timed but not eligible as a default unless
`--allow-compile-default`: its first call (and each new input size) costs 10-20 s of
compilation. `--write-modes` writes the choices into hub_models/inference_modes.json, which
`SRModel.upscale` reads (bench.modes).

Quality (`--part quality`, bench.quality): `hub_models.evaluation.evaluate_model` (the card
protocol) on each dataset of the suite: bicubic, then every shipped checkpoint
(`hub_models.list_checkpoints()`) at the dataset's scales it supports. A checkpoint's own
full-set result in its eval_results.json (same data folder, scale, protocol and image count)
is reused instead of recomputed (column `source`); `--recompute` forces. Evaluations share
`--quality-minutes`: one that would not fit runs on the first N images that fit (the `images`
column says so). The papers' own figures (each class's `paper_results`) are a separate table,
labelled "paper", next to ours on the matching test set where we have it (bench.papers).
Default suite: CelebA-1000 (x4, x8, all checkpoints), Set5 and Set14 (x4, bicubic and the
architectures whose paper reports them: RDAN). Images are read as RGB (a greyscale file, e.g.
Set14's bridge.png, is replicated to 3 channels; the table says how many) and mod-cropped to
the scale. `--data DIR` (repeatable, `NAME=DIR` to name it) replaces the suite by any folders
of HR faces, evaluated at `--scales`.

Outputs in `--out` (default bench/results/): benchmark.md (every table, the environment and
the command), speed.md, quality.md, speed.csv, modes.csv, bounds.csv, scaling.csv,
quality.csv, papers.csv, environment.json and inference_modes.json (the modes chosen by this
run). A run of one part keeps the other part's results in the folder (bench.environment).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import torch

from bench.datasets import default_suite, load_dataset, parse_data_args
from bench.environment import benchmark_markdown, run_environment, write_environment
from bench.quality import run_quality
from bench.speed_part import run_speed
from bench.timing import load_average
from hub_models import metrics
from hub_models.base import INFERENCE_MODES_FILE, normalize_inference_mode

DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", nargs="+", choices=["speed", "quality"], default=["speed", "quality"])
    p.add_argument("--models", nargs="+", help="architectures or checkpoint names (default: all)")
    p.add_argument("--data", action="append", help="folder of HR images, or NAME=FOLDER (repeatable; "
                   "replaces the default suite CelebA-1000 + Set5 + Set14)")
    p.add_argument("--scales", type=int, nargs="+", default=[4, 8], help="scales for face datasets (default 4 8)")
    p.add_argument("--protocol", default=metrics.DEFAULT_PROTOCOL, choices=sorted(metrics.PROTOCOLS))
    p.add_argument("--limit", type=int, help="only the first N images of each dataset")
    p.add_argument("--batch-size", type=int, default=32, help="evaluation batch size (LPIPS is the slow part)")
    p.add_argument("--quality-minutes", type=float, default=4.0,
                   help="time shared by the quality evaluations; one that does not fit runs on fewer images")
    p.add_argument("--recompute", action="store_true", help="do not reuse full-set results from model cards")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default bench/{DEFAULT_OUT.name}/)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's, here %d)" % torch.get_num_threads())
    p.add_argument("--size", type=int, default=128, help="output size for the speed table (default 128)")
    p.add_argument("--modes", nargs="+", help="candidate modes (default: per device type)")
    p.add_argument("--no-compile", action="store_true", help="do not time torch.compile modes")
    p.add_argument("--allow-compile-default", action="store_true", help="let a compile mode become a default")
    p.add_argument("--compile-max-ms", type=float, default=400.0,
                   help="time torch.compile only for models whose fp32 batch-1 run is faster than this")
    p.add_argument("--reps", type=int, default=7, help="timed repetitions (median; fewer when over --budget-s)")
    p.add_argument("--budget-s", type=float, default=4.0, help="seconds per timing measurement")
    p.add_argument("--scaling-sizes", type=int, nargs="+", default=[64, 128, 256, 512])
    p.add_argument("--scaling-max-s", type=float, default=5.0, help="skip sizes estimated slower than this per run")
    p.add_argument("--mode-images", type=int, default=32, help="images for the mode check (dPSNR)")
    p.add_argument("--write-modes", action="store_true", help="write the chosen modes into --modes-file")
    p.add_argument("--no-engines", action="store_true", help="do not time onnxruntime / OpenVINO")
    p.add_argument("--tiled-max-s", type=float, default=120.0, help="skip tiled jobs estimated slower than this")
    p.add_argument("--modes-file", type=Path, default=INFERENCE_MODES_FILE)
    p.add_argument("--quick", action="store_true",
                   help="tiny test configs, 1 repetition, small sizes, no compile: checks that the command works "
                        "(numbers meaningless)")
    return p


def parse_args(argv=None) -> argparse.Namespace:
    p = parser()
    args = p.parse_args(argv)
    if args.quick:
        args.reps, args.budget_s, args.size, args.no_compile = 1, 1.0, 32, True
        args.scaling_sizes, args.mode_images, args.limit = [32, 64], min(args.mode_images, 4), args.limit or 4
        args.quality_minutes = min(args.quality_minutes, 1.0)
        if args.write_modes and args.modes_file == INFERENCE_MODES_FILE:
            p.error("--quick uses tiny configs: its modes must not go into the shipped modes file "
                    "(give --modes-file elsewhere)")
    for mode in args.modes or []:
        normalize_inference_mode(mode)
    return args


def checkpoint_models(selected: set[str] | None, device: torch.device, log) -> list[tuple]:
    """(name, model) of every shipped checkpoint that loads (and is selected)."""
    import hub_models

    out = []
    for name in hub_models.list_checkpoints():
        try:
            model = hub_models.load(name, map_location=str(device)).eval()
        except Exception as err:
            log(f"  checkpoint {name}: cannot load ({type(err).__name__}: {err}); skipped")
            continue
        if selected and model.architecture not in selected and name not in selected:
            continue
        out.append((name, model))
    return out


def _architectures(selected: set[str] | None) -> list[str]:
    import hub_models

    archs = [a for a in hub_models.MODELS if not selected or a in selected]
    return ["bicubic", *archs] if selected and "bicubic" not in selected else archs  # the reference row


class Log:
    """Prints each line at once and keeps them."""

    def __init__(self):
        self.lines: list[str] = []

    def __call__(self, msg: str) -> None:
        print(msg, flush=True)
        self.lines.append(msg)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    out_dir = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    log = Log()
    selected = set(args.models) if args.models else None
    archs = _architectures(selected)
    datasets = parse_data_args(args.data, args.scales) if args.data else default_suite(args.scales)
    command = "python -m bench " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    env = run_environment(command, args, device)
    log(f"benchmark: {env['device_desc']}, {env['threads']} threads, load {env['load_start']}"
        + (" (QUICK: tiny configs, numbers meaningless)" if args.quick else ""))
    for ds in datasets:
        load_dataset(ds, args.limit)
        log(f"  data {ds.name}: {len(ds.images)} images from {ds.path}" + (f" ({ds.grey_note})" if ds.greyscale else ""))
    checkpoints = checkpoint_models(selected, device, log)
    log(f"  checkpoints: {', '.join(n for n, _ in checkpoints) or 'none yet'}")
    chosen_modes: dict[str, str] = {}
    if "speed" in args.part:
        chosen_modes = run_speed(args, env, archs, datasets, checkpoints, device, log)
    if "quality" in args.part:
        run_quality(args, env, archs, datasets, checkpoints, chosen_modes, log)
    env["load_end"] = load_average()
    env["seconds"] = round(time.perf_counter() - started, 1)
    env["checkpoints"] = [n for n, _ in checkpoints]
    env["datasets"] = [{"name": d.name, "path": str(d.path), "images": len(d.images), "scales": d.scales,
                        "greyscale": d.greyscale} for d in datasets]
    merged = write_environment(out_dir, env, args.part)
    (out_dir / "benchmark.md").write_text(benchmark_markdown(merged, out_dir))
    log(f"wrote {out_dir}/benchmark.md (+ csv) in {env['seconds']:.0f} s")
    return 0
