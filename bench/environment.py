"""The run's environment (environment.json) and benchmark.md, the page of every table.

A run measures one part or both (`--part speed quality`). A part-only run merges into the
folder's previous results instead of wiping them: environment.json keeps the other part's
keys (`PART_KEYS`) and its run (`runs`: command, date, machine and load of the run that
measured each part), and benchmark.md keeps the other part's section (its speed.md or
quality.md, still in the folder)."""

from __future__ import annotations

import json
import os
import shlex
import time
from pathlib import Path

import torch

from bench.timing import load_average
from hub_models import metrics
from train.hardware import cpu_model_name

PARTS = ("speed", "quality")
#: the keys only a part's run writes (the others every run writes)
PART_KEYS = {
    "speed": ("out_size", "b16", "scaling_sizes", "memory_method", "peaks", "peak", "cpu_class", "mode_data_note",
              "load_end_speed"),
    "quality": (),
}
#: what `runs` records of the run that measured a part
RUN_KEYS = ("command", "date", "quick", "device", "threads", "torch", "device_desc", "load_start", "load_end",
            "seconds", "busy")


def _device_desc(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {cpu_model_name()} ({os.cpu_count()} cores, {torch.backends.cpu.get_cpu_capability()})"


def _busy(load_start: str, device: torch.device) -> str:
    try:
        busy = os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1)
    except OSError:
        busy = False
    if not busy or device.type != "cpu":
        return ""
    return (f"the machine was busy (1-min load {load_start.split('/')[0]} on {os.cpu_count()} cores): "
            "timings are pessimistic and noisy; with more threads than free cores every parallel op waits "
            "for a descheduled thread")


def run_environment(command: str, args, device: torch.device) -> dict:
    """What the run's tables say about the machine and the command, at its start."""
    env = {
        "command": command, "date": time.strftime("%Y-%m-%d %H:%M"), "quick": args.quick,
        "device": str(device), "threads": torch.get_num_threads(), "torch": torch.__version__,
        "device_desc": _device_desc(device), "load_start": load_average(), "out_size": args.size, "b16": 16,
        "scaling_sizes": args.scaling_sizes, "protocol": args.protocol,
        "protocol_desc": metrics.describe_protocol(args.protocol),
    }
    env["busy"] = _busy(env["load_start"], device)
    return env


def _parts_of(command: str) -> list[str]:
    """The parts a recorded `python -m bench ...` command measured (both without --part)."""
    words = shlex.split(command)
    if "--part" not in words:
        return list(PARTS)
    following = words[words.index("--part") + 1:]
    return [w for w in following[: next((i for i, w in enumerate(following) if w.startswith("-")), len(following))]
            if w in PARTS]


def recorded_runs(env: dict) -> dict[str, dict]:
    """{part: its run} of an environment.json (files written before `runs` existed: the one run
    they describe, for the parts its command measured)."""
    if "runs" in env:
        return dict(env["runs"])
    if not env.get("command"):
        return {}
    run = {k: env[k] for k in RUN_KEYS if k in env}
    return {part: run for part in _parts_of(env["command"])}


def merge_environment(previous: dict, env: dict, parts: list[str]) -> dict:
    """`env` of a run that measured `parts`, keeping from `previous` (the folder's last
    environment.json) the keys and the run of every part this run did not measure."""
    runs = recorded_runs(previous)
    kept = [p for p in PARTS if p in runs and p not in parts]
    merged = {k: previous[k] for p in kept for k in PART_KEYS[p] if k in previous}
    merged.update(env)
    runs.update({p: {k: env[k] for k in RUN_KEYS if k in env} for p in parts})
    merged["runs"] = {p: runs[p] for p in PARTS if p in runs}
    return merged


def write_environment(out_dir: Path, env: dict, parts: list[str]) -> dict:
    """environment.json of `out_dir`, merged with what the folder held; returns it."""
    path = out_dir / "environment.json"
    previous = {}
    if path.is_file():
        try:
            previous = json.loads(path.read_text())
        except ValueError:
            previous = {}
    merged = merge_environment(previous, env, parts)
    path.write_text(json.dumps(merged, indent=2, default=str) + "\n")
    return merged


def _run_line(run: dict) -> str:
    return (f"`{run['command']}` — {run['date']}, {run['device_desc']}, {run['threads']} threads, "
            f"torch {run['torch']}; load average {run['load_start']} at the start, {run['load_end']} at the end; "
            f"{run['seconds']:.0f} s." + ("\n\n**QUICK RUN: tiny configs, numbers are not benchmarks.**" if run.get("quick")
                                          else "")
            + (f"\n\n**Note: {run['busy']}.**" if run.get("busy") else ""))


def benchmark_markdown(env: dict, out_dir: Path) -> str:
    """benchmark.md: the run line of each part shown (one when both come from one run), then
    the section of each part from its speed.md / quality.md."""
    runs = {p: r for p, r in env["runs"].items() if (out_dir / f"{p}.md").is_file()}
    distinct = list({(r["command"], r["date"]): (p, r) for p, r in runs.items()}.values())
    if len(distinct) == 1:
        lines = [_run_line(distinct[0][1])]
    else:
        lines = [f"{p.capitalize()}: " + _run_line(r) for p, r in distinct]
    parts = ["# facesr-hub benchmark\n\n" + "\n\n".join(lines)]
    for part in runs:
        parts.append(f"## {part.capitalize()}\n\n" + (out_dir / f"{part}.md").read_text())
    return "\n\n".join(parts)


def speed_run(env: dict) -> dict | None:
    """The run that measured the speed part of an environment.json (None when none did)."""
    return recorded_runs(env).get("speed")
