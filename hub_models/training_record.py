"""The training record (`training.json`): what a run did, as data; the card's sentences are made here.

Training (`train/record.py`) writes numbers and names only; `card_lines` turns a record into
the card's "Training" entries, in the record's order; nothing reads a sentence back.
Format 2 (`"_format": 2`) holds, beside the keys the card shows as they are (`datasets`,
`steps`, `recipe`, `perceptual network`, `warm start`, the validation scores, `discriminator`):

    "data sources": [{"folder": "utkface", "weight": 0.5, "crop_range": [0.85, 1.0], "drop_blurry": 0.6,
                      "kept": 3722, "of": 9304, "path": "../shared/data/utkface", "list": "train.txt",
                      "threshold": 52.1, "unreadable": 0}],     # -> "data" (+ "skipped loads") and "data sources"
    "batch": {"per_process": 16, "processes": 1, "grad_accum": 1, "hr_size": 96},
    "hours": 0.61,                                                  # -> "wall time"
    "hardware": {"processes": 1, "device": "CPU (AMD EPYC, 1 threads)"},
    "precision": {"mixed": "bf16", "channels_last": true},
    "recipe sources": {...the recipe's own...},
    "overrides": {"lr": {"value": 2e-4, "recipe": 1e-4}, "batch_size": {...}, "lr_halve_every": {...},
                  "crop_range": {...}, "losses": {...}, "gan": {"value": null, "recipe": "bce"}},
    "ema": 0.999,                                                   # -> "weights" (0: no EMA)
    "validation": {"pick": "first", "count": 100, "data": "celeba_wild", "list": "val.txt", "crop": 0.8,
                   "size": 128, "degradation": "bicubic", "metric": "psnr_y"},     # null: none
    "batchnorm": {"processes": 2, "synced_layers": 12, "layers": 12},          # several processes only
    "resumed with changes": [{"step": 2, "changes": [{"field": "batch per process", "saved": 2, "now": 3}]}],
    "stages": [{"from": "checkpoints/rafsr-x4", "steps": 500, "hours": 0.46, "hardware": ..., "lr": 1e-4,
                "lr_halve_every": 0, "hr_size": 96, "crop_range": [0.85, 1.0]}],  # -> "earlier/total training"
    "status": {"ended": "finished" | "signal" | "max_time", "step": 5, "steps": 5, "signal": "SIGTERM",
               "max_time": 150.0},                              # or a line given to `train.ship --status`
    "storage": {"dtype": "fp16", "delta_db": -0.0002, "faces": 200, "scale": 4, "tolerance_db": 0.01}

Records written before format 2 hold the sentences themselves and are shown as written; the
few numbers later code needs from them (a stage's hours, the per-process batch) are read by
the `legacy_*` functions below, for those files only.
"""

from __future__ import annotations

from typing import Any

FORMAT = 2
#: the keys a format-2 record holds only to render others (folded into "data" / "recipe sources")
_FOLDED = {"_format", "skipped loads", "overrides"}
_SOURCE_KEYS = ("folder", "weight", "crop_range", "drop_blurry", "kept", "of")
_GAN_DROPPED = "dropped: no adversarial term left (pre-training stage, as SRGAN pre-trains SRResNet)"


# ----------------------------------------------------------------------------------------
# sentences from the data
# ----------------------------------------------------------------------------------------
def recipe_sources(sources: dict, overrides: dict | None) -> dict[str, str]:
    """The recipe's sources with the command-line overrides said first (the card must not call
    an overridden value the paper's); keys keep their place, new ones follow in override order."""
    out = dict(sources or {})
    overrides = overrides or {}
    for key, change in overrides.items():
        value, recipe = change.get("value"), change.get("recipe")
        if key in ("lr", "lr_halve_every"):
            parts = []
            if "lr" in overrides:
                parts.append(f"lr {overrides['lr']['value']:g} (recipe: {overrides['lr']['recipe']:g})")
            if "lr_halve_every" in overrides:
                halve = overrides["lr_halve_every"]
                parts.append(f"halved every {halve['value']} steps (recipe: {halve['recipe'] or 'constant'})")
            if key == next(k for k in overrides if k in ("lr", "lr_halve_every")):
                out["optimizer"] = f"ours, on the command line: {', '.join(parts)}; " + out.get("optimizer", "")
        elif key == "batch_size":
            out["batch_size"] = f"ours, on the command line: {value} (recipe: {recipe}); " + out.get("batch_size", "")
        elif key == "crop_range":
            out["crop_range"] = (f"ours, on the command line: random crops of {value[0]:g}-{value[1]:g} of the shorter "
                                 f"side (recipe: {recipe[0]:g}-{recipe[1]:g})")
        elif key == "losses":
            out["losses"] = f"overridden on the command line: {value} (recipe: {recipe}); " + out.get("losses", "")
        elif key == "gan":
            out["gan"] = _GAN_DROPPED
        elif key == "clean_fraction":
            out["degradation"] = (f"ours, on the command line: {value:.0%} of the samples get the plain bicubic LR, the rest "
                                  "the real-world pipeline (the paper trains on real-world LR only; a model that has "
                                  "never seen a clean LR over-sharpens one); " + out.get("degradation", ""))
    return out


def hardware_line(hardware: Any) -> Any:
    """"2 x NVIDIA H200" from {"processes": 2, "device": "NVIDIA H200"}; older records' lines as written."""
    return f"{hardware['processes']} x {hardware['device']}" if isinstance(hardware, dict) else hardware


def _hours_line(hours: float | None) -> str:
    return "unknown" if hours is None else f"{hours:.2f} h"


def _data_line(sources: list[dict], skipped_loads: int | None) -> str:
    parts = []
    for src in sources:
        low, high = src["crop_range"]
        rule = ("none dropped" if not src.get("drop_blurry") or src["drop_blurry"] <= 0 else
                f"dropped the {src['drop_blurry']:.0%} blurriest images (variance of Laplacian < {src['threshold']:.1f})")
        part = (f"{src['path']} ({src.get('list') or 'all images'}; {src['weight']:.0%} of each batch; crops "
                f"{low:g}-{high:g}); {rule} ({src.get('kept', '?')} of {src.get('of', '?')} kept)")
        if src.get("unreadable"):
            part += f"; {src['unreadable']} unreadable image(s) skipped"
        parts.append(part)
    data = " + ".join(parts)
    if skipped_loads:
        data += f"; {skipped_loads} load(s) of unreadable images replaced by the next image"
    return data


def _batch_line(batch: dict) -> str:
    per, procs, accum = batch["per_process"], batch["processes"], batch.get("grad_accum", 1)
    return (f"{per} x {procs} process(es)"
            + (f" x {accum} accumulated (gradient accumulation: {per * procs * accum} images per step)" if accum > 1 else "")
            + f", HR crops {batch['hr_size']}x{batch['hr_size']}")


def _validation_line(val: dict) -> str:
    return (f"{val['pick']} {val['count']} of {val['data']}/{val['list']}, centre squares ({val['crop']:.2f} of the "
            f"shorter side) resized to {val['size']}px, {val['degradation']} degradation; best checkpoint by "
            f"{'LPIPS' if val['metric'] == 'lpips' else 'PSNR-Y'}")


def _batchnorm_line(bn: dict) -> str:
    if bn.get("synced_layers"):
        return f"SyncBatchNorm over {bn['processes']} processes ({bn['synced_layers']} layers)"
    return "per process (--no-sync-bn)" if bn.get("layers") else "no BatchNorm layers"


def change_line(change: dict) -> str:
    """"batch per process: 2 -> 3" from {"field": ..., "saved": 2, "now": 3} (a side left out: absent)."""
    return f"{change['field']}: {change.get('saved', '(absent)')} -> {change.get('now', '(absent)')}"


def _resume_line(resume: Any) -> Any:
    if not isinstance(resume, dict):
        return resume
    return f"at step {resume['step']}: " + "; ".join(map(change_line, resume["changes"]))


def status_line(status: Any) -> Any:
    """How the run ended, as the card says it; a line given to `train.ship --status` as written."""
    if not isinstance(status, dict):
        return status
    step, steps = status["step"], status.get("steps")
    if status["ended"] == "signal":
        return (f"interrupted by {status.get('signal') or 'a signal'} at step {step} of {steps} (state saved; "
                "continue with --resume)")
    if status["ended"] == "max_time":
        return (f"stopped at --max-time {status['max_time']:g} min, step {step} of {steps} (state saved; "
                "continue with --resume)")
    return f"finished: {step} steps"


def storage_line(storage: Any) -> Any:
    if not isinstance(storage, dict):
        return storage
    if "measured_db" not in storage:  # before int8 storage (session 10): only fp16 was tried
        return (f"{storage['dtype']} weights: fp16 rounding changed Y-PSNR by {storage['delta_db']:+.4f} dB on "
                f"{storage['faces']} CelebA faces at x{storage['scale']} (fp16 is used when |change| < "
                f"{storage['tolerance_db']} dB)")
    tried = "; ".join(f"{dtype}: " + ", ".join(f"{name} {delta:+.4f} dB" for name, delta in per_set.items())
                      for dtype, per_set in storage["measured_db"].items())
    on = ", ".join(f"{count} {name}" for name, count in storage["faces"].items())
    if storage.get("forced"):
        return (f"{storage['dtype']} weights, chosen for size (the checkout stays under 50 MB); what the rounding "
                f"changed in Y-PSNR at x{storage['scale']} against the trained fp32 weights on {on} faces: {tried}")
    return (f"{storage['dtype']} weights (the smallest of int8 per output channel, fp16, fp32 whose rounding moves "
            f"Y-PSNR by less than {storage['tolerance_db']} dB on each of {on} faces at x{storage['scale']}; "
            f"measured: {tried or 'nothing smaller tried'})")


def _odd_sizes(size_range) -> str:
    odd = [k for k in range(int(size_range[0]), int(size_range[1]) + 1) if k % 2]
    return f"{odd[0]}" if len(odd) == 1 else f"{odd[0]}-{odd[-1]}"


def degradation_line(ranges: Any) -> Any:
    """The real-world degradation a run trained on (`hub_models.degradations.real_world_ranges`)."""
    if not isinstance(ranges, dict):
        return ranges
    still = [k for k in ranges["blur_kinds"] if k != "motion"]
    low, high = ranges["downscale"]
    at = f" at HR {ranges['hr_size']}" if ranges.get("hr_size") else ""
    return (f"real-world (AGRNet eq. 28), drawn per image: {'/'.join(still)} blur of {_odd_sizes(ranges['blur_size'])} px"
            f" or motion blur of {_odd_sizes(ranges['motion_size'])} px{at}, downscale to {low:.4g}-{high:.4g} of the "
            f"size (x{1 / high:g} to x{1 / low:g}), Gaussian noise sigma {ranges['noise_sigma'][0]:g}-"
            f"{ranges['noise_sigma'][1]:g} (of 255), JPEG quality {ranges['jpeg_quality'][0]}-{ranges['jpeg_quality'][1]}; "
            "pre-upsampled models get the JPEG bicubic-upsampled back to the HR size")


def _crops(stage: dict) -> str:
    """", HR 64 from 0.57-0.8 crops" for stages that recorded their crops (older ones did not)."""
    if not stage.get("hr_size"):
        return ""
    if not stage.get("crop_range"):
        return f", HR {stage['hr_size']}"
    low, high = stage["crop_range"]
    return f", HR {stage['hr_size']} from {low:g}-{high:g} crops"


def _stage_lines(stages: list[dict], own_steps: int | None, own_hours: float | None) -> dict[str, Any]:
    stages = [normalise_stage(st) for st in stages]
    if not stages:
        return {}
    earlier = [f"{st.get('steps')} steps, {_hours_line(st['hours'])}, lr {st.get('lr')}"
               f"{' halved every ' + str(st['lr_halve_every']) + ' steps' if st.get('lr_halve_every') else ''}"
               f"{_crops(st)}, {hardware_line(st.get('hardware'))}" for st in stages]
    steps, hours = _totals(stages, own_steps, own_hours)
    return {"earlier training": earlier, "total training": f"{steps} steps, {hours:.2f} h"}


def _totals(stages: list[dict], own_steps: int | None, own_hours: float | None) -> tuple[int, float]:
    steps = sum(st.get("steps") or 0 for st in stages) + (own_steps or 0)
    hours = sum(st["hours"] or 0.0 for st in stages) + (own_hours or 0.0)
    return steps, hours


def card_lines(record: dict | None) -> dict[str, Any]:
    """The card's "Training" entries of `record`, in its order: key -> a sentence, a number, or the
    dict/list the card lists (a record written before format 2: its entries as written)."""
    out: dict[str, Any] = {}
    for key, value in (record or {}).items():
        if key in _FOLDED:
            continue
        if key == "data sources" and value and "path" in value[0] and "data" not in record:
            out["data"] = _data_line(value, record.get("skipped loads"))
            out[key] = [{k: src.get(k) for k in _SOURCE_KEYS} for src in value]
        elif key == "batch" and isinstance(value, dict):
            out[key] = _batch_line(value)
        elif key == "hours":
            out["wall time"] = _hours_line(value)
        elif key == "hardware":
            out[key] = hardware_line(value)
        elif key == "precision" and isinstance(value, dict):
            out[key] = (value["mixed"] + (", channels_last" if value.get("channels_last") else "")
                        + (", torch.compile (inductor)" if value.get("compiled") else ""))
        elif key == "recipe sources" and "overrides" in record:
            out[key] = recipe_sources(value, record["overrides"])
        elif key == "ema":
            out["weights"] = (f"exponential moving average, decay {value} (warm-up min(decay, (1+t)/(10+t)))"
                              if value else "the trained weights (no EMA)")
        elif key == "validation" and (value is None or isinstance(value, dict)):
            out[key] = _validation_line(value) if value else "none"
        elif key in ("best validation", "bicubic on validation", "final validation") and value is None:
            out[key] = "n/a"
        elif key == "batchnorm" and isinstance(value, dict):
            out[key] = _batchnorm_line(value)
        elif key == "resumed with changes":
            out[key] = [_resume_line(resume) for resume in value]
        elif key == "stages":
            out.update(_stage_lines(value, record.get("steps"), record_hours(record)))
        elif key == "status":
            out[key] = status_line(value)
        elif key == "storage":
            out[key] = storage_line(value)
        elif key == "degradation ranges":
            out["degradation"] = degradation_line(value)
        else:
            out[key] = value
    return out


# ----------------------------------------------------------------------------------------
# numbers from a record (either format)
# ----------------------------------------------------------------------------------------
def record_hours(record: dict) -> float | None:
    """The hours of the stage `record` describes (None when unknown)."""
    if isinstance(record.get("hours"), (int, float)):
        return float(record["hours"])
    return legacy_hours(record.get("wall time"))


def total_training(record: dict) -> tuple[int, float]:
    """(steps, hours) of every stage behind the weights `record` describes, its own included."""
    return _totals(record_stages(record) or [], record.get("steps"), record_hours(record))


def normalise_stage(stage: dict) -> dict:
    """A stage entry with its hours as a number (older entries held "0.46 h")."""
    if "hours" in stage:
        return dict(stage)
    out = {k: v for k, v in stage.items() if k != "wall time"}
    out["hours"] = legacy_hours(stage.get("wall time"))
    return out


def record_stages(record: dict) -> list[dict] | None:
    """The earlier stages a record lists (None when it lists none: not resolved then)."""
    for key in ("stages", "_stages"):
        if key in record:
            return [normalise_stage(st) for st in record[key]]
    return None


def stage_of(record: dict, source: str) -> dict:
    """The stage entry that `record` (the training.json of the weights at `source`) adds to the
    history of weights warm-started from them."""
    used = record.get("recipe") or {}
    return {"from": source, "steps": record.get("steps"), "hours": record_hours(record),
            "hardware": record.get("hardware"), "lr": used.get("lr"), "lr_halve_every": used.get("lr_halve_every", 0),
            "hr_size": used.get("hr_size"), "crop_range": used.get("crop_range")}


def gan_dropped(record: dict | None) -> bool:
    """The weights are a GAN recipe's generator trained without its adversarial terms."""
    record = record or {}
    if "overrides" in record:
        return "gan" in record["overrides"]
    return legacy_gan_dropped(record)


def per_process_batch(record: dict) -> int | None:
    batch = record.get("batch")
    return batch.get("per_process") if isinstance(batch, dict) else legacy_batch(batch)


# ----------------------------------------------------------------------------------------
# records written before format 2 (sentences): the numbers they carry
# ----------------------------------------------------------------------------------------
def legacy_hours(wall_time: Any) -> float | None:
    """"1.43 h" -> 1.43 (None for "unknown" or a missing entry)."""
    try:
        return float(str(wall_time).split()[0])
    except (ValueError, IndexError):
        return None


def legacy_batch(batch: Any) -> int | None:
    """"8 x 1 process(es), HR crops 96x96" -> 8."""
    try:
        return int(str(batch).split()[0])
    except (ValueError, IndexError):
        return None


def legacy_gan_dropped(record: dict) -> bool:
    gan_source = (record.get("recipe sources") or {}).get("gan", "")
    return isinstance(gan_source, str) and gan_source.startswith("dropped")


def legacy_overridden(record: dict, key: str) -> bool:
    """A recipe source of an older record already says it was set on the command line."""
    return "on the command line" in str((record.get("recipe sources") or {}).get(key))
