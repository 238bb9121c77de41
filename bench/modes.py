"""The modes file (hub_models/inference_modes.json): a run's chosen modes merged into it
(`write_modes_file`), and its per-CPU-class table: which mode `upscale()` picks on each CPU
class measured so far, with the class of this machine marked."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from bench.report import Column, table
from bench.speed import MAX_DPSNR, MIN_SPEEDUP
from hub_models.base import mode_key


def _class_column(key: str) -> Column:
    missing = "(channels_last: not measured)" if key.startswith("cpu") else "-"
    return Column(key, f"`{key}`", value=lambda row: row["per"].get(key, missing))


def modes_markdown(modes_file: Path, this_class: str) -> str:
    """The per-CPU-class table of `modes_file`, this machine's class always among its columns."""
    data = json.loads(modes_file.read_text()) if modes_file.is_file() else {}
    modes = data.get("modes", {})
    classes = sorted({k for per in modes.values() for k in per} | {this_class})
    machines = {}
    for per in data.get("evidence", {}).values():
        for key, ev in per.items():
            machines.setdefault(key, ev.get("machine", "?"))
    head = ("**Modes per CPU class** (`hub_models/inference_modes.json`: what `upscale()` picks on a CPU of each "
            "class, by its bf16 arithmetic and usable cores; a class not listed runs fp32 channels_last). This "
            f"machine is `{this_class}`. Measured on: "
            + "; ".join(f"`{k}` {machines.get(k, 'not measured')}" for k in classes) + ".\n")
    columns = [Column("model", "model"), *[_class_column(k) for k in classes]]
    return head + "\n" + table(columns, [{"model": arch, "per": per} for arch, per in sorted(modes.items())])


ABOUT = ("Default numeric mode of SRModel.upscale per architecture and CPU class (bf16 arithmetic and "
         "usable cores, hub_models.machine.cpu_class; unlisted classes run fp32 channels_last) or GPU "
         "device type, chosen by "
         "`python -m bench --write-modes`: the fastest measured mode that is >= "
         f"{MIN_SPEEDUP:.2f}x faster than fp32 and changes Y-PSNR by < {MAX_DPSNR} dB. Override per model "
         "with `model.inference_mode = 'fp32'` or for all with $FACESR_INFERENCE_MODE.")


def _evidence(r: dict, env: dict) -> dict:
    """What a stored mode choice rests on: both timings, the drift, the machine and the run."""
    chosen = next(m for m in r["modes"] if m["mode"] == r["default_mode"])
    return {
        "fp32_ms": round(r["fp32_ms"], 2), "mode_ms": round(r["default_ms"], 2),
        "dpsnr_y": None if chosen.get("dpsnr_y") is None else round(chosen["dpsnr_y"], 5),
        "max_abs_diff": chosen.get("max_abs_diff"), "drift_weights": r.get("drift_weights"),
        "output": f"{r['out']}x{r['out']}", "machine": env["device_desc"], "threads": env["threads"],
        "torch": torch.__version__, "date": env["date"], "load_at_start": env["load_start"],
    }


def _record_backends(data: dict, measured: list[dict], key: str) -> None:
    """Engines >= 20 % faster than the default mode (bench.backends) on this CPU class."""
    backends, evidence = data.setdefault("backends", {}), data["evidence"]
    for r in measured:
        per = backends.setdefault(r["architecture"], {})
        if r.get("backend"):
            per[key] = r["backend"]
            evidence.setdefault(r["architecture"], {})[key]["backend"] = r["backend_evidence"]
        else:
            per.pop(key, None)
    data["backends"] = {a: per for a, per in sorted(backends.items()) if per}


def write_modes_file(path: Path, results: list[dict], device_type: str, env: dict) -> dict:
    """Merge this run's choices ({architecture: {device_type: mode}}) into `path`."""
    data = json.loads(path.read_text()) if path.is_file() else {}
    data["about"] = ABOUT
    modes = data.setdefault("modes", {})
    evidence = data.setdefault("evidence", {})
    key = mode_key(device_type)
    measured = [r for r in results if r.get("mode_source") == "measured"]
    for r in measured:
        modes.setdefault(r["architecture"], {})[key] = r["default_mode"]
        evidence.setdefault(r["architecture"], {})[key] = _evidence(r, env)
    if device_type == "cpu":
        _record_backends(data, measured, key)
    else:
        data["backends"] = {a: per for a, per in sorted(data.setdefault("backends", {}).items()) if per}
    data["modes"] = dict(sorted(modes.items()))
    data["evidence"] = dict(sorted(evidence.items()))
    path.write_text(json.dumps(data, indent=2) + "\n")
    return data
