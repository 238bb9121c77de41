"""Ship a trained run as `checkpoints/<name>/`: the smallest weight storage measured harmless,
then the full evaluation into the card.

    python -m train.ship runs/rafsr-x4/best --name rafsr-x4 \\
        --celeba ../shared/data/celeba_test1000/HR --utk ../shared/data/utkface

Steps: (1) on the first `--storage-check` CelebA faces, refuse a model below bicubic, then compare
the fp32 weights with their int8-, then fp16-rounded copies (`hub_models.storage`) on those and on
as many faces of each validation set, and store the first that moves Y-PSNR by less than 0.01 dB
on all of them (or `--storage`; the measured changes are written into the card); (2) save_pretrained into checkpoints/<name>/ with the run's training record;
(3) `train.evaluate` on CelebA-1000 (and, for real-world-trained models, on CelebA-1000 with
the real-world degradation) and on the UTKFace validation list at the model's scale(s), each stored in eval_results.json, and the card rewritten from them with example
images (train.cards).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import hub_models
from hub_models import storage
from hub_models.degradations import real_world_ranges
from hub_models.evaluation import evaluate_model, load_hr
from hub_models.registry import CHECKPOINT_DIR
from hub_models.training_record import legacy_batch, legacy_overridden, storage_line
from train.cards import write_examples
from train.config import note_batch_override, note_schedule_override
from train.data import list_images
from train.evaluate import main as evaluate_main, rewrite_card
from train.plan import REAL_WORLD_BENCHMARK
from train.recipes import RECIPES, get_recipe
from train.record import add_warm_start_history

STORAGE_TOLERANCE_DB = 0.01


def mark_command_line_overrides(training: dict, architecture: str) -> dict:
    """Records exported before train.py marked --lr/--lr-halve-every/--batch-size as ours (their
    sentences are all they hold): compare their schedule and batch with the recipe's and say so
    in the recipe sources (in place). Records that keep their overrides as data are left alone."""
    used, sources = training.get("recipe") or {}, training.get("recipe sources")
    if "overrides" in training or architecture not in RECIPES or not isinstance(sources, dict):
        return training
    recipe = get_recipe(architecture)
    if not legacy_overridden(training, "optimizer"):
        note_schedule_override(recipe, used.get("lr"), used.get("lr_halve_every"))
        if {"lr", "lr_halve_every"} & set(recipe.overrides):
            sources["optimizer"] = recipe.source["optimizer"]
    if not legacy_overridden(training, "batch_size"):
        note_batch_override(recipe, legacy_batch(training.get("batch")))  # "8 x 1 process(es), HR crops 96x96"
        if "batch_size" in recipe.overrides:
            sources["batch_size"] = recipe.source["batch_size"]
    return training


def choose_storage(model, check_sets: dict[str, list], scale: int, forced: str | None = None) -> dict:
    """The weight storage (`hub_models.storage.STORAGES`): `forced`, or the smallest whose rounding
    moves Y-PSNR at `scale` by less than `STORAGE_TOLERANCE_DB` on every set of `check_sets`
    ({name: HR faces}); with the change each tried storage measured on each set."""
    def psnr(net, hr):
        return evaluate_model(net, hr, scale, with_bicubic=False)["model"]["psnr_y"]

    base = {name: psnr(model, hr) for name, hr in check_sets.items()}
    tried = [forced] if forced else list(storage.STORAGES[:-1])
    measured, chosen = {}, forced or "fp32"
    for name in tried:
        if name == "fp32":
            break
        rounded = storage.rounded(model, name)
        measured[name] = {set_name: psnr(rounded, hr) - base[set_name] for set_name, hr in check_sets.items()}
        if not forced and all(abs(d) < STORAGE_TOLERANCE_DB for d in measured[name].values()):
            chosen = name
            break
    return {"dtype": chosen, "measured_db": measured, "faces": {k: len(v) for k, v in check_sets.items()},
            "scale": scale, "tolerance_db": STORAGE_TOLERANCE_DB, "forced": bool(forced)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_folder", help="a save_pretrained folder from training (e.g. runs/X/best)")
    p.add_argument("--name", required=True, help="checkpoint name: checkpoints/<name>/")
    p.add_argument("--celeba", required=True, help="CelebA-1000 HR folder (the card benchmark)")
    p.add_argument("--utk", help="UTKFace folder with val.txt (validation figures, as UTKFace-val)")
    p.add_argument("--val-data", metavar="DIR", help="another folder with val.txt to report (as <folder>-val), "
                   "e.g. ../shared/data/celeba_wild")
    p.add_argument("--scale", type=int, nargs="+", help="scales to evaluate (default: the model's)")
    p.add_argument("--storage-check", type=int, default=200,
                   help="faces of CelebA (and of each validation set) for the bicubic check and the storage choice")
    p.add_argument("--storage", choices=storage.STORAGES,
                   help="store the weights so, whatever the check measures (it is still measured and stated): "
                        "int8 where fp16 does not fit the checkout (AGRNet); default: the smallest measured harmless")
    p.add_argument("--skip-eval", action="store_true", help="keep the folder's eval_results.json (same weights re-shipped)")
    p.add_argument("--status", help="a line for the card on the state of these weights (e.g. undertrained, why)")
    p.add_argument("--allow-below-bicubic", action="store_true",
                   help="ship even if the model is below bicubic on the first --storage-check CelebA faces")
    args = p.parse_args(argv)

    run = Path(args.run_folder)
    model = hub_models.load(run)
    training = json.loads((run / "training.json").read_text()) if (run / "training.json").is_file() else {}
    scales = args.scale or [s for s in model.supported_scales if s <= 8]

    hr = load_hr(list_images(args.celeba)[: args.storage_check])
    first_check = evaluate_model(model, hr, scales[-1])
    base, bicubic = first_check["model"]["psnr_y"], first_check["bicubic"]["psnr_y"]
    if base < bicubic and not args.allow_below_bicubic:
        # e.g. a BatchNorm net trained on crops much smaller than the benchmark's input
        print(f"not shipped: {run} gives Y-PSNR {base:.2f} dB on {len(hr)} CelebA faces at x{scales[-1]}, "
              f"below bicubic ({bicubic:.2f} dB); train on inputs of the benchmark's size, or pass "
              f"--allow-below-bicubic", file=sys.stderr)
        return 2
    add_warm_start_history(training)  # runs exported before train.py recorded the history
    if (training.get("recipe") or {}).get("degradation") == "real_world" and "degradation ranges" not in training:
        training["degradation ranges"] = real_world_ranges(training["recipe"].get("hr_size"))  # runs before session 10
    mark_command_line_overrides(training, model.architecture)
    if args.status:
        training = {"status": args.status, **training}
    check_sets = {"CelebA": hr}
    for folder in filter(None, (args.utk, args.val_data)):  # the validation faces ship also reports
        check_sets[f"{Path(folder).resolve().name}-val"] = load_hr(list_images(folder, "val.txt")[: args.storage_check])
    training["storage"] = choose_storage(model, check_sets, scales[-1], args.storage)
    print(storage_line(training["storage"]))

    target = CHECKPOINT_DIR / args.name
    target.mkdir(parents=True, exist_ok=True)
    if not args.skip_eval:  # new weights: old results no longer describe them
        (target / "eval_results.json").unlink(missing_ok=True)
    model.weights_storage = training["storage"]["dtype"]
    model.save_pretrained(target, model_card_kwargs={"training": training, "name": args.name})
    (target / "training.json").write_text(json.dumps(training, indent=2, default=str))
    if not args.skip_eval:
        scale_args = ["--scale", *map(str, scales)]
        evaluate_main([args.name, "--data", args.celeba, "--dataset", "CelebA-1000", *scale_args, "--update-card"])
        if (training.get("recipe") or {}).get("degradation") == "real_world":  # AGRNet-HR: its own degradation too
            evaluate_main([args.name, "--data", args.celeba, "--dataset", REAL_WORLD_BENCHMARK, "--degradation",
                           "real-world", *scale_args, "--update-card"])
        if args.utk:
            evaluate_main([args.name, "--data", args.utk, "--list", "val.txt", "--dataset", "UTKFace-val",
                           *scale_args, "--update-card"])
        if args.val_data:
            evaluate_main([args.name, "--data", args.val_data, "--list", "val.txt",
                           "--dataset", f"{Path(args.val_data).resolve().name}-val", *scale_args, "--update-card"])
    write_examples(target)
    rewrite_card(target)
    print(f"shipped {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
