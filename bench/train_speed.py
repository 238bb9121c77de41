"""Training speed: images/s of one full training step (train.py's own `Trainer`: the
recipe's degradation, forward, every loss term including VGG and discriminator, backward,
Adam, and the discriminator update for GANs) per registered model, default configs, HR 128,
in fp32 NCHW, fp32 channels_last and bf16 channels_last (fp16 too on CUDA); `--modes` adds the
torch.compile modes. A mode whose loss or weights turn non-finite is marked unusable, never "best".

    python -m bench.train_speed --quick                  # < 10 min on 2 CPU cores
    python -m bench.train_speed --batch 4 --steps 5 --out bench/results/train_speed.md

Each (model, mode) runs in its own process (accelerate's precision state is per process,
and memory stays separate), on random smooth HR crops: speed does not depend on the data.
A run that exceeds its time cap is stopped; its row then gives an upper bound ("< x") from
the time already spent, which is enough to rule a mode out. `default_precision()` in
train.py picks bf16 only where the hardware computes it natively (CUDA, AVX512-BF16/AMX);
this table is the evidence for that rule.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.report import Column, table

MODES = {  # name -> (mixed precision, channels_last, accelerate's dynamo_backend)
    "fp32 NCHW": ("no", False, "no"),
    "fp32 channels_last": ("no", True, "no"),
    "bf16 channels_last": ("bf16", True, "no"),
    "fp16 channels_last": ("fp16", True, "no"),  # CUDA only
    # torch.compile of the training step through accelerate (`accelerate launch --dynamo_backend
    # inductor`, or ACCELERATE_DYNAMO_BACKEND=inductor for `python -m train.train`); not in the default set
    "fp32 channels_last compiled": ("no", True, "inductor"),
    "bf16 channels_last compiled": ("bf16", True, "inductor"),
}


def _smooth_batch(n: int, size: int, seed: int = 0):
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 8, 8, generator=g)
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


def worker(model: str, mode: str, batch: int, hr_size: int, warmup: int, steps: int) -> None:
    """One (model, mode): JSON lines on stdout ("phase" events, then the result)."""
    import torch
    from accelerate import Accelerator

    import hub_models
    from train.recipes import get_recipe
    from train.train import Trainer

    def emit(**kw):
        print(json.dumps(kw), flush=True)

    mixed, channels_last, dynamo = MODES[mode]
    recipe = get_recipe(model)
    recipe.hr_size, recipe.batch_size = hr_size, batch
    if recipe.degradation != "real_world" and len(recipe.scales) > 1 and not hub_models.capabilities(model).pre_upsampled:
        recipe.scales = recipe.scales[:1]
    acc = Accelerator(mixed_precision=mixed, cpu=not torch.cuda.is_available(), dynamo_backend=dynamo)
    torch.manual_seed(0)
    trainer = Trainer(recipe, acc, channels_last=channels_last)
    hr = _smooth_batch(batch, hr_size).to(acc.device).contiguous(
        memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    params = sum(p.numel() for p in trainer.net.parameters())

    finite = True

    def one(step):
        nonlocal finite
        loss, _, d_loss = trainer.losses(hr, degrade_seed=step)
        finite = finite and bool(torch.isfinite(loss))
        trainer.update(loss, d_loss, step)
        finite = finite and all(bool(torch.isfinite(p).all()) for p in trainer.net.parameters())
        if acc.device.type == "cuda":
            torch.cuda.synchronize()

    emit(phase="warmup", t=time.time())
    for i in range(warmup):
        one(i)
    emit(phase="timed", t=time.time())
    start = time.time()
    for i in range(steps):
        one(warmup + i)
        emit(phase="step", done=i + 1, t=time.time())
    elapsed = time.time() - start
    emit(phase="result", img_per_s=batch * steps / elapsed, s_per_step=elapsed / steps, params=params, finite=finite)


def _events(proc: subprocess.Popen, lines: queue.Queue, deadline: float) -> dict:
    """The worker's last event of each phase, read until its result, its exit or `deadline`."""
    events: dict = {}
    while True:
        try:
            line = lines.get(timeout=min(1.0, max(0.05, deadline - time.time())))
        except queue.Empty:
            line = None
        if line:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            events[event["phase"]] = event
            if event["phase"] == "result":
                return events
        if time.time() >= deadline or (line is None and proc.poll() is not None and lines.empty()):
            return events


def _upper_bound(events: dict, args) -> dict:
    """A stopped run's images/s: at most one more step's worth of images over the time spent."""
    now = time.time()
    if "step" in events:
        return {"img_per_s": args.batch * (events["step"]["done"] + 1) / (now - events["timed"]["t"]), "bound": True}
    if "timed" in events:
        return {"img_per_s": args.batch / (now - events["timed"]["t"]), "bound": True}
    if "warmup" in events:
        return {"img_per_s": args.batch * args.warmup / (now - events["warmup"]["t"]), "bound": True}
    return {"error": f"no step within {args.cap:.0f} s (setup)"}


def run_one(model: str, mode: str, args) -> dict:
    """Run `worker` in a subprocess under a time cap; parse its events."""
    cmd = [sys.executable, "-m", "bench.train_speed", "--worker", model, mode, "--batch", str(args.batch),
           "--hr-size", str(args.hr_size), "--warmup", str(args.warmup), "--steps", str(args.steps)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=Path(__file__).resolve().parent.parent)  # finds the train package
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    stderr: list[str] = []
    threading.Thread(target=lambda: stderr.extend(proc.stderr), daemon=True).start()
    events = _events(proc, lines, time.time() + args.cap)
    timed_out = "result" not in events and proc.poll() is None
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    if "result" in events:
        return {"img_per_s": events["result"]["img_per_s"], "bound": False, "params": events["result"]["params"],
                "finite": events["result"].get("finite", True)}
    if timed_out:
        return _upper_bound(events, args)
    return {"error": ("".join(stderr).strip().splitlines() or ["failed"])[-1][:160]}


def _param_count(model: str) -> int | None:
    """Parameters of the default config, built on the meta device (no memory, no time)."""
    import torch

    import hub_models

    try:
        with torch.device("meta"):
            return sum(p.numel() for p in hub_models.create(model).parameters())
    except Exception:  # a class that cannot be built on meta: leave the cell empty
        return None


def environment() -> str:
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    from train.hardware import cpu_flags, cpu_has_native_bf16, cpu_model_name

    has = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in cpu_flags()]
    flags = f"{cpu_model_name()}; {', '.join(has) or 'no AVX2'}"
    return (f"CPU {flags}; {os.cpu_count()} logical CPUs, torch threads {torch.get_num_threads()}; "
            f"native bf16 (AVX512-BF16/AMX): {cpu_has_native_bf16()}; torch {torch.__version__}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", help="default: every registered model with a recipe")
    p.add_argument("--modes", nargs="+", choices=list(MODES), help="default: the three fp32/bf16 modes (+ fp16 on CUDA)")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--hr-size", type=int, default=128)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--cap", type=float, default=300, help="seconds per (model, mode) before it is stopped")
    p.add_argument("--quick", action="store_true", help="1 warm-up + 1 timed step, 30 s cap per run (< 10 min)")
    p.add_argument("--out", default="bench/results/train_speed.md")
    p.add_argument("--worker", nargs=2, metavar=("MODEL", "MODE"), help=argparse.SUPPRESS)
    return p


def _speed_cell(r: dict) -> str:
    if "error" in r:
        return r["error"]
    broken = "" if r.get("finite", True) else " (non-finite loss or weights: unusable)"
    return f"{'< ' if r['bound'] else ''}{r['img_per_s']:.2f}{broken}"


def _best(row: dict) -> str:
    exact = [(r["img_per_s"], m) for m, r in row["by_mode"].items()
             if "error" not in r and not r["bound"] and r.get("finite", True)]
    return max(exact)[1] if exact else "?"


def columns(modes: list[str]) -> list[Column]:
    """The table: model, parameters, images/s per mode (right-aligned), the best exact mode."""
    return [Column("model", "model"),
            Column("params", "params", lambda v: f"{v / 1e6:.2f} M" if v else "?", align="right"),
            *[Column(m, m, value=lambda row, m=m: _speed_cell(row["by_mode"][m]), align="right") for m in modes],
            Column("best", "best", value=_best)]


def markdown(results: dict, models: list[str], modes: list[str], args, argv, minutes: float) -> str:
    rows = []
    for model in models:
        by_mode = {m: results[(model, m)] for m in modes}
        params = next((r["params"] for r in by_mode.values() if "params" in r), None) or _param_count(model)
        rows.append({"model": model, "params": params, "by_mode": by_mode})
    return "\n".join([
        f"Training speed, images/s (one full `train.py` step: degradation, forward, all recipe losses incl. "
        f"VGG16 and the discriminator, backward, optimiser steps), default configs, HR {args.hr_size}, "
        f"batch {args.batch}, {args.warmup} warm-up + {args.steps} timed steps; "
        f"\"< x\": stopped at the {args.cap:.0f} s cap, an upper bound.",
        "",
        f"Environment: {environment()}. Command: `python -m bench.train_speed {shlex.join(argv)}` ({minutes:.1f} min).",
        "",
        table(columns(modes), rows),
    ]) + "\n"


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.worker:
        worker(args.worker[0], args.worker[1], args.batch, args.hr_size, args.warmup, args.steps)
        return 0
    if args.quick:
        args.warmup, args.steps, args.cap = 1, 1, 30.0

    import torch

    import hub_models
    from train.recipes import RECIPES

    models = args.models or [m for m in sorted(hub_models.MODELS) if m in RECIPES]
    modes = args.modes or [m for m in MODES if (torch.cuda.is_available() or not m.startswith("fp16")) and MODES[m][2] == "no"]
    results: dict = {}
    t0 = time.time()
    for model in models:
        for mode in modes:
            results[(model, mode)] = r = run_one(model, mode, args)
            print(f"{model:10s} {mode:20s} {r.get('error') or _speed_cell(r) + ' img/s'}", flush=True)
    text = markdown(results, models, modes, args, argv if argv is not None else sys.argv[1:], (time.time() - t0) / 60)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
