"""The per-CPU-class table of the modes file: which mode `upscale()` picks on each CPU class
measured so far (hub_models/inference_modes.json), with the class of this machine marked."""

from __future__ import annotations

import json
from pathlib import Path


def modes_markdown(modes_file: Path, this_class: str, md_table) -> str:
    data = json.loads(modes_file.read_text()) if modes_file.is_file() else {}
    modes = data.get("modes", {})
    classes = sorted({k for per in modes.values() for k in per} | {this_class})
    evidence = data.get("evidence", {})
    machines = {}
    for per in evidence.values():
        for key, ev in per.items():
            machines.setdefault(key, ev.get("machine", "?"))
    head = ("**Modes per CPU class** (`hub_models/inference_modes.json`: what `upscale()` picks on a CPU of each "
            "class, by its bf16 arithmetic and usable cores; a class not listed runs fp32 channels_last). This "
            f"machine is `{this_class}`. Measured on: "
            + "; ".join(f"`{k}` {machines.get(k, 'not measured')}" for k in classes) + ".\n")
    rows = [[arch, *[per.get(k, "(channels_last: not measured)" if k.startswith("cpu") else "-") for k in classes]]
            for arch, per in sorted(modes.items())]
    return head + "\n" + md_table(["model", *[f"`{k}`" for k in classes]], rows)
