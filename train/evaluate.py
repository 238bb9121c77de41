"""The evaluation command: every number in a model card or the README comes from here.

    python -m train.evaluate checkpoints/rafsr-x4 --data ../shared/data/celeba_test1000/HR \\
        --dataset "CelebA-1000" --scale 4 --update-card

The protocol (LR made once by `hub_models.degradations.bicubic_lr_8bit`, scores by
`hub_models.metrics.evaluate`, per image then averaged; model and bicubic on the same LR) is
`hub_models.evaluation.evaluate_model`; this file is its command line.

`--degradation real-world` scores on AGRNet-HR's real-world degradation instead (eq. 28, one fixed
draw per image: `hub_models.degradations.real_world_lr_fixed`).

`--update-card` stores the result in the model folder's `eval_results.json` (one row per
dataset/scale/protocol/degradation, replaced when measured again) and rewrites its README.md card.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import hub_models
from hub_models import metrics
from hub_models.card import weights_terms
from hub_models.evaluation import DEGRADATIONS, evaluate_model, load_hr  # noqa: F401 (the card protocol; re-exported)
from hub_models.hub import folder_model_name
from train.data import list_images


def rewrite_card(folder: Path, model=None) -> None:
    """Regenerate README.md and LICENSE.md from the folder's training.json, eval_results.json
    and example images (examples/*.png)."""
    folder = Path(folder)
    model = model or hub_models.load(folder)
    training = json.loads((folder / "training.json").read_text()) if (folder / "training.json").is_file() else None
    rows = json.loads((folder / "eval_results.json").read_text()) if (folder / "eval_results.json").is_file() else None
    examples = {p.relative_to(folder).as_posix(): None for p in sorted(folder.glob("examples/*.png"))}
    name = folder_model_name(folder) if folder.parent.name == "checkpoints" else None
    model.generate_model_card(eval_results=rows, training=training, name=name, examples=examples).save(folder / "README.md")
    terms = weights_terms(training, rows)["text"]
    if terms:
        (folder / "LICENSE.md").write_text(terms)


def store_result(folder: Path, row: dict) -> None:
    path = Path(folder) / "eval_results.json"
    rows = json.loads(path.read_text()) if path.is_file() else []
    def key(r):
        return r["dataset"], r["scale"], r["protocol"], r.get("degradation", "bicubic")

    rows = [r for r in rows if key(r) != key(row)] + [row]
    rows.sort(key=key)
    path.write_text(json.dumps(rows, indent=2))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="checkpoint name, saved folder, Hub repo id, or bicubic-xN")
    p.add_argument("--data", required=True, help="folder of HR images")
    p.add_argument("--list", help="file of image names inside --data")
    p.add_argument("--dataset", help="dataset name for the card (default: the folder name)")
    p.add_argument("--scale", type=int, nargs="+", help="scale(s) (default: the model's)")
    p.add_argument("--protocol", default="dic", choices=sorted(metrics.PROTOCOLS))
    p.add_argument("--degradation", default="bicubic", choices=DEGRADATIONS,
                   help="how the LR is made: bicubic (the papers' benchmark) or real-world (AGRNet eq. 28, the "
                        "same fixed draw per image for every model; name the --dataset accordingly)")
    p.add_argument("--limit", type=int, help="only the first N images (quick checks; not for cards)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--update-card", action="store_true", help="write eval_results.json and rewrite the card")
    p.add_argument("--json", help="also write the result rows to this file")
    args = p.parse_args(argv)
    if args.update_card and args.limit:
        p.error("--update-card needs the full set (no --limit): cards only hold full evaluations")
    return args


def evaluation_rows(argv: list[str]) -> tuple[argparse.Namespace, object, list[dict]]:
    """(parsed arguments, model, one result row per scale) for the command line `argv`; each row
    records the evaluation command that made it (without `--json FILE`, which only copies the rows)."""
    args = parse_args(argv)
    model = hub_models.load(args.model)
    paths = list_images(args.data, args.list)[: args.limit]
    hr_images = load_hr(paths)
    dataset = args.dataset or Path(args.data).resolve().name
    shown = [a for i, a in enumerate(argv)
             if a != "--json" and not a.startswith("--json=") and (i == 0 or argv[i - 1] != "--json")]
    command = "python -m train.evaluate " + " ".join(shlex.quote(a) for a in shown)
    rows = []
    for scale in args.scale or model.supported_scales:
        result = evaluate_model(model, hr_images, scale, args.protocol, args.batch_size, degradation=args.degradation)
        rows.append({"dataset": dataset, "scale": scale, "protocol": args.protocol,
                     **({"degradation": args.degradation} if args.degradation != "bicubic" else {}),
                     "num_images": result["num_images"], "command": command, "model": result["model"],
                     "bicubic": result["bicubic"], "seconds_per_image": result["seconds_per_image"]})
        print(f"{args.model} x{scale} on {dataset} ({result['num_images']} images, protocol {args.protocol}):")
        for who in ("model", "bicubic"):
            print(f"  {who:8s} " + "  ".join(f"{k} {v:.4f}" for k, v in result[who].items()))
    return args, model, rows


def main(argv=None) -> int:
    args, model, rows = evaluation_rows(list(sys.argv[1:] if argv is None else argv))
    if args.update_card:
        folder = Path(args.model) if Path(args.model).is_dir() else hub_models.registry.CHECKPOINT_DIR / args.model
        for row in rows:
            store_result(folder, row)
        rewrite_card(folder, model)
        print(f"card updated: {folder / 'README.md'}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
