"""Run an A/B experiment's evaluations from its spec and write the result docs/experiments.md shows.

    python -m bench.experiment bench/results/experiments/specs/validation_proxy.json

A spec (hand-written, no figures) names the question, the checkpoints (each with the command
that trained it) and the evaluation sets (each with the command that made it). Every figure is
measured here by `train.evaluate` (its command is stored beside it) and written to
`bench/results/experiments/<spec name>.json`, which `python -m bench.readme_tables` renders into the
"experiments" block of docs/experiments.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from hub_models.training_record import card_lines
from train import evaluate
from train.data import list_images, read_rgb, sharpness

OUTPUT_DIR = Path(__file__).resolve().parent / "results" / "experiments"


def best_checkpoint(model: str) -> dict:
    """Steps and wall time of the stage that made `model` (its training.json), for the table."""
    path = Path(model) / "training.json"
    if not path.is_file():
        return {"steps": "n/a", "wall time": "n/a"}
    record = card_lines(json.loads(path.read_text()))  # the record as its card says it (hub_models.training_record)
    return {"steps": record.get("steps"), "wall time": record.get("wall time"), "batch": record.get("batch"),
            "total training": record.get("total training")}


def median_sharpness(folder: str) -> float:
    """Median variance of the Laplacian of the folder's images as they are (`train.data.sharpness`)."""
    images = (read_rgb(p) for p in list_images(folder))
    return float(np.median([sharpness(im.transpose(2, 0, 1)) for im in images if im is not None]))


def run(spec: dict, output: Path) -> dict:
    result = {key: spec[key] for key in ("title", "question", "hardware")}
    result["datasets"] = [{**d, "sharpness_median": median_sharpness(d["data"])} for d in spec["datasets"]]
    result["runs"] = []
    for entry in spec["runs"]:
        rows = []
        for dataset in spec["datasets"]:
            argv = [entry["model"], "--data", dataset["data"], "--dataset", dataset["name"], "--scale", str(spec["scale"])]
            rows.append(evaluate.evaluation_rows(argv)[2][0])
        result["runs"].append({"setting": entry["setting"], "train_command": entry.get("train_command", ""),
                               "results": rows, "best_checkpoint": best_checkpoint(entry["model"])})
    output.write_text(json.dumps(result, indent=1) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", help="bench/results/experiments/specs/<name>.json")
    p.add_argument("--output", help=f"result file (default: {OUTPUT_DIR}/<spec name>.json)")
    args = p.parse_args(argv)
    spec_path = Path(args.spec)
    try:
        spec = json.loads(spec_path.read_text())
        missing = [d["data"] for d in spec["datasets"] if not Path(d["data"]).is_dir()]
        missing += [r["model"] for r in spec["runs"] if not Path(r["model"]).exists()]
    except (OSError, json.JSONDecodeError, KeyError) as err:
        print(f"error: spec {spec_path}: {err}", file=sys.stderr)
        return 2
    if missing:
        print("error: not found (make them with the spec's commands first): " + ", ".join(missing), file=sys.stderr)
        return 2
    output = Path(args.output) if args.output else OUTPUT_DIR / spec_path.name
    run(spec, output)
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
