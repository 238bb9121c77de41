"""The command line turned into a run: the recipe with its overrides, the data sources, the
validation settings and the precision. Every override is recorded as data in
`Recipe.overrides` ({"lr": {"value": 2e-4, "recipe": 1e-4}, ...}); the card says them
(`hub_models.training_record.recipe_sources`), so an overridden value is never called the paper's.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

import hub_models
from train.data import mix_weights
from train.hardware import cpu_has_native_bf16
from train.losses import GAN_TERMS
from train.recipes import Recipe, get_recipe

BENCHMARK_HR = 128  # the CelebA-1000 test crops (x8: 16 -> 128, x4: 32 -> 128)


# ----------------------------------------------------------------------------------------
# the recipe
# ----------------------------------------------------------------------------------------
def note_schedule_override(recipe: Recipe, lr: float | None, halve_every: int | None) -> None:
    """Apply --lr / --lr-halve-every and record them as overrides."""
    if lr and lr != recipe.lr:
        recipe.overrides["lr"] = {"value": lr, "recipe": recipe.lr}
        recipe.lr = lr
    if halve_every is not None and halve_every != recipe.lr_halve_every:
        recipe.overrides["lr_halve_every"] = {"value": halve_every, "recipe": recipe.lr_halve_every}
        recipe.lr_halve_every = halve_every


def note_batch_override(recipe: Recipe, batch_size: int | None) -> None:
    """Apply --batch-size (per process) and record it as an override."""
    if batch_size and batch_size != recipe.batch_size:
        recipe.overrides["batch_size"] = {"value": batch_size, "recipe": recipe.batch_size}
        recipe.batch_size = batch_size


def check_crop_range(crop_range) -> tuple[float, float]:
    """(MIN, MAX) of a --crop-range pair, or SystemExit saying what a valid one is."""
    low, high = crop_range
    if not 0 < low <= high <= 1:
        raise SystemExit(f"--crop-range needs 0 < MIN <= MAX <= 1, got {low:g} {high:g}")
    return low, high


def set_crop_range(recipe: Recipe, crop_range) -> None:
    """Apply `--crop-range MIN MAX` (None: keep the recipe's) and record it as an override."""
    if crop_range is None:
        return
    low, high = check_crop_range(crop_range)
    recipe.overrides["crop_range"] = {"value": [low, high], "recipe": list(get_recipe(recipe.model).crop_range)}
    recipe.crop_range = (low, high)


def set_clean_fraction(recipe: Recipe, fraction: float | None) -> None:
    """Apply --clean-fraction (real-world recipes only) and record it as an override."""
    if fraction is None:
        return
    if recipe.degradation != "real_world":
        raise SystemExit(f"--clean-fraction applies to real-world recipes (agrnet_hr); {recipe.model} trains on bicubic LR already")
    if not 0 <= fraction <= 1:
        raise SystemExit(f"--clean-fraction needs 0 <= F <= 1, got {fraction:g}")
    recipe.overrides["clean_fraction"] = {"value": fraction, "recipe": recipe.clean_fraction}
    recipe.clean_fraction = fraction


def apply_loss_override(recipe: Recipe, override: dict[str, float]) -> None:
    """--loss-weights: set or (weight 0) drop loss terms, recorded as an override.
    A GAN recipe left without adversarial terms is a pre-training stage (SRGAN pre-trains
    SRResNet on a pixel loss first): it trains no discriminator and keeps the best PSNR."""
    if not override:
        return
    recipe.overrides["losses"] = {"value": dict(override), "recipe": dict(recipe.losses)}
    for term, weight in override.items():
        if weight:
            recipe.losses[term] = float(weight)
        else:
            recipe.losses.pop(term, None)
    if recipe.gan and not set(recipe.losses) & GAN_TERMS:
        recipe.overrides["gan"] = {"value": None, "recipe": recipe.gan.adversarial}
        recipe.gan = None


def configure(args) -> tuple[Recipe, list[dict]]:
    """The model's recipe with the command line's changes (recorded in the order the card lists
    them), and the data sources (`data_sources`)."""
    recipe = get_recipe(args.model)
    note_batch_override(recipe, args.batch_size)
    if args.lr_halve_every is not None and args.lr_halve_every < 0:
        raise SystemExit("--lr-halve-every must be >= 0")
    note_schedule_override(recipe, args.lr, args.lr_halve_every)
    recipe.scales = args.scale or recipe.scales
    recipe.hr_size = args.hr_size or recipe.hr_size
    sources = data_sources(args, recipe)
    set_crop_range(recipe, sources[0]["crop_range"] if args.crop_range else None)
    cls = hub_models.get_class(recipe.model)
    if args.tiny:
        recipe.model_kwargs = dict(cls.test_config)
        caps = hub_models.capabilities(cls)
        if args.scale and len(args.scale) == 1 and caps.scale_key == "scale" and "scale" in recipe.model_kwargs:
            recipe.model_kwargs["scale"] = args.scale[0]  # tiny config at the asked scale
        if recipe.gan and cls.discriminator_cls is not None:
            recipe.gan.discriminator_kwargs = dict(cls.discriminator_cls.test_config)
    recipe.model_kwargs.update(json.loads(args.model_kwargs))
    set_clean_fraction(recipe, args.clean_fraction)
    apply_loss_override(recipe, json.loads(args.loss_weights))
    return recipe, sources


# ----------------------------------------------------------------------------------------
# data and validation
# ----------------------------------------------------------------------------------------
def data_sources(args, recipe: Recipe) -> list[dict]:
    """One entry per --data folder: folder, batch share, crop range and blur rule, checked before
    any step runs (a missing or empty folder, a count that does not match, a share out of range)."""
    folders = args.data
    for folder in folders:
        if not Path(folder).is_dir():
            raise SystemExit(f"--data {folder}: not a folder (give the folder that holds the images)")
    try:
        weights = mix_weights(args.data_weights, len(folders))
    except ValueError as err:
        raise SystemExit(str(err)) from None
    crops = args.crop_range
    if crops is None:
        pairs = [tuple(recipe.crop_range)] * len(folders)
    elif len(crops) in (2, 2 * len(folders)):
        pairs = [tuple(crops[i:i + 2]) for i in range(0, len(crops), 2)] * (len(folders) if len(crops) == 2 else 1)
    else:
        raise SystemExit(f"--crop-range takes MIN MAX once, or once per --data folder ({2 * len(folders)} numbers); "
                         f"got {len(crops)}")
    for pair in pairs:
        check_crop_range(pair)
    drops = args.drop_blurry if len(args.drop_blurry) != 1 else args.drop_blurry * len(folders)
    if len(drops) != len(folders) or any(not 0 <= d < 1 for d in drops):
        raise SystemExit(f"--drop-blurry takes one fraction in [0, 1), or one per --data folder; got {args.drop_blurry}")
    return [{"folder": str(folder), "weight": w, "crop_range": pair, "drop_blurry": drop}
            for folder, w, pair, drop in zip(folders, weights, pairs, drops)]


def validation_crop(args, sources: list[dict], recipe: Recipe) -> float:
    """Centre-crop fraction of the validation faces: --val-crop, else the middle of the crop range
    of the source they come from (the training face scale), else the recipe's."""
    if args.val_crop is not None:
        if not 0 < args.val_crop <= 1:
            raise SystemExit(f"--val-crop needs 0 < F <= 1, got {args.val_crop:g}")
        return args.val_crop
    folder = Path(args.val_data or args.data[0]).resolve()
    for source in sources:
        if Path(source["folder"]).resolve() == folder:
            return sum(source["crop_range"]) / 2
    return recipe.validation_crop


def validation_size(val_size: int | None, hr_size: int) -> int:
    """Validation HR size: --val-size, else at least the benchmark's. Networks with BatchNorm or
    global pooling trained on small crops can look good on crops of their training size and
    fail at the benchmark's (docs/training.md: Input size), so the best checkpoint is chosen
    at the size it will be measured at."""
    size = val_size or max(hr_size, BENCHMARK_HR)
    if size < 8:
        raise ValueError(f"--val-size must be at least 8 px, got {size}")
    return size


def validation_settings(args, sources: list[dict], recipe: Recipe, val_size: int) -> dict | None:
    """The validation as the record keeps it (None without --val-list)."""
    if not args.val_list:
        return None
    return {"pick": args.val_pick, "count": args.val_count, "data": Path(args.val_data or args.data[0]).resolve().name,
            "list": args.val_list, "crop": validation_crop(args, sources, recipe), "size": val_size,
            "degradation": recipe.degradation, "metric": "lpips" if recipe.gan else "psnr_y"}


# ----------------------------------------------------------------------------------------
# precision
# ----------------------------------------------------------------------------------------
def default_precision() -> str:
    """bf16 where the hardware computes it natively (CUDA with bf16, CPUs with AVX512-BF16/AMX),
    else fp32 ("no"); fp16 on CUDA without bf16. Where bf16 is emulated (AVX2, or AVX512
    without the BF16 extension) the training benchmark (bench/train_speed.py) measured it
    slower than fp32 for every model."""
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_native_bf16() else "no"


def precision_name(mixed: str) -> str:
    return "fp32" if mixed == "no" else mixed
