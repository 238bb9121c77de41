"""FLOPs and where the time goes: FLOP counts of `upscale` (torch.utils.flop_counter, 2 FLOPs
per multiply-add, on meta tensors where the model can be built there) and one profiled call
(torch.profiler) split into op categories, with each convolution's achieved GFLOP/s."""

from __future__ import annotations

import contextlib
import math
import os
import sys

import torch

from bench.timing import sync


def model_config(model) -> dict:
    """The config the model was built from (its hub mixin's), without the architecture name."""
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
            meta_model = type(model)(**model_config(model))
        fc = run(meta_model.eval(), torch.empty(batch, 3, lr_size, lr_size, device="meta"))
    except Exception:  # a model that needs real values somewhere: count on a real run
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        fc = run(model, torch.rand(batch, 3, lr_size, lr_size, device=device))
    by_op = {str(k): int(v) for k, v in fc.get_flop_counts().get("Global", {}).items()}
    return {"total": int(fc.get_total_flops()), "by_op": by_op}


CATEGORIES = [
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
#: the categories of the bounds table, convolutions first
CATEGORY_NAMES = ("conv", "matmul", "elementwise", "norm", "reduce_pool", "memory", "resize", "softmax", "other")


def category(name: str) -> str:
    """The category of an aten op name ("conv", "matmul", ..., "other")."""
    lowered = name.lower()
    if "convolution_backward" in lowered:
        return "other"
    for cat, keys in CATEGORIES:
        if any(k in lowered for k in keys):
            return cat
    return "other"


class ConvRecorder(torch.utils._python_dispatch.TorchDispatchMode):
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

    def describe(self, shapes: list) -> tuple[str, int | None]:
        """A conv's label (kernel, channels, input size) and its FLOPs over all its calls."""
        x, w = (shapes + [[], []])[:2]
        if len(x) == 4 and len(w) == 4:
            groups = x[1] // w[1] if w[1] else 1
            label = f"conv{w[2]}x{w[3]} {x[1]}->{w[0]}" + (f" g{groups}" if groups > 1 else "") + f" @{x[2]}x{x[3]}"
            key = (tuple(x), tuple(w))
            return label, self.flops[key] * self.calls[key] if key in self.flops else None
        return "conv", None


@contextlib.contextmanager
def quiet_fds():
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


def _profiled_events(model, lr: torch.Tensor, scale: int, device: torch.device) -> tuple[list, ConvRecorder]:
    """The profiler's events of one warm `upscale` call, and the conv FLOPs of a recorded call."""
    from torch.profiler import ProfilerActivity, profile

    recorder = ConvRecorder()
    with recorder:
        model.upscale(lr, scale=scale)
    model.upscale(lr, scale=scale)  # warm
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with quiet_fds(), profile(activities=activities, record_shapes=True) as prof:
        model.upscale(lr, scale=scale)
        sync(device)
    return list(prof.events()), recorder


def _op_groups(events: list, cuda: bool) -> dict[tuple, list]:
    """Self time per (op, input shapes, inside prepare_input): [us, calls, name, shapes, in_prepare]."""
    prepare = [(e.time_range.start, e.time_range.end, e.thread) for e in events if e.name == "facesr::prepare_input"]
    groups: dict[tuple, list] = {}
    for e in events:
        us = float(e.self_device_time_total if cuda else e.self_cpu_time_total)
        if us <= 0 or e.name.startswith("facesr::"):
            continue
        in_prepare = any(a <= e.time_range.start and e.time_range.end <= b and t == e.thread for a, b, t in prepare)
        shapes = [list(s) for s in (e.input_shapes or [])]
        g = groups.setdefault((e.name, str(shapes), in_prepare), [0.0, 0, e.name, shapes, in_prepare])
        g[0] += us
        g[1] += 1
    return groups


def _op_rows(groups: dict[tuple, list], recorder: ConvRecorder) -> tuple[list, dict[str, float], dict[str, list]]:
    """Rows (us, label, category, GFLOP/s) of the non-conv op groups, the time per category,
    and the convs by label: [us, flops of all calls]."""
    share: dict[str, float] = {}
    convs: dict[str, list] = {}
    rows = []
    for us, _count, name, shapes, in_prepare in groups.values():
        cat = "resize" if in_prepare else category(name)
        share[cat] = share.get(cat, 0.0) + us
        label = name.replace("aten::", "")
        if in_prepare:
            label = "bicubic pre-upsampling (" + label + ")"
        elif cat == "conv":
            label, f = recorder.describe(shapes)
            c = convs.setdefault(label, [0.0, f])
            c[0] += us
            continue
        else:
            dims = [d for d in shapes if d]
            if dims:
                label += " " + "x".join(str(d) for d in dims[0])
        rows.append((us, label, cat, None))
    return rows, share, convs


def profile_ops(model, lr: torch.Tensor, scale: int, device: torch.device) -> dict:
    """One profiled `upscale` call: the share of time per op category (the bicubic
    pre-upsampling of `prepare_input` counted as "resize"), the convs' GFLOP/s, and the top
    op groups (label, % of time, GFLOP/s where known)."""
    events, recorder = _profiled_events(model, lr, scale, device)
    groups = _op_groups(events, device.type == "cuda")
    total_us = sum(g[0] for g in groups.values()) or 1.0
    rows, share, convs = _op_rows(groups, recorder)
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
