"""The training record of a run (training.json beside every exported model, and the card's
"Training" section): numbers and names only, in the layout `hub_models.training_record`
describes and renders. Also the warm-start history: the stages behind --init-from weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

import hub_models
from hub_models.training_record import FORMAT, record_stages, stage_of
from hub_models.degradations import real_world_ranges
from train.config import precision_name, validation_settings
from train.distributed import batchnorm_count
from train.hardware import cpu_model_name


class RunContext:
    """What the training record needs besides the history."""

    def __init__(self, recipe, args, sources, accelerator, trainer):
        self.recipe, self.args, self.sources, self.accelerator, self.trainer = recipe, args, sources, accelerator, trainer
        # resolved once, at the start: the folders behind --init-from may be replaced later
        # (a run warm-started from checkpoints/X is usually shipped back as checkpoints/X)
        self.warm_stages = warm_start_history(args.init_from)


def warm_start_history(init_from: str | None, _depth: int = 0) -> list[dict]:
    """The training stages behind `--init-from` weights (from their training.json, following
    their own warm starts), oldest first, so a card of warm-started weights accounts for all
    the training they had."""
    if not init_from or init_from == "none" or _depth > 20:
        return []
    folder = Path(init_from) if Path(init_from).is_dir() else hub_models.registry.CHECKPOINT_DIR / init_from
    try:
        prev = json.loads((folder / "training.json").read_text())
    except (OSError, ValueError):
        return [{"from": init_from, "steps": None, "hours": None}]
    earlier = record_stages(prev)
    if earlier is None:
        earlier = warm_start_history(prev.get("warm start"), _depth + 1)
    return earlier + [stage_of(prev, init_from)]


def add_warm_start_history(record: dict, stages: list[dict] | None = None) -> dict:
    """Record the stages behind record["warm start"] (`stages`, else resolved now) as
    record["stages"], unless the record lists them already (in place; returns it)."""
    if record_stages(record) is None:
        record["stages"] = stages if stages is not None else warm_start_history(record.get("warm start"))
    return record


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({cpu_model_name()}, {torch.get_num_threads()} threads)"


def training_record(context: RunContext, history: dict) -> dict:
    """The record of the run so far (`history`: the loop's, with "step" the exported weights')."""
    recipe, args, sources, accelerator, trainer = (context.recipe, context.args, context.sources,
                                                   context.accelerator, context.trainer)
    processes = accelerator.num_processes
    record = {
        "_format": FORMAT,
        "datasets": [Path(source["folder"]).resolve().name for source in sources],
        "data sources": [{"folder": Path(src["folder"]).resolve().name, "weight": src["weight"],
                          "crop_range": list(src["crop_range"]), "drop_blurry": src["drop_blurry"],
                          "kept": src.get("blur", {}).get("kept"), "of": src.get("blur", {}).get("of"),
                          "path": src["folder"], "list": args.train_list,
                          "threshold": src.get("blur", {}).get("threshold"),
                          "unreadable": src.get("blur", {}).get("unreadable", 0)}
                         for src in sources],
        "skipped loads": history.get("skipped_loads", 0),
        "steps": history.get("step"),
        "batch": {"per_process": recipe.batch_size, "processes": processes, "grad_accum": args.grad_accum,
                  "hr_size": recipe.hr_size},
        "hours": history["wall_s"] / 3600,
        "hardware": {"processes": processes, "device": device_name(accelerator.device)},
        "precision": {"mixed": precision_name(accelerator.mixed_precision), "channels_last": args.channels_last,
                      "compiled": accelerator.state.dynamo_plugin.backend.value.lower() != "no"},
        "recipe": {"losses": recipe.losses, "lr": recipe.lr, "betas": recipe.betas, "scales": recipe.scales,
                   "degradation": recipe.degradation, "lr_halve_every": recipe.lr_halve_every,
                   "hr_size": recipe.hr_size, "crop_range": list(recipe.crop_range)},
        "recipe sources": dict(recipe.sources),
        "overrides": recipe.overrides,
        "perceptual network": trainer.features.description if trainer.features is not None else "none",
        "warm start": args.init_from or "none",
        "ema": args.ema if trainer.ema is not None else 0.0,
        "validation": validation_settings(args, sources, recipe, history.get("val_size", recipe.hr_size)),
        "best validation": history.get("best_val"),
        "bicubic on validation": history.get("val_bicubic"),
        "final validation": history.get("last_val"),
    }
    if recipe.degradation == "real_world":
        record["degradation ranges"] = real_world_ranges(recipe.hr_size)
    if processes > 1:
        nets = [trainer.net] + ([trainer.disc_net] if trainer.disc_net is not None else [])
        record["batchnorm"] = {"processes": processes, "synced_layers": trainer.sync_bn_layers,
                               "layers": sum(batchnorm_count(net) for net in nets)}
    if history.get("resumed with changes"):
        record["resumed with changes"] = history["resumed with changes"]
    add_warm_start_history(record, context.warm_stages)
    if recipe.gan:
        record["discriminator"] = {"class": type(trainer.disc_net).__name__, "config": trainer.disc_kwargs,
                                   "adversarial": recipe.gan.adversarial, "lr": recipe.gan.lr, "betas": recipe.gan.betas}
    return record


def export(net, folder: Path, context: RunContext, history: dict, step: int, status: dict | None = None) -> None:
    """save_pretrained + training.json (the card's training record, kept for later card rewrites);
    `step` is the step of the exported weights (history["step"] is the last saved state's);
    `status`: how the run ended ({"ended": "finished" | "signal" | "max_time", ...})."""
    record = training_record(context, {**history, "step": step})
    if status:
        record["status"] = status
    net.save_pretrained(folder, model_card_kwargs={"training": record})
    (folder / "training.json").write_text(json.dumps(record, indent=2, default=str))
