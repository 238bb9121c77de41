"""Benchmarks: our models' quality side by side with the papers' own figures, and their
speed against the goal (one 128x128 face in <= 100 ms, batch 1) and the machine's limit.

    python -m bench                         # speed + quality, default suite -> bench/
    python -m bench --write-modes           # also store the chosen fast modes for upscale()
    python -m bench --part quality --data ~/faces --protocol sparnet --limit 200
    python -m bench --quick                 # tiny configs, seconds: checks the command works

Speed (`--part speed`), per architecture at its default config and default scale, output
128x128 (LR 32 for x4, 16 for x8). Speed does not depend on the weights, so untrained
default-config models are timed (checkpoints whose config differs from the default get a row
of their own). Latency is the median wall time of `model.upscale(lr)` at batch 1 (bicubic
pre-upsampling, padding, clamp included), throughput is images/s at batch 16, GFLOPs come
from `torch.utils.flop_counter.FlopCounterMode` (2 FLOPs per multiply-add). Peak memory:
on CUDA `torch.cuda.max_memory_allocated` minus the memory allocated before the call; on
CPU the growth of the process's peak resident set during one call (`/proc/self/clear_refs`
resets VmHWM; glibc's mmap threshold is set to 64 KiB for that call so freed buffers leave
the resident set): activations and workspaces, not the weights. Each candidate mode
(channels_last, bf16, torch.compile and their combinations) is timed at batch 1; bf16/fp16 modes more
than 1.5x slower than fp32 on a 32x32-output probe are not timed at full size (recorded as
such). The machine's dense-conv peak is measured with a 3x3 conv 256->256 at 64x64
(fp32 channels_last, best of N); "% of peak" is the model's achieved GFLOP/s against it.
One profiled run per model (torch.profiler) says where the time goes: the "bound" column.
Cost against output size (64..512) is timed where one run is estimated under
`--scaling-max-s` seconds (GFLOPs are counted for every size, on meta tensors).

Limit, engines, tiles, GPU (modules of the `bench` package): the dense-conv peak is measured in
fp32 and bf16 (fp16 too on CUDA) and each model's FLOPs are set against the peak of the
precision its default mode runs in (`bench.peaks`); onnxruntime and OpenVINO run the exported
network against the default mode (`bench.backends`); a tiled job to 4096x4096 per model
(`bench.tiled`); on a CUDA machine bf16/fp16 eager and compiled (`bench.gpu`).

Modes: for each architecture, the fastest measured mode that is >= 5% faster than fp32 and
changes the mean Y-PSNR (against HR, `--protocol`) by < 0.05 dB (every eligible mode is
checked, bf16 included), stored under this machine's CPU class (`hub_models.machine.cpu_class`)
or GPU device type, on the first
`--mode-images` images of the first dataset, with the architecture's checkpoint when one
exists (else the untrained default config: then the check measures numeric drift only).
torch.compile is timed but not eligible as a default unless `--allow-compile-default`: its
first call (and each new input size) costs 10-20 s of compilation. `--write-modes` writes
the choices into hub_models/inference_modes.json, which `SRModel.upscale` reads.

Quality (`--part quality`): `train.evaluate.evaluate_model` (the function the model cards
use) on each dataset of the suite: bicubic, then every shipped checkpoint
(`hub_models.list_checkpoints()`) at the dataset's scales it supports. A checkpoint's own
full-set result in its eval_results.json (same data folder, scale, protocol and image
count) is reused instead of recomputed (column `source`); `--recompute` forces. Evaluations
share `--quality-minutes`: one that would not fit runs on the first N images that fit (the
`images` column says so). The papers' own figures (each class's `paper_results`) are a
separate table, labelled "paper", next to ours on the matching test set where we have it.
Default suite: CelebA-1000 (x4, x8, all checkpoints), Set5 and Set14 (x4, bicubic and the
architectures whose paper reports them: RDAN). Images are read as RGB (a greyscale file,
e.g. Set14's bridge.png, is replicated to 3 channels; the table says how many) and
mod-cropped to the scale. `--data DIR` (repeatable, `NAME=DIR` to name it) replaces the
suite by any folders of HR faces, evaluated at `--scales`.

Outputs in `--out` (default bench/): benchmark.md (every table, the environment and the
command), speed.md, quality.md, speed.csv, modes.csv, bounds.csv, scaling.csv, quality.csv,
papers.csv, environment.json and inference_modes.json (the modes chosen by this run).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import ctypes
import json
import math
import os
import shlex
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

import hub_models
from hub_models import metrics
from bench import backends as bench_backends
from bench import gpu as bench_gpu
from bench import modes as bench_modes
from bench import peaks as bench_peaks
from bench import tiled as bench_tiled
from hub_models.base import INFERENCE_MODES_FILE, mode_key, normalize_inference_mode
from hub_models.degradations import bicubic_degrade, mod_crop
from train.data import IMAGE_SUFFIXES, list_images
from train.evaluate import evaluate_model, load_hr
from train.hardware import cpu_model_name

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("FACESR_SHARED", REPO.parent / "shared"))
DEFAULT_OUT = REPO / "bench" / "results"

GOAL_MS = 100.0  # the goal: one 128x128 face, batch 1, median
MAX_DPSNR = 0.05  # a fast mode may cost less than this (dB, Y-PSNR) against fp32
MIN_SPEEDUP = 1.05  # ... and must be at least this much faster to be worth it
PROBE_SLOWDOWN = 1.5  # modes this much slower than fp32 on the probe are not timed at full size
CPU_MODES = ["fp32", "channels_last", "bf16", "bf16+channels_last", "compile+channels_last"]
CUDA_MODES = ["fp32", "channels_last", "bf16", "bf16+channels_last", "fp16", "fp16+channels_last",
              "compile+channels_last"]
SPEED_COLUMNS = [
    "model", "weights", "scale", "input", "output", "params_m", "gflops",
    "fp32_ms", "fp32_img_s_b16", "fp32_peak_mib", "fastest_mode", "fastest_ms",
    "default_mode", "default_ms", "default_img_s_b16", "default_peak_mib", "x_bicubic",
    "gflop_s", "pct_peak", "goal_100ms", "bound",
]
MODE_COLUMNS = ["model", "mode", "ms_b1", "vs_fp32", "compile_s", "max_abs_diff", "dpsnr_y",
                "fidelity_psnr_y", "images", "eligible", "chosen", "note"]
BOUND_COLUMNS = ["model", "mode", "ms", "gflops", "gflop_s", "pct_peak", "ms_at_peak", "conv_pct",
                 "conv_gflop_s", "matmul_pct", "elementwise_pct", "norm_pct", "reduce_pool_pct",
                 "memory_pct", "resize_pct", "softmax_pct", "other_pct", "top_ops", "verdict"]
SCALING_COLUMNS = ["model", "mode", "output", "input", "gflops", "ms", "peak_mib", "ms_per_mpix", "note"]
QUALITY_COLUMNS = ["model", "architecture", "weights", "dataset", "scale", "protocol", "images",
                   "psnr_y", "ssim_y", "psnr_rgb", "lpips", "bicubic_psnr_y", "bicubic_ssim_y",
                   "bicubic_lpips", "gain_psnr_y", "mode", "seconds", "source", "note"]
PAPER_COLUMNS = ["architecture", "paper_dataset", "scale", "method", "paper_psnr_y", "paper_ssim_y",
                 "paper_lpips", "ours_model", "ours_dataset", "ours_images", "ours_psnr_y",
                 "ours_ssim_y", "ours_lpips", "note"]


# ---------------------------------------------------------------------------------------
# measuring
# ---------------------------------------------------------------------------------------
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_once(fn: Callable[[], Any], device: torch.device) -> float:
    """Seconds of one call: CUDA events on a GPU, perf_counter (after sync) elsewhere."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        _sync(device)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure(fn: Callable[[], Any], device: torch.device, reps: int, budget_s: float,
            warmup: int = 1) -> dict:
    """Median/min seconds over up to `reps` timed calls after `warmup` calls, stopping once
    `budget_s` is spent (at least one timed call)."""
    first = None
    for i in range(warmup):
        t = time_once(fn, device)
        first = t if first is None else first
    times: list[float] = []
    spent = 0.0
    while len(times) < reps and (not times or spent + statistics.median(times) <= budget_s):
        t = time_once(fn, device)
        times.append(t)
        spent += t
    return {"median_s": statistics.median(times), "min_s": min(times), "runs": len(times),
            "first_s": first if first is not None else times[0]}


_LIBC = None


def _libc():
    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL("libc.so.6")
        except OSError:
            _LIBC = False
    return _LIBC


def _mallopt_mmap_threshold(nbytes: int) -> bool:
    libc = _libc()
    return bool(libc and libc.mallopt(-3, int(nbytes)))  # M_MMAP_THRESHOLD


def _malloc_trim() -> None:
    libc = _libc()
    if libc:
        libc.malloc_trim(0)  # give free heap pages back: reusing them shows up as growth again


def _proc_status_kib(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


class MemoryProbe:
    """Peak extra memory of one call (MiB): CUDA allocator peak on a GPU; on Linux CPUs the
    growth of VmHWM after resetting it through /proc/self/clear_refs."""

    def __init__(self, device: torch.device):
        self.device = device
        self.cpu_ok = False
        if device.type == "cpu":
            try:
                Path("/proc/self/clear_refs").write_text("5")
                self.cpu_ok = _proc_status_kib("VmHWM") is not None
            except OSError:
                self.cpu_ok = False
        if device.type == "cuda":
            self.method = "torch.cuda.max_memory_allocated minus memory allocated before the call"
        elif self.cpu_ok:
            self.method = ("peak resident-set growth during one call (Linux VmHWM reset via /proc/self/clear_refs, "
                           "after malloc_trim and with glibc's mmap threshold at 64 KiB during the call, so freed "
                           "buffers leave the resident set): activations and workspaces, weights excluded")
        else:
            self.method = "unavailable on this platform"

    def run(self, fn: Callable[[], Any]) -> float | None:
        if self.device.type == "cuda":
            _sync(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            base = torch.cuda.memory_allocated(self.device)
            fn()
            _sync(self.device)
            return (torch.cuda.max_memory_allocated(self.device) - base) / 2**20
        if not self.cpu_ok:
            fn()
            return None
        _malloc_trim()
        _mallopt_mmap_threshold(64 * 1024)
        try:
            base = _proc_status_kib("VmRSS")
            Path("/proc/self/clear_refs").write_text("5")
            fn()
            peak = _proc_status_kib("VmHWM")
        finally:
            _mallopt_mmap_threshold(32 * 2**20)  # glibc's largest dynamic threshold
        return max(0.0, (peak - base) / 1024) if base is not None and peak is not None else None


# ---------------------------------------------------------------------------------------
# FLOPs and where the time goes
# ---------------------------------------------------------------------------------------
def _config(model) -> dict:
    config = dict(getattr(model, "_hub_mixin_config", None) or {})
    config.pop("architecture", None)
    return config


def count_flops(model, lr_size: int, scale: int, batch: int = 1) -> dict:
    """FLOPs of `upscale` for a (batch,3,lr,lr) input, by aten op, on meta tensors when the
    model can be built there (no compute), else by running it."""
    from torch.utils.flop_counter import FlopCounterMode

    def run(m, x):
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            m.network_forward(m.prepare_input(x, scale), scale)
        return fc

    try:
        with torch.device("meta"):
            meta_model = type(model)(**_config(model))
        fc = run(meta_model.eval(), torch.empty(batch, 3, lr_size, lr_size, device="meta"))
    except Exception:  # a model that needs real values somewhere: count on a real run
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        fc = run(model, torch.rand(batch, 3, lr_size, lr_size, device=device))
    by_op = {str(k): int(v) for k, v in fc.get_flop_counts().get("Global", {}).items()}
    return {"total": int(fc.get_total_flops()), "by_op": by_op}


_CATEGORIES = [
    ("conv", ("convolution", "conv2d", "conv_depthwise", "_slow_conv", "thnn_conv")),
    ("softmax", ("softmax",)),
    ("matmul", ("::mm", "bmm", "addmm", "matmul", "linear", "baddbmm", "scaled_dot_product")),
    ("norm", ("batch_norm", "layer_norm", "group_norm", "instance_norm", "native_norm")),
    ("resize", ("upsample", "interpolate", "grid_sampler", "pixel_shuffle", "pixel_unshuffle")),
    ("reduce_pool", ("pool", "amax", "amin", "::max", "::min", "::mean", "::sum", "::var", "::std",
                     "::all", "::any", "::norm")),
    ("memory", ("copy_", "clone", "as_strided", "contiguous", "::cat", "stack", "pad", "index", "gather", "scatter",
                "repeat", "expand", "to_dense", "::to", "_to_copy", "fill_", "zero_", "empty", "roll",
                "flip")),
    ("elementwise", ("add", "sub", "mul", "div", "relu", "sigmoid", "tanh", "prelu", "gelu", "silu",
                     "clamp", "threshold", "exp", "log", "sqrt", "rsqrt", "pow", "where", "abs", "neg",
                     "hardtanh", "leaky", "elu", "isfinite", "isinf", "isnan", "isneginf", "round",
                     "lerp", "addcmul", "eq", "ne", "lt", "gt", "le", "ge", "bitwise", "logical")),
]


def _category(name: str) -> str:
    lowered = name.lower()
    if "convolution_backward" in lowered:
        return "other"
    for cat, keys in _CATEGORIES:
        if any(k in lowered for k in keys):
            return cat
    return "other"


class _ConvRecorder(torch.utils._python_dispatch.TorchDispatchMode):
    """Records the FLOPs per call and the number of calls of each convolution, by
    (input shape, weight shape)."""

    def __init__(self):
        super().__init__()
        self.flops: dict[tuple, int] = {}
        self.calls: dict[tuple, int] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func._overloadpacket is torch.ops.aten.convolution:
            x, w = args[0], args[1]
            transposed = bool(args[6]) if len(args) > 6 else False
            per_out = w.shape[0] * math.prod(w.shape[2:]) if transposed else math.prod(w.shape[1:])
            flops = 2 * (x.numel() if transposed else out.numel()) * per_out
            key = (tuple(x.shape), tuple(w.shape))
            self.flops[key] = flops
            self.calls[key] = self.calls.get(key, 0) + 1
        return out


def _describe_conv(shapes: list, recorder: _ConvRecorder) -> tuple[str, int | None]:
    """A conv's label (kernel, channels, input size) and its FLOPs over all its calls."""
    x, w = (shapes + [[], []])[:2]
    if len(x) == 4 and len(w) == 4:
        groups = x[1] // w[1] if w[1] else 1
        label = f"conv{w[2]}x{w[3]} {x[1]}->{w[0]}" + (f" g{groups}" if groups > 1 else "") + f" @{x[2]}x{x[3]}"
        key = (tuple(x), tuple(w))
        return label, recorder.flops[key] * recorder.calls[key] if key in recorder.flops else None
    return "conv", None


@contextlib.contextmanager
def _quiet_fds():
    """Silence what C++ writes to fds 1 and 2 (the profiler's start/stop lines)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def profile_ops(model, lr: torch.Tensor, scale: int, device: torch.device) -> dict:
    """One profiled `upscale` call: the share of time per op category (the bicubic
    pre-upsampling of `prepare_input` counted as "resize"), the convs' GFLOP/s, and the top
    op groups (label, % of time, GFLOP/s where known)."""
    from torch.profiler import ProfilerActivity, profile

    recorder = _ConvRecorder()
    with recorder:
        model.upscale(lr, scale=scale)
    model.upscale(lr, scale=scale)  # warm
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with _quiet_fds(), profile(activities=activities, record_shapes=True) as prof:
        model.upscale(lr, scale=scale)
        _sync(device)
    cuda = device.type == "cuda"
    events = list(prof.events())
    prepare = [(e.time_range.start, e.time_range.end, e.thread) for e in events if e.name == "facesr::prepare_input"]
    groups: dict[tuple, list] = {}
    for e in events:
        us = float(e.self_device_time_total if cuda else e.self_cpu_time_total)
        if us <= 0 or e.name.startswith("facesr::"):
            continue
        in_prepare = any(a <= e.time_range.start and e.time_range.end <= b and t == e.thread for a, b, t in prepare)
        shapes = [list(s) for s in (e.input_shapes or [])]
        key = (e.name, str(shapes), in_prepare)
        g = groups.setdefault(key, [0.0, 0, e.name, shapes, in_prepare])
        g[0] += us
        g[1] += 1
    total_us = sum(g[0] for g in groups.values()) or 1.0
    share: dict[str, float] = {}
    convs: dict[str, list] = {}  # label -> [us over conv2d/convolution/backend ops, flops of all calls]
    rows = []
    for us, count, name, shapes, in_prepare in groups.values():
        cat = "resize" if in_prepare else _category(name)
        share[cat] = share.get(cat, 0.0) + us
        label = name.replace("aten::", "")
        if in_prepare:
            label = "bicubic pre-upsampling (" + label + ")"
        elif cat == "conv":
            label, f = _describe_conv(shapes, recorder)
            c = convs.setdefault(label, [0.0, f])
            c[0] += us
            continue
        else:
            dims = [d for d in shapes if d]
            if dims:
                label += " " + "x".join(str(d) for d in dims[0])
        rows.append((us, label, cat, None))
    conv_us = conv_flops = 0.0
    for label, (us, f) in convs.items():
        rows.append((us, label, "conv", f / (us * 1e-6) / 1e9 if f else None))
        if f:
            conv_us += us
            conv_flops += f
    # one line per pre-upsampling, however many ops it took
    pre = [r for r in rows if r[2] == "resize" and r[1].startswith("bicubic pre-upsampling")]
    rows = [r for r in rows if r not in pre]
    if pre:
        rows.append((sum(r[0] for r in pre), "bicubic pre-upsampling", "resize", None))
    rows.sort(key=lambda r: -r[0])
    top = [f"{label} {100 * us / total_us:.0f}%" + (f" ({g:.1f} GFLOP/s)" if g else "")
           for us, label, cat, g in rows[:4]]
    return {
        "share": {k: 100 * v / total_us for k, v in share.items()},
        "conv_gflop_s": conv_flops / (conv_us * 1e-6) / 1e9 if conv_us else None,
        "top": top,
        "rows": rows,
        "total_ms": total_us / 1000,
    }


# ---------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------
@dataclass
class Dataset:
    name: str
    path: Path
    scales: list[int]
    archs: set[str] | None = None  # None: every architecture
    note: str = ""
    images: list[torch.Tensor] = field(default_factory=list)
    greyscale: int = 0
    grey_note: str = ""


def list_dataset_images(folder: Path) -> list[Path]:
    """Images directly in `folder` when there are any (Set5/Set14 keep greyscale copies in
    gray/, which must not count), else every image below it."""
    top = sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    return top or list_images(folder)


def default_suite(scales: list[int]) -> list[Dataset]:
    general = {"bicubic"} | {
        name for name, cls in hub_models.MODELS.items()
        if any("set5" in str(r.get("dataset", "")).lower() or "set14" in str(r.get("dataset", "")).lower()
               for r in cls.paper_results)
    }
    data = SHARED / "data"
    suite = [Dataset("CelebA-1000", data / "celeba_test1000" / "HR", scales)]
    for name in ("Set5", "Set14"):
        suite.append(Dataset(name, data / name.lower(), [4], archs=general,
                             note="general SR sets (not faces): bicubic and the architectures whose paper reports them"))
    return [d for d in suite if d.path.is_dir()]


def parse_data_args(values: list[str], scales: list[int]) -> list[Dataset]:
    out = []
    for value in values:
        name, _, path = value.partition("=") if "=" in value and "/" not in value.split("=", 1)[0] else ("", "", value)
        path = Path(path).expanduser()
        if not path.is_dir():
            raise SystemExit(f"--data {path} is not a folder")
        name = name or (path.parent.name if path.name.lower() in ("hr", "gt") else path.name)
        out.append(Dataset(name, path, scales))
    return out


def load_dataset(ds: Dataset, limit: int | None) -> Dataset:
    import cv2

    paths = list_dataset_images(ds.path)[:limit]
    ds.images = load_hr(paths)  # OpenCV reads every file as 3-channel colour
    grey = [p for p, im in zip(paths, ds.images) if torch.equal(im[0], im[1]) and torch.equal(im[1], im[2])]
    ds.greyscale = len(grey)
    single = [p.name for p in grey if (cv2.imread(str(p), cv2.IMREAD_UNCHANGED) is not None
                                       and cv2.imread(str(p), cv2.IMREAD_UNCHANGED).ndim == 2)]
    stored_rgb = [p.name for p in grey if p.name not in single]
    parts = ([f"{', '.join(single[:3])} single-channel, replicated to RGB"] if single else []) + \
            ([f"{', '.join(stored_rgb[:3])} stored as RGB with equal channels"] if stored_rgb else [])
    ds.grey_note = f"{ds.greyscale} greyscale image(s): " + "; ".join(parts) if grey else ""
    return ds


def synthetic_faces(n: int, size: int, seed: int = 0) -> list[torch.Tensor]:
    """Smooth random images (no data available): enough to measure numeric drift of a mode."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, max(2, size // 8), max(2, size // 8), generator=g)
    hr = torch.nn.functional.interpolate(low, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
    return list(hr)


# ---------------------------------------------------------------------------------------
# speed
# ---------------------------------------------------------------------------------------
@dataclass
class Context:
    device: torch.device
    quick: bool
    out_size: int
    reps: int
    budget_s: float
    b16: int
    modes: list[str]
    compile_ok: bool
    compile_max_ms: float
    allow_compile_default: bool
    scaling_sizes: list[int]
    scaling_max_s: float
    mode_images: int
    mode_budget_s: float
    protocol: str
    peak: dict
    memory: MemoryProbe
    mode_data: list[torch.Tensor]
    mode_data_note: str
    peaks: dict = field(default_factory=dict)  # {precision: peak}, bench.peaks.conv_peaks

    def peak_of(self, mode: str) -> dict:
        """The measured conv peak of the precision `mode` runs in (fp32's where not measured)."""
        return self.peaks.get(bench_peaks.precision_of(mode), self.peak)


def _fmt(v, digits=1):
    if v is None or v == "":
        return ""
    if isinstance(v, float):
        if math.isinf(v) or math.isnan(v):
            return str(v)
        return f"{v:.{digits}f}"
    return str(v)


def _mib(v) -> str:
    return "" if v is None else (f"{v:.1f}" if v < 10 else f"{v:.0f}")


def mode_drift(model, mode: str, ctx: Context, fp32_cache: dict, fp32_s_per_image: float) -> dict:
    """Mean Y-PSNR change (mode minus fp32, against HR) on the mode-check images, the Y-PSNR
    of the mode's output against fp32's output, and the largest absolute difference."""
    scale = model.default_scale
    per_image = max(fp32_s_per_image, 1e-4)
    n = int(min(ctx.mode_images, max(2, ctx.mode_budget_s / (2 * per_image))))
    images = [mod_crop(im.unsqueeze(0), scale)[0] for im in ctx.mode_data]
    images = [im for im in images if im.shape == images[0].shape][:n]
    hr = torch.stack(images)
    lr = bicubic_degrade(hr, scale, quantize=True)

    def run(m: str) -> torch.Tensor:
        model.inference_mode = m
        return torch.cat([model.upscale(chunk.to(ctx.device), scale=scale).cpu() for chunk in lr.split(8)])

    key = (id(model), len(images))
    if key not in fp32_cache:
        sr32 = run("fp32")
        fp32_cache[key] = (sr32, metrics.psnr(sr32, hr, protocol=ctx.protocol, scale=scale).mean().item())
    sr32, p32 = fp32_cache[key]
    sr = run(mode)
    p = metrics.psnr(sr, hr, protocol=ctx.protocol, scale=scale).mean().item()
    fidelity = metrics.psnr(sr, sr32, protocol=ctx.protocol, scale=scale).mean().item()
    return {"dpsnr_y": p - p32, "fidelity_psnr_y": fidelity, "max_abs_diff": (sr - sr32).abs().max().item(),
            "images": len(images)}


def speed_subject(label: str, model, weights: str, ctx: Context, drift_model=None,
                  forced_mode: str | None = None) -> dict:
    """Everything the speed tables say about one model: FLOPs, per-mode latency, the chosen
    mode (unless `forced_mode`), throughput and memory, where the time goes, scaling."""
    device = ctx.device
    scale = model.default_scale
    if ctx.out_size % scale:
        raise ValueError(f"output {ctx.out_size} is not a multiple of the scale {scale}")
    lr_size = ctx.out_size // scale
    for m in (model, drift_model):  # PyTorch's modes are measured here, other engines in bench.backends
        if m is not None:
            m.inference_backend = "torch"
    g = torch.Generator().manual_seed(0)
    lr1 = torch.rand(1, 3, lr_size, lr_size, generator=g).to(device)
    lr16 = torch.rand(ctx.b16, 3, lr_size, lr_size, generator=g).to(device)
    params = sum(p.numel() for p in model.parameters())
    flops = count_flops(model, lr_size, scale)
    result: dict[str, Any] = {
        "label": label, "weights": weights, "scale": scale, "lr": lr_size, "out": ctx.out_size,
        "params": params, "flops": flops["total"], "modes": [], "architecture": model.architecture,
    }

    # -- every candidate mode at batch 1 -------------------------------------------------
    model.inference_mode = "fp32"
    ref = model.upscale(lr1).cpu()
    probe_lr = torch.rand(1, 3, max(1, 32 // scale), max(1, 32 // scale), generator=g).to(device)
    probe_fp32 = None
    modes = [forced_mode] if forced_mode else ctx.modes
    if params == 0:  # bicubic: no network a mode could change; the reference is plain fp32
        modes = ["fp32"]
    if "fp32" not in modes:
        modes = ["fp32", *modes]
    runnable: list[tuple[str, dict]] = []
    fp32_b1_s = None
    for mode in modes:
        row = {"model": label, "mode": mode, "note": ""}
        result["modes"].append(row)
        if "compile" in mode and not ctx.compile_ok:
            row["note"] = "not timed (--no-compile / quick run)"
            continue
        if "compile" in mode and fp32_b1_s is not None and 1000 * fp32_b1_s > ctx.compile_max_ms:
            row["note"] = (f"not timed: fp32 takes {1000 * fp32_b1_s:.0f} ms > --compile-max-ms "
                           f"{ctx.compile_max_ms:g} (compiling takes minutes at this size; the convs, not the "
                           "glue compile can fuse, dominate: see the bounds table)")
            continue
        model.inference_mode = mode
        try:
            if ("bf16" in mode or "fp16" in mode) and "compile" not in mode and not forced_mode:  # probe first
                if probe_fp32 is None:
                    model.inference_mode = "fp32"
                    probe_fp32 = measure(lambda: model.upscale(probe_lr), device, 3, 2.0)["min_s"]
                    model.inference_mode = mode
                probe = measure(lambda: model.upscale(probe_lr), device, 3, 2.0)["min_s"]
                if probe > PROBE_SLOWDOWN * probe_fp32:
                    row["vs_fp32"] = probe_fp32 / probe
                    row["note"] = (f"{probe / probe_fp32:.1f}x slower than fp32 on the 32x32-output probe: "
                                   "not timed at full size")
                    continue
            t0 = time.perf_counter()
            out = model.upscale(lr1)  # warm-up (and compilation for compile modes)
            if "compile" in mode:
                row["compile_s"] = time.perf_counter() - t0
                model.upscale(lr1)
            elif mode == "fp32":
                fp32_b1_s = measure(lambda: model.upscale(lr1), device, 1, 0, warmup=0)["median_s"]
            row["max_abs_diff"] = (out.cpu() - ref).abs().max().item()
            runnable.append((mode, row))
        except Exception as err:  # a mode this model or platform cannot run
            row["note"] = f"failed: {type(err).__name__}: {str(err).splitlines()[0][:120]}"
    # timed in interleaved rounds, so that every mode sees the same machine load
    times: dict[str, list[float]] = {mode: [] for mode, _ in runnable}
    spent = 0.0
    for _ in range(ctx.reps):
        for mode, _row in runnable:
            model.inference_mode = mode
            t = time_once(lambda: model.upscale(lr1), device)
            times[mode].append(t)
            spent += t
        if spent > ctx.budget_s * len(runnable):
            break
    timed: dict[str, dict] = {}
    for mode, row in runnable:
        timed[mode] = {"median_s": statistics.median(times[mode]), "runs": len(times[mode])}
        row["ms_b1"] = 1000 * timed[mode]["median_s"]
    fp32_ms = result["modes"][0].get("ms_b1")
    for row in result["modes"]:
        if row.get("ms_b1") and fp32_ms:
            row["vs_fp32"] = fp32_ms / row["ms_b1"]

    # -- the default mode: fastest harmless eligible one --------------------------------
    fastest = min(timed, key=lambda k: timed[k]["median_s"])
    result["fastest_mode"], result["fastest_ms"] = fastest, 1000 * timed[fastest]["median_s"]
    if forced_mode:
        chosen, result["mode_source"] = forced_mode, "given"
    elif params == 0:
        chosen, result["mode_source"] = "fp32", "measured"
    else:
        chosen = "fp32"
        fp32_cache: dict = {}
        drift_on = drift_model if drift_model is not None else model
        # every eligible mode's dPSNR is measured (bf16 on every architecture), the fastest harmless one chosen
        for row in sorted((r for r in result["modes"] if r.get("ms_b1")), key=lambda r: r["ms_b1"]):
            mode = row["mode"]
            eligible = ("compile" not in mode or ctx.allow_compile_default)
            row["eligible"] = "yes" if eligible else "no (compile: 10-20 s first call per input size)"
            if mode == "fp32" or not eligible:
                continue
            if row["vs_fp32"] < MIN_SPEEDUP:
                row["eligible"] = f"no (< {MIN_SPEEDUP:.2f}x faster)"
                continue
            drift = mode_drift(drift_on, mode, ctx, fp32_cache, fp32_ms / 1000)
            row.update(drift)
            if abs(drift["dpsnr_y"]) < MAX_DPSNR:
                chosen = mode if chosen == "fp32" else chosen
                continue
            row["eligible"] = f"no (|dPSNR-Y| >= {MAX_DPSNR} dB)"
        drift_on.inference_mode = None
        result["mode_source"] = "measured"
    for row in result["modes"]:
        row["chosen"] = "yes" if row["mode"] == chosen else ""
    result["default_mode"] = chosen
    result["default_ms"] = next(r["ms_b1"] for r in result["modes"] if r["mode"] == chosen)

    # -- throughput at batch 16 and memory: fp32 and the default mode --------------------
    for key, mode in (("fp32", "fp32"), ("default", chosen)):
        if key == "default" and mode == "fp32":
            for k in ("img_s_b16", "peak_mib", "peak_mib_b16"):
                result[f"default_{k}"] = result[f"fp32_{k}"]
            continue
        model.inference_mode = mode
        single = result["default_ms"] if key == "default" else fp32_ms
        heavy = single / 1000 * ctx.b16 > ctx.budget_s
        if key == "fp32" and chosen != "fp32" and single / 1000 * ctx.b16 > 2 * ctx.budget_s:
            # slow model: batch 16 only in its default mode (fp32 throughput ~ 1000 / fp32 ms)
            result["fp32_img_s_b16"] = result["fp32_peak_mib_b16"] = None
            result["fp32_peak_mib"] = ctx.memory.run(lambda: model.upscale(lr1))
            continue
        m = measure(lambda: model.upscale(lr16), device, 1 if heavy else ctx.reps, ctx.budget_s,
                    warmup=0 if heavy else 1)
        result[f"{key}_img_s_b16"] = ctx.b16 / m["median_s"]
        result[f"{key}_peak_mib_b16"] = ctx.memory.run(lambda: model.upscale(lr16)) if not heavy else None
        result[f"{key}_peak_mib"] = ctx.memory.run(lambda: model.upscale(lr1))
    result["fp32_ms"] = fp32_ms

    # -- where the time goes (default mode) ----------------------------------------------
    model.inference_mode = chosen
    try:
        result["profile"] = profile_ops(model, lr1, scale, device)
    except Exception as err:
        result["profile"] = {"share": {}, "top": [f"profiler failed: {type(err).__name__}"], "conv_gflop_s": None}

    # -- cost against output size (default mode) -----------------------------------------
    result["scaling"] = []
    previous: list[tuple[int, float, float]] = []  # (size, seconds, flops) of the sizes timed so far
    for size in sorted(ctx.scaling_sizes):
        row = {"model": label, "mode": chosen, "output": size, "input": size // scale, "note": ""}
        result["scaling"].append(row)
        if size % scale or size // scale < 1:
            row["note"] = "size not a multiple of the scale"
            continue
        try:
            size_flops = count_flops(model, size // scale, scale)["total"]
            row["gflops"] = size_flops / 1e9
        except Exception as err:
            size_flops = None
            row["note"] = f"FLOP count failed: {type(err).__name__}"
        # estimate: pixels (or FLOPs) times the 128 time, and the growth seen between the last two sizes
        estimate = result["default_ms"] / 1000 * (size / ctx.out_size) ** 2
        if size_flops and flops["total"]:
            estimate = max(estimate, result["default_ms"] / 1000 * size_flops / flops["total"])
        if len(previous) >= 2 and previous[-2][1] > 0:
            (s0, t0, _), (s1, t1, _) = previous[-2], previous[-1]
            estimate = max(estimate, t1 * (t1 / t0) ** (math.log(size / s1) / math.log(s1 / s0)))
        if estimate > ctx.scaling_max_s:
            row["note"] = f"not timed: estimated {estimate:.0f} s per run (> {ctx.scaling_max_s:g} s)"
            continue
        x = torch.rand(1, 3, size // scale, size // scale, generator=g).to(device)
        try:
            if size == ctx.out_size:
                row["ms"] = result["default_ms"]
                row["peak_mib"] = result.get("default_peak_mib")
            elif estimate > ctx.budget_s / 4:  # slow: one run, timed and measured for memory at once
                t0 = time.perf_counter()
                row["peak_mib"] = ctx.memory.run(lambda: model.upscale(x))
                row["ms"] = 1000 * (time.perf_counter() - t0)
                row["note"] = "one run (timed with the memory probe)"
            else:
                m = measure(lambda: model.upscale(x), device, min(ctx.reps, 3), ctx.budget_s)
                row["ms"] = 1000 * m["median_s"]
                row["peak_mib"] = ctx.memory.run(lambda: model.upscale(x))
            row["ms_per_mpix"] = row["ms"] / (size * size / 1e6)
            previous.append((size, row["ms"] / 1000, size_flops or 0))
        except Exception as err:
            row["note"] = f"failed: {type(err).__name__}: {str(err).splitlines()[0][:100]}"
    model.inference_mode = None
    return result


def bound_row(res: dict, ctx: Context) -> dict:
    peak = ctx.peak_of(res["default_mode"])["gflop_s"]
    gflops = res["flops"] / 1e9
    ms = res["default_ms"]
    achieved = gflops / (ms / 1000) if ms else None
    share = res.get("profile", {}).get("share", {})
    row = {"model": res["label"], "mode": res["default_mode"], "ms": ms, "gflops": gflops,
           "gflop_s": achieved, "pct_peak": 100 * achieved / peak if achieved else None,
           "ms_at_peak": 1000 * gflops / peak, "conv_gflop_s": res.get("profile", {}).get("conv_gflop_s"),
           "top_ops": "; ".join(res.get("profile", {}).get("top", []))}
    for cat in ("conv", "matmul", "elementwise", "norm", "reduce_pool", "memory", "resize", "softmax", "other"):
        row[f"{cat}_pct"] = share.get(cat, 0.0)
    row["verdict"] = verdict(res, row, ctx)
    return row


def verdict(res: dict, row: dict, ctx: Context) -> str:
    ms, gflops, peak = row["ms"], row["gflops"], ctx.peak_of(res["default_mode"])["gflop_s"]
    if res["architecture"] == "bicubic":
        return "reference (no network)"
    over = f"{ms / GOAL_MS:.1f}x over {GOAL_MS:.0f} ms" if ms > GOAL_MS else f"meets {GOAL_MS:.0f} ms"
    if row["ms_at_peak"] > GOAL_MS:
        return (f"{over}; FLOP-bound: {gflops:.1f} GFLOPs need >= {row['ms_at_peak']:.0f} ms even at the "
                f"measured conv peak ({peak:.0f} GFLOP/s): needs {row['ms_at_peak'] / GOAL_MS:.1f}x fewer FLOPs")
    non_conv = {k: row[f"{k}_pct"] for k in ("matmul", "elementwise", "norm", "reduce_pool", "memory", "resize",
                                             "softmax", "other")}
    worst = max(non_conv, key=non_conv.get)
    parts = [f"runs at {row['pct_peak']:.0f}% of peak"]
    conv_eff = row.get("conv_gflop_s")
    if row["conv_pct"] >= 30 and conv_eff:
        parts.append(f"convs {row['conv_pct']:.0f}% of time at {conv_eff:.0f} GFLOP/s "
                     f"({100 * conv_eff / peak:.0f}% of peak)")
    slow_convs = [(us, label, gfs) for us, label, cat, gfs in res.get("profile", {}).get("rows", [])
                  if cat == "conv" and gfs is not None and gfs < 0.1 * peak]
    total_us = sum(r[0] for r in res.get("profile", {}).get("rows", [])) or 1
    slow_us = sum(r[0] for r in slow_convs)
    if slow_us / total_us >= 0.05:
        labels = list(dict.fromkeys(r[1].split(" @")[0] for r in sorted(slow_convs, key=lambda r: -r[0])))[:3]
        parts.append(f"convs without a fast kernel {100 * slow_us / total_us:.0f}% ({', '.join(labels)})")
    if non_conv[worst] >= 10:
        names = {"elementwise": "memory-bound elementwise ops", "norm": "normalisation",
                 "reduce_pool": "reductions/pooling (attention statistics)", "memory": "copies/concat/pad",
                 "matmul": "matmul/Linear (attention)", "softmax": "softmax (attention)", "resize": "resizing",
                 "other": "other ops"}
        parts.append(f"{names[worst]} {non_conv[worst]:.0f}%")
    return f"{over}; " + "; ".join(parts)


# ---------------------------------------------------------------------------------------
# quality
# ---------------------------------------------------------------------------------------
def _card_row(folder: Path, ds: Dataset, scale: int, protocol: str) -> dict | None:
    """A full-set result the checkpoint's card already holds for this data folder/scale/protocol."""
    path = folder / "eval_results.json"
    if not path.is_file():
        return None
    try:
        rows = json.loads(path.read_text())
    except ValueError:
        return None
    for row in rows:
        if row.get("scale") != scale or row.get("protocol") != protocol or row.get("num_images") != len(ds.images):
            continue
        try:
            args = shlex.split(row.get("command", ""))
            data = Path(args[args.index("--data") + 1]).expanduser()
        except (ValueError, IndexError):
            continue
        candidates = [data] if data.is_absolute() else [REPO / data, Path.cwd() / data]
        if "--limit" in args or "--list" in args:
            continue
        if any(c.is_dir() and c.resolve() == ds.path.resolve() for c in candidates):
            return row
    return None


def quality(datasets: list[Dataset], checkpoints: list[tuple[str, Any]], args, chosen_modes: dict,
            log: Callable[[str], None]) -> list[dict]:
    rows: list[dict] = []
    deadline = time.perf_counter() + 60 * args.quality_minutes
    jobs: list[tuple] = []
    for ds in datasets:
        for scale in ds.scales:
            jobs.append((ds, scale, "bicubic", None))
            for name, model in checkpoints:
                if scale in model.supported_scales and (ds.archs is None or model.architecture in ds.archs):
                    jobs.append((ds, scale, name, model))

    def card_for(ds, scale, name, model):
        if model is None or args.recompute or args.limit is not None:
            return None
        return _card_row(hub_models.registry.CHECKPOINT_DIR / name, ds, scale, args.protocol)

    cards = [card_for(*job) for job in jobs]
    bicubic_scores: dict[tuple, dict] = {}
    for i, (ds, scale, name, model) in enumerate(jobs):
        note = []
        if ds.greyscale:
            note.append(ds.grey_note)
        if model is None:
            model_obj, arch, weights = hub_models.create("bicubic", scale=scale).eval(), "bicubic", "none"
        else:
            model_obj, arch = model, model.architecture
            weights = f"checkpoints/{name}"
            if arch == "agrnet_hr":
                note.append("trained for real-world degradation; bicubic LR is not its task")
        mode = chosen_modes.get(arch)
        if mode and model is not None:
            model_obj.inference_mode = mode
        used_mode = model_obj.resolved_inference_mode(next((p.device for p in model_obj.parameters()), torch.device("cpu")))
        card = cards[i]
        t0 = time.perf_counter()
        if card:
            scores, n, source = card["model"], card["num_images"], "card (eval_results.json)"
            used_mode = "(card)"
        else:
            images = ds.images
            remaining = max(1.0, deadline - time.perf_counter())
            share = remaining / max(1, sum(c is None for c in cards[i:]))  # card rows take no time
            # cost per image: a short trial batch (model + metrics), then as many as fit the share
            trial = images[: min(len(images), args.batch_size)]
            evaluate_model(model_obj, trial[:1], scale, args.protocol, 1, with_bicubic=False)  # warm-up (LPIPS net, kernels): not timed
            ts = time.perf_counter()
            trial_result = evaluate_model(model_obj, trial, scale, args.protocol, args.batch_size, with_bicubic=False)
            per_image = (time.perf_counter() - ts) / max(1, len(trial))
            n = len(images) if per_image * (len(images) - len(trial)) <= share else max(len(trial), int(share / per_image))
            result = trial_result
            if n > len(trial):
                rest = evaluate_model(model_obj, images[len(trial):n], scale, args.protocol, args.batch_size,
                                      with_bicubic=False)
                result = _merge_means(trial_result, rest)
            scores, source = result["model"], "computed"
            n = result["num_images"]
            if n < len(images):
                note.append(f"first {n} of {len(images)} images (time budget --quality-minutes)")
        key = (ds.name, scale, n)
        if model is None:
            bicubic_scores[key] = scores
        bic = bicubic_scores.get(key)
        if bic is None and model is not None:  # a subset: bicubic on the same images
            bic = evaluate_model(hub_models.create("bicubic", scale=scale), ds.images[:n], scale, args.protocol,
                                 args.batch_size, with_bicubic=False)["model"]
            bicubic_scores[key] = bic
        rows.append({
            "model": name if model is not None else f"bicubic-x{scale}", "architecture": arch, "weights": weights,
            "dataset": ds.name, "scale": scale, "protocol": args.protocol, "images": n,
            "psnr_y": scores.get("psnr_y"), "ssim_y": scores.get("ssim_y"), "psnr_rgb": scores.get("psnr_rgb"),
            "lpips": scores.get("lpips"),
            "bicubic_psnr_y": bic.get("psnr_y") if bic else None, "bicubic_ssim_y": bic.get("ssim_y") if bic else None,
            "bicubic_lpips": bic.get("lpips") if bic else None,
            "gain_psnr_y": scores.get("psnr_y") - bic["psnr_y"] if bic and scores.get("psnr_y") is not None else None,
            "mode": used_mode, "seconds": time.perf_counter() - t0 if source == "computed" else None,
            "source": source, "note": "; ".join(note),
        })
        if model is not None:
            model_obj.inference_mode = None
        log(f"  quality {rows[-1]['model']} {ds.name} x{scale}: PSNR-Y {scores.get('psnr_y', float('nan')):.2f} "
            f"({n} images, {source}, {time.perf_counter() - t0:.0f} s)")
    return rows


def _merge_means(a: dict, b: dict) -> dict:
    """Two `evaluate_model` results on disjoint image sets -> the result on their union."""
    na, nb = a["num_images"], b["num_images"]
    merged = {"model": {k: (a["model"][k] * na + b["model"][k] * nb) / (na + nb) for k in a["model"]},
              "num_images": na + nb,
              "seconds_per_image": (a["seconds_per_image"] * na + b["seconds_per_image"] * nb) / (na + nb)}
    return merged


def _norm(name: str) -> str:
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


def paper_rows(quality_rows: list[dict], archs: list[str]) -> list[dict]:
    """Each paper's own figures (labelled paper) next to ours on the matching test set."""
    rows = []
    registered = {_norm(n): n for n in hub_models.MODELS}
    for arch in archs:
        cls = hub_models.MODELS[arch]
        for pr in cls.paper_results:
            method = pr.get("method", arch)
            ours_arch = registered.get(_norm(method))
            pdata = str(pr.get("dataset", ""))
            scale = pr.get("scale")
            if "set14" in pdata.lower():
                want = "Set14"
            elif "set5" in pdata.lower():
                want = "Set5"
            else:
                want = "CelebA-1000"
            note = []
            ours = None
            if ours_arch is None:
                note.append("method not implemented here")
            else:
                candidates = [q for q in quality_rows if q["architecture"] == ours_arch and q["scale"] == scale]
                ours = next((q for q in candidates if q["dataset"] == want), None) or (candidates[0] if candidates else None)
                if ours is None:
                    measured = ours_arch == "bicubic" or any(q["architecture"] == ours_arch for q in quality_rows)
                    note.append("not a scale of this benchmark (a checkpoint's card may have it)" if measured else "no checkpoint yet")
                elif "celeba" not in pdata.lower() and ours["dataset"] not in pdata:
                    note.append(f"different test set: paper {pdata.split(' (')[0]}, ours {ours['dataset']}")
                elif "celeba" in pdata.lower():
                    note.append("same CelebA test images (paper's split)" if "1000" in pdata else "CelebA, split may differ")
            if pr.get("note"):
                note.append(f"paper: {pr['note']}")
            rows.append({
                "architecture": arch, "paper_dataset": pdata, "scale": scale, "method": method,
                "paper_psnr_y": pr.get("psnr_y"), "paper_ssim_y": pr.get("ssim_y"), "paper_lpips": pr.get("lpips"),
                "ours_model": ours["model"] if ours else "", "ours_dataset": ours["dataset"] if ours else "",
                "ours_images": ours["images"] if ours else "",
                "ours_psnr_y": ours["psnr_y"] if ours else None, "ours_ssim_y": ours["ssim_y"] if ours else None,
                "ours_lpips": ours["lpips"] if ours else None, "note": "; ".join(note),
            })
    return rows


# ---------------------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------------------
def write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        for row in rows:
            w.writerow({k: ("" if row.get(k) is None else (f"{row[k]:.6g}" if isinstance(row.get(k), float) else row[k]))
                        for k in columns})


def md_table(headers: list[str], rows: list[list]) -> str:
    def cell(v):
        return str(v).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def _limit_cells(r: dict) -> list[str]:
    b = r.get("_bound") or {}
    if not r["flops"] or not b.get("ms_at_peak"):
        return ["", ""]
    return [f"{b['ms_at_peak']:.1f} ({bench_peaks.precision_of(r['default_mode'])})", _fmt(b.get("pct_peak"), 0)]


def _tiled_cell(t: dict | None) -> str:
    if not t:
        return ""
    if t.get("mpix_s") is None:
        return t.get("note", "")
    return f"{t['mpix_s']:.2f} MP/s, {_mib(t.get('peak_mib'))} MiB" + (f" ({t['note']})" if t.get("note") else "")


def speed_markdown(results: list[dict], bounds: list[dict], env: dict) -> str:
    bic = next((r for r in results if r["architecture"] == "bicubic"), None)
    out = []
    untrained = any(r["weights"].startswith("untrained") for r in results)
    out.append(
        f"Output {env['out_size']}x{env['out_size']}, batch 1 latency = median of `upscale()` "
        f"(bicubic pre-upsampling, padding and clamp included); throughput at batch {env['b16']}. "
        f"{env['device_desc']}, {env['threads']} threads, load average {env['load_start']} at the start. "
        f"Dense-conv peaks measured in this run: "
        + ", ".join(f"{p} {v['gflop_s']:.0f} GFLOP/s" for p, v in env.get("peaks", {"fp32": env["peak"]}).items())
        + f" ({env['peak']['test']}; each model's limit uses the peak of its mode's precision). "
        f"Modes key of this machine: `{env.get('cpu_class', env['device'])}`. "
        + ("Speed does not depend on the weights: rows marked 'untrained' time the default config with random weights. "
           if untrained else "")
        + f"Peak memory: {env['memory_method']}. fp32 at batch 16 is left blank for models whose batch of 16 "
        "takes more than twice the measurement budget (their default mode is measured)."
        + (f" **{env['busy'][0].upper() + env['busy'][1:]}.**" if env.get("busy") else ""))
    rows = []
    for r in results:
        ratio = r["default_ms"] / bic["default_ms"] if bic and bic["default_ms"] else None
        goal = "" if r["architecture"] == "bicubic" else (
            "yes" if r["default_ms"] <= GOAL_MS else f"no, {r['default_ms'] / GOAL_MS:.1f}x over")
        rows.append([r["label"], r["weights"], f"x{r['scale']} ({r['lr']}->{r['out']})", f"{r['params'] / 1e6:.2f}",
                     _fmt(r["flops"] / 1e9, 2), _fmt(r["fp32_ms"]), _fmt(r.get("fp32_img_s_b16")),
                     _mib(r.get("fp32_peak_mib")), r["fastest_mode"], _fmt(r["fastest_ms"]),
                     r["default_mode"], _fmt(r["default_ms"]), _fmt(r.get("default_img_s_b16")),
                     _mib(r.get("default_peak_mib")), _fmt(ratio, 0) + "x" if ratio else "", goal,
                     *_limit_cells(r), _tiled_cell(r.get("tiled"))])
    out.append(md_table(["model", "weights", "scale (px)", "params (M)", "GFLOPs", "fp32 ms (b1)", "fp32 img/s (b16)",
                         "fp32 peak MiB (b1)", "fastest mode", "fastest ms", "default mode", "default ms (b1)",
                         "default img/s (b16)", "default peak MiB", "x bicubic", "<= 100 ms",
                         "limit: ms at peak (precision)", "% of peak", "tiled job to 4096x4096: MP/s, peak MiB"], rows))
    out.append("\n**What bounds each model** (default mode, batch 1; `ms at peak` = its FLOPs at the measured conv "
               "peak, a floor no kernel tuning can beat):\n")
    out.append(md_table(["model", "ms", "GFLOP/s", "% of peak", "ms at peak", "conv % (GFLOP/s)", "top ops (% of time)",
                         "verdict"],
                        [[b["model"], _fmt(b["ms"]), _fmt(b["gflop_s"]), _fmt(b["pct_peak"], 0), _fmt(b["ms_at_peak"]),
                          f"{b['conv_pct']:.0f}%" + (f" ({b['conv_gflop_s']:.0f})" if b.get("conv_gflop_s") else ""),
                          b["top_ops"], b["verdict"]] for b in bounds]))
    modes = [m for r in results for m in r["modes"]]
    out.append(f"\n**Modes tried** (batch 1; a default mode must be >= {MIN_SPEEDUP:.2f}x faster than fp32 and change "
               f"Y-PSNR by < {MAX_DPSNR} dB; dPSNR measured on {env['mode_data_note']}):\n")
    out.append(md_table(["model", "mode", "ms (b1)", "speed vs fp32", "compile s", "max |diff|", "dPSNR-Y (dB)",
                         "PSNR-Y vs fp32 output", "chosen", "note"],
                        [[m["model"], m["mode"], _fmt(m.get("ms_b1")), _fmt(m.get("vs_fp32"), 2) + "x" if m.get("vs_fp32") else "",
                          _fmt(m.get("compile_s")), f"{m['max_abs_diff']:.1e}" if m.get("max_abs_diff") is not None else "",
                          _fmt(m.get("dpsnr_y"), 4), _fmt(m.get("fidelity_psnr_y")), m.get("chosen", ""),
                          m.get("note") or (m.get("eligible", "") if str(m.get("eligible", "")).startswith("no") else "")]
                         for m in modes]))
    sizes = env["scaling_sizes"]
    srows = []
    for r in results:
        by = {s["output"]: s for s in r["scaling"]}
        cells = []
        for size in sizes:
            s = by.get(size, {})
            if s.get("ms") is not None:
                cells.append(f"{s['ms']:.0f} ms / {s.get('gflops', 0):.1f} GF" + (f" / {_mib(s['peak_mib'])} MiB" if s.get("peak_mib") is not None else ""))
            else:
                cells.append((f"{s['gflops']:.1f} GF, " if s.get("gflops") is not None else "") + (s.get("note") or "-"))
        timed = [(s["output"], s["ms"]) for s in r["scaling"] if s.get("ms")]
        growth = ""
        if len(timed) >= 2:
            (a, ta), (b, tb) = timed[0], timed[-1]
            growth = f"{tb / ta:.1f}x time for {(b / a) ** 2:.0f}x pixels"
        srows.append([r["label"], r["default_mode"], *cells, growth])
    out.append("\n**Cost against output size** (batch 1, default mode; ms / GFLOPs / peak MiB):\n")
    out.append(md_table(["model", "mode", *[f"{s}x{s}" for s in sizes], "growth"], srows))
    return "\n".join(out) + "\n"


def quality_markdown(qrows: list[dict], prows: list[dict], env: dict) -> str:
    out = [f"Protocol `{env['protocol']}` ({env['protocol_desc']}); LR = antialiased bicubic downscale, "
           "8-bit quantised; PSNR/SSIM on Y, LPIPS AlexNet v0.1 on RGB; bicubic on the same LR. "
           "Our numbers only: the papers' own figures are in the next table, labelled paper."]
    out.append(md_table(
        ["model", "weights", "dataset", "scale", "images", "PSNR-Y", "SSIM-Y", "LPIPS", "bicubic PSNR-Y",
         "bicubic SSIM-Y", "gain (dB)", "mode", "source", "note"],
        [[q["model"], q["weights"], q["dataset"], f"x{q['scale']}", q["images"], _fmt(q["psnr_y"], 2),
          _fmt(q["ssim_y"], 4), _fmt(q["lpips"], 4), _fmt(q["bicubic_psnr_y"], 2), _fmt(q["bicubic_ssim_y"], 4),
          _fmt(q["gain_psnr_y"], 2), q["mode"], q["source"], q["note"]] for q in qrows]))
    out.append("\n**The papers' tables side by side** (`paper` columns are the papers' own figures, quoted, on "
               "their own test sets and protocols; `ours` is this benchmark's measurement):\n")
    out.append(md_table(
        ["architecture", "method", "scale", "paper: test set", "paper PSNR-Y", "paper SSIM-Y", "paper LPIPS",
         "ours: model", "ours: test set", "ours PSNR-Y", "ours SSIM-Y", "ours LPIPS", "note"],
        [[p["architecture"], p["method"], f"x{p['scale']}" if isinstance(p["scale"], int) else p["scale"],
          p["paper_dataset"], _fmt(p["paper_psnr_y"], 2), _fmt(p["paper_ssim_y"], 4), _fmt(p["paper_lpips"], 4),
          p["ours_model"] or "-", p["ours_dataset"] or "-", _fmt(p["ours_psnr_y"], 2), _fmt(p["ours_ssim_y"], 4),
          _fmt(p["ours_lpips"], 4), p["note"]] for p in prows]))
    return "\n".join(out) + "\n"


def write_modes_file(path: Path, results: list[dict], device_type: str, env: dict) -> dict:
    """Merge this run's choices ({architecture: {device_type: mode}}) into `path`."""
    data = json.loads(path.read_text()) if path.is_file() else {}
    data["about"] = ("Default numeric mode of SRModel.upscale per architecture and CPU class (bf16 arithmetic and "
                     "usable cores, hub_models.machine.cpu_class; unlisted classes run fp32 channels_last) or GPU "
                     "device type, chosen by "
                     "`python -m bench --write-modes`: the fastest measured mode that is >= "
                     f"{MIN_SPEEDUP:.2f}x faster than fp32 and changes Y-PSNR by < {MAX_DPSNR} dB. Override per model "
                     "with `model.inference_mode = 'fp32'` or for all with $FACESR_INFERENCE_MODE.")
    modes = data.setdefault("modes", {})
    evidence = data.setdefault("evidence", {})
    for r in results:
        if r.get("mode_source") != "measured":
            continue
        arch = r["architecture"]
        modes.setdefault(arch, {})[mode_key(device_type)] = r["default_mode"]
        chosen = next(m for m in r["modes"] if m["mode"] == r["default_mode"])
        evidence.setdefault(arch, {})[mode_key(device_type)] = {
            "fp32_ms": round(r["fp32_ms"], 2), "mode_ms": round(r["default_ms"], 2),
            "dpsnr_y": None if chosen.get("dpsnr_y") is None else round(chosen["dpsnr_y"], 5),
            "max_abs_diff": chosen.get("max_abs_diff"), "drift_weights": r.get("drift_weights"),
            "output": f"{r['out']}x{r['out']}", "machine": env["device_desc"], "threads": env["threads"],
            "torch": torch.__version__, "date": env["date"], "load_at_start": env["load_start"],
        }
    backends = data.setdefault("backends", {})  # engines >= 20 % faster than the default mode (bench.backends)
    for r in results:
        if r.get("mode_source") == "measured" and device_type == "cpu":
            per = backends.setdefault(r["architecture"], {})
            if r.get("backend"):
                per[mode_key(device_type)] = r["backend"]
                evidence.setdefault(r["architecture"], {})[mode_key(device_type)]["backend"] = r["backend_evidence"]
            else:
                per.pop(mode_key(device_type), None)
    data["backends"] = {a: per for a, per in sorted(backends.items()) if per}
    data["modes"] = dict(sorted(modes.items()))
    data["evidence"] = dict(sorted(evidence.items()))
    path.write_text(json.dumps(data, indent=2) + "\n")
    return data


# ---------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------
def _load() -> str:
    try:
        return "/".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def checkpoint_models(selected: set[str] | None, device: torch.device, log) -> list[tuple[str, Any]]:
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT.name}/)")
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
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.reps, args.budget_s, args.size, args.no_compile = 1, 1.0, 32, True
        args.scaling_sizes, args.mode_images, args.limit = [32, 64], min(args.mode_images, 4), args.limit or 4
        args.quality_minutes = min(args.quality_minutes, 1.0)
        if args.write_modes and args.modes_file == INFERENCE_MODES_FILE:
            p.error("--quick uses tiny configs: its modes must not go into the shipped modes file "
                    "(give --modes-file elsewhere)")
    device = torch.device(args.device)
    out_dir = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    log_lines: list[str] = []

    def log(msg: str) -> None:
        print(msg, flush=True)
        log_lines.append(msg)

    for mode in args.modes or []:
        normalize_inference_mode(mode)
    selected = set(args.models) if args.models else None
    archs = [a for a in hub_models.MODELS if not selected or a in selected]
    if selected and "bicubic" not in selected:
        archs = ["bicubic", *archs]  # the reference row
    datasets = parse_data_args(args.data, args.scales) if args.data else default_suite(args.scales)
    command = "python -m bench " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    env = {
        "command": command, "date": time.strftime("%Y-%m-%d %H:%M"), "quick": args.quick,
        "device": str(device), "threads": torch.get_num_threads(), "torch": torch.__version__,
        "device_desc": (torch.cuda.get_device_name(device) if device.type == "cuda"
                        else f"CPU {cpu_model_name()} ({os.cpu_count()} cores, {torch.backends.cpu.get_cpu_capability()})"),
        "load_start": _load(), "out_size": args.size, "b16": 16, "scaling_sizes": args.scaling_sizes,
        "protocol": args.protocol,
        "protocol_desc": {"dic": "Y rounded, 8 px border crop, 7x7 uniform SSIM",
                          "sparnet": "Y floored, no crop, 11x11 Gaussian SSIM",
                          "basicsr": "Y float, scale-pixel crop, 11x11 Gaussian SSIM"}.get(args.protocol, args.protocol),
    }
    try:
        busy = os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1)
    except OSError:
        busy = False
    env["busy"] = (f"the machine was busy (1-min load {env['load_start'].split('/')[0]} on {os.cpu_count()} cores): "
                   "timings are pessimistic and noisy; with more threads than free cores every parallel op waits "
                   "for a descheduled thread") if busy and device.type == "cpu" else ""
    log(f"benchmark: {env['device_desc']}, {env['threads']} threads, load {env['load_start']}"
        + (" (QUICK: tiny configs, numbers meaningless)" if args.quick else ""))
    for ds in datasets:
        load_dataset(ds, args.limit)
        log(f"  data {ds.name}: {len(ds.images)} images from {ds.path}"
            + (f" ({ds.grey_note})" if ds.greyscale else ""))
    checkpoints = checkpoint_models(selected, device, log)
    log(f"  checkpoints: {', '.join(n for n, _ in checkpoints) or 'none yet'}")

    results: list[dict] = []
    bounds: list[dict] = []
    chosen_modes: dict[str, str] = {}
    if "speed" in args.part:
        memory = MemoryProbe(device)
        env["memory_method"] = memory.method
        env["peaks"] = bench_peaks.conv_peaks(device, 3 if args.quick else 10)
        env["peak"] = env["peaks"]["fp32"]
        env["cpu_class"] = mode_key(device.type)
        log("  dense conv peaks: " + ", ".join(f"{k} {v['gflop_s']:.1f} GFLOP/s" for k, v in env["peaks"].items())
            + f"; modes key {env['cpu_class']}")
        face = next((d for d in datasets if d.archs is None and d.images), None)
        mode_data = face.images if face else synthetic_faces(max(args.mode_images, 2), args.size)
        env["mode_data_note"] = (f"the first {args.mode_images} images of {face.name} (fewer for slow models: see "
                                 "the images column of modes.csv)" if face else "smooth synthetic images (no face data)")
        ctx = Context(device=device, quick=args.quick, out_size=args.size, reps=args.reps, budget_s=args.budget_s,
                      b16=16, modes=[normalize_inference_mode(m) for m in (args.modes or (
                          CUDA_MODES if device.type == "cuda" else CPU_MODES))],
                      compile_ok=not args.no_compile, compile_max_ms=args.compile_max_ms,
                      allow_compile_default=args.allow_compile_default,
                      scaling_sizes=args.scaling_sizes, scaling_max_s=args.scaling_max_s,
                      mode_images=args.mode_images, mode_budget_s=10.0 if args.quick else 15.0,
                      protocol=args.protocol, peak=env["peak"], peaks=env["peaks"], memory=memory, mode_data=mode_data,
                      mode_data_note=env["mode_data_note"])
        by_arch_ckpt = {}
        for name, model in checkpoints:
            by_arch_ckpt.setdefault(model.architecture, (name, model))
        for arch in archs:
            t0 = time.perf_counter()
            cls = hub_models.MODELS[arch]
            try:
                model = cls(**(cls.test_config if args.quick else {})).to(device).eval()
                drift = by_arch_ckpt.get(arch)
                res = speed_subject(arch, model, "untrained test config" if args.quick else "untrained default config",
                                    ctx, drift_model=drift[1] if drift and not args.quick else None)
                res["drift_weights"] = f"checkpoint {drift[0]}" if drift and not args.quick else "untrained (numeric drift only)"
                if arch == "bicubic":
                    res["weights"] = "none"
            except Exception as err:
                log(f"  speed {arch}: FAILED {type(err).__name__}: {err}")
                continue
            results.append(res)
            chosen_modes[arch] = res["default_mode"]
            res["_bound"] = bound_row(res, ctx)
            bounds.append(res["_bound"])
            log(f"  speed {arch}: {res['flops'] / 1e9:.2f} GFLOPs, fp32 {res['fp32_ms']:.1f} ms, "
                f"{res['default_mode']} {res['default_ms']:.1f} ms ({time.perf_counter() - t0:.0f} s)")
        # checkpoints whose config differs from the default get their own row (their arch's mode)
        for name, model in checkpoints:
            default = hub_models.MODELS[model.architecture]()
            if _config(default) == _config(model) or args.quick:
                continue
            try:
                res = speed_subject(name, model, f"checkpoint {name}", ctx,
                                    forced_mode=chosen_modes.get(model.architecture, "fp32"))
            except Exception as err:
                log(f"  speed {name}: FAILED {type(err).__name__}: {err}")
                continue
            res["config_differs"] = True
            results.append(res)
            res["_bound"] = bound_row(res, ctx)
            bounds.append(res["_bound"])
            log(f"  speed {name}: {res['default_ms']:.1f} ms")
        extra = speed_sections(results, archs, ctx, args, env, out_dir, log)
        env["load_end_speed"] = _load()

        write_csv(out_dir / "speed.csv", [speed_csv_row(r, results) for r in results], SPEED_COLUMNS)
        write_csv(out_dir / "modes.csv", [m for r in results for m in r["modes"]], MODE_COLUMNS)
        write_csv(out_dir / "bounds.csv", bounds, BOUND_COLUMNS)
        write_csv(out_dir / "scaling.csv", [s for r in results for s in r["scaling"]], SCALING_COLUMNS)
        proposal = write_modes_file(out_dir / "inference_modes.json", results, device.type, env)
        if args.write_modes:
            write_modes_file(args.modes_file, results, device.type, env)
            log(f"  modes written to {args.modes_file}: {json.dumps(proposal['modes'])}")
        modes_shown = args.modes_file if args.write_modes else out_dir / "inference_modes.json"
        extra.insert(0, bench_modes.modes_markdown(modes_shown, env.get("cpu_class", device.type), md_table))
        (out_dir / "speed.md").write_text(speed_markdown(results, bounds, env) + "\n" + "\n\n".join(extra))

    qrows: list[dict] = []
    prows: list[dict] = []
    if "quality" in args.part:
        qrows = quality(datasets, checkpoints, args, chosen_modes if "speed" in args.part else {}, log)
        prows = paper_rows(qrows, [a for a in archs if a != "bicubic"])
        write_csv(out_dir / "quality.csv", qrows, QUALITY_COLUMNS)
        write_csv(out_dir / "papers.csv", prows, PAPER_COLUMNS)
        (out_dir / "quality.md").write_text(quality_markdown(qrows, prows, env))

    env["load_end"] = _load()
    env["seconds"] = round(time.perf_counter() - started, 1)
    env["checkpoints"] = [n for n, _ in checkpoints]
    env["datasets"] = [{"name": d.name, "path": str(d.path), "images": len(d.images), "scales": d.scales,
                        "greyscale": d.greyscale} for d in datasets]
    (out_dir / "environment.json").write_text(json.dumps(env, indent=2, default=str) + "\n")
    parts = [f"# facesr-hub benchmark\n\n`{command}` — {env['date']}, {env['device_desc']}, {env['threads']} threads, "
             f"torch {torch.__version__}; load average {env['load_start']} at the start, {env['load_end']} at the end; "
             f"{env['seconds']:.0f} s." + ("\n\n**QUICK RUN: tiny configs, numbers are not benchmarks.**" if args.quick else "")
             + (f"\n\n**Note: {env['busy']}.**" if env["busy"] else "")]
    if "speed" in args.part:
        parts.append("## Speed\n\n" + (out_dir / "speed.md").read_text())
    if "quality" in args.part:
        parts.append("## Quality\n\n" + (out_dir / "quality.md").read_text())
    (out_dir / "benchmark.md").write_text("\n\n".join(parts))
    log(f"wrote {out_dir}/benchmark.md (+ csv) in {env['seconds']:.0f} s")
    return 0


def speed_sections(results: list[dict], archs: list[str], ctx: Context, args, env: dict, out_dir: Path, log) -> list[str]:
    """The limit, other engines, tiled job and GPU sections (bench/*): csv files and markdown."""
    by_arch = {r["label"]: r for r in results if r["label"] in archs}
    limits = [bench_peaks.limit_row(r["label"], r["flops"], r["default_mode"], r["default_ms"], env["peaks"], GOAL_MS)
              for r in results]
    write_csv(out_dir / "limits.csv", limits, bench_peaks.LIMIT_COLUMNS)
    sections = [bench_peaks.limit_markdown(limits, env["peaks"], md_table, _fmt)]
    engines = bench_backends.available_engines() if ctx.device.type == "cpu" and not args.no_engines else {}
    engine_rows = []
    for label, r in by_arch.items():
        if engines and r["params"]:
            model = hub_models.MODELS[label](**(hub_models.MODELS[label].test_config if args.quick else {})).eval()
            engine_rows += bench_backends.measure_backends(label, model, r["default_mode"], r["lr"], ctx.reps,
                                                           ctx.budget_s, engines)
            log(f"  engines {label}: " + ", ".join(f"{e['engine']} {_fmt(e.get('engine_ms'))} ms" for e in engine_rows
                                                   if e["model"] == label) + f" (PyTorch {r['default_ms']:.1f} ms)")
            wins = [e for e in engine_rows if e["model"] == label and str(e.get("verdict", "")).startswith("wins")]
            if wins:
                r["backend"] = min(wins, key=lambda e: e["engine_ms"])["engine"]
                r["backend_evidence"] = {k: min(wins, key=lambda e: e["engine_ms"]).get(k)
                                         for k in ("torch_mode", "torch_ms", "engine_ms", "speedup", "max_abs_diff")}
    write_csv(out_dir / "backends.csv", engine_rows, bench_backends.BACKEND_COLUMNS)
    sections.append(bench_backends.backends_markdown(engine_rows, engines, md_table, _fmt)
                    if ctx.device.type == "cpu" else "**Other engines**: measured on CPUs only.\n")
    tiled = []
    for label, r in by_arch.items():
        model = hub_models.MODELS[label](**(hub_models.MODELS[label].test_config if args.quick else {})).eval()
        per_mpix = r["default_ms"] / 1000 / (r["out"] ** 2 / 1e6)
        tiled.append(bench_tiled.measure_tiled(label, model, r["default_mode"], ctx.memory, per_mpix, args.tiled_max_s,
                                               out_side=192 if args.quick else bench_tiled.OUT_SIDE))
    write_csv(out_dir / "tiled.csv", tiled, bench_tiled.TILED_COLUMNS)
    for r in results:
        r["tiled"] = next((t for t in tiled if t["model"] == r["label"]), None)
    gpu_rows = []
    if torch.cuda.is_available():
        for label in by_arch:
            model = hub_models.MODELS[label](**(hub_models.MODELS[label].test_config if args.quick else {})).eval()
            gpu_rows += bench_gpu.measure_gpu(label, model, ctx.out_size, ctx.reps, not args.no_compile)
    write_csv(out_dir / "gpu.csv", gpu_rows, bench_gpu.GPU_COLUMNS)
    sections.append(bench_gpu.gpu_markdown(gpu_rows, md_table, _fmt, env["device_desc"]))
    return sections


def speed_csv_row(r: dict, results: list[dict]) -> dict:
    bic = next((x for x in results if x["architecture"] == "bicubic"), None)
    b = r.get("_bound", {})
    return {
        "model": r["label"], "weights": r["weights"], "scale": r["scale"], "input": r["lr"], "output": r["out"],
        "params_m": r["params"] / 1e6, "gflops": r["flops"] / 1e9, "fp32_ms": r["fp32_ms"],
        "fp32_img_s_b16": r.get("fp32_img_s_b16"), "fp32_peak_mib": r.get("fp32_peak_mib"),
        "fastest_mode": r["fastest_mode"], "fastest_ms": r["fastest_ms"], "default_mode": r["default_mode"],
        "default_ms": r["default_ms"], "default_img_s_b16": r.get("default_img_s_b16"),
        "default_peak_mib": r.get("default_peak_mib"),
        "x_bicubic": r["default_ms"] / bic["default_ms"] if bic and bic["default_ms"] else None,
        "gflop_s": b.get("gflop_s"), "pct_peak": b.get("pct_peak"),
        "goal_100ms": "" if r["architecture"] == "bicubic" else ("yes" if r["default_ms"] <= GOAL_MS else "no"),
        "bound": b.get("verdict"),
    }


if __name__ == "__main__":
    sys.exit(main())
