"""Training on several data folders mixed by a stated ratio (celeba_wild + UTKFace)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

import train.train as train_script
from train.config import data_sources, validation_crop
from train.data import FaceCrops, MixedCrops, StepSampler, mix_weights
from train.recipes import get_recipe
from train_helpers import card_record


def _folder(root: Path, name: str, colour: int, count: int = 4, size: int = 40) -> Path:
    """`count` flat images of one grey level, so a crop tells which folder it came from."""
    folder = root / name
    folder.mkdir(parents=True)
    for i in range(count):
        cv2.imwrite(str(folder / f"{name}{i}.png"), np.full((size, size, 3), colour, np.uint8))
    (folder / "train.txt").write_text("\n".join(f"{name}{i}.png" for i in range(count)) + "\n")
    return folder


def _draws(weights, steps=400, batch=4, seed=0, start=0, rank=0, world=1):
    sampler = StepSampler(7, batch, seed, start, rank, world, source_sizes=[3, 4], weights=weights)
    stream = iter(sampler)
    return [next(stream) for _ in range(steps * batch)]


def test_the_mix_ratio_is_kept_and_every_draw_is_a_valid_image():
    draws = _draws(mix_weights([3, 1], 2))
    share = Counter(source for source, _, _ in draws)[0] / len(draws)
    assert abs(share - 0.75) < 0.03
    assert all(0 <= index < (3, 4)[source] for source, index, _ in draws)


def test_the_mixed_order_resumes_exactly_and_splits_across_processes():
    weights = mix_weights(None, 2)
    whole = _draws(weights, steps=10)
    assert _draws(weights, steps=4, start=6) == whole[6 * 4:]
    halves = [_draws(weights, steps=10, batch=2, rank=r, world=2) for r in (0, 1)]
    interleaved = [d for step in range(10) for r in (0, 1) for d in halves[r][step * 2:(step + 1) * 2]]
    assert interleaved == whole


def test_a_mixed_batch_holds_crops_of_both_folders(tmp_path):
    dark, light = _folder(tmp_path, "dark", 30), _folder(tmp_path, "light", 220)
    parts = [FaceCrops(sorted(dark.glob("*.png")), 16, (0.8, 0.8)), FaceCrops(sorted(light.glob("*.png")), 16, (0.5, 1.0))]
    dataset = MixedCrops(parts)
    sampler = StepSampler(len(dataset), 8, 0, source_sizes=[4, 4], weights=[0.5, 0.5])
    batch = torch.stack([dataset[item][0] for item, _ in zip(sampler, range(64))])
    means = batch.float().mean(dim=(1, 2, 3))
    assert set(means.round().tolist()) == {30.0, 220.0}


@pytest.mark.parametrize("weights, message", [([1], "one per folder"), ([1, -1], ">= 0"), ([0, 0], "positive sum")])
def test_a_bad_mix_ratio_is_refused_with_a_reason(weights, message):
    with pytest.raises(ValueError, match=message):
        mix_weights(weights, 2)


def _cli(tmp_path, *extra):
    return SimpleNamespace(data=[str(_folder(tmp_path, "a", 10)), str(_folder(tmp_path, "b", 90))],
                           data_weights=None, crop_range=None, drop_blurry=[0.1], val_data=None, val_crop=None,
                           **dict(extra))


def test_data_sources_apply_per_folder_settings_and_refuse_bad_ones(tmp_path):
    recipe = get_recipe("rafsr")
    args = _cli(tmp_path)
    args.crop_range, args.drop_blurry, args.data_weights = [0.75, 0.85, 0.85, 1.0], [0.0, 0.6], [1, 3]
    sources = data_sources(args, recipe)
    assert [s["crop_range"] for s in sources] == [(0.75, 0.85), (0.85, 1.0)]
    assert [s["drop_blurry"] for s in sources] == [0.0, 0.6] and [s["weight"] for s in sources] == [0.25, 0.75]
    args.val_data = args.data[1]
    assert validation_crop(args, sources, recipe) == pytest.approx(0.925)
    args.val_crop = 0.8
    assert validation_crop(args, sources, recipe) == 0.8
    for case, (field, value, message) in enumerate([("crop_range", [0.5, 0.6, 0.7], "once per --data folder"),
                                  ("crop_range", [0.9, 0.5], "MIN <= MAX"),
                                  ("drop_blurry", [0.1, 0.2, 0.3], "one per --data folder"),
                                  ("data_weights", [1, 2, 3], "one per folder"),
                                  ("data", [args.data[0], str(tmp_path / "missing")], "not a folder")]):
        bad = _cli(tmp_path / str(case))
        setattr(bad, field, value)
        with pytest.raises(SystemExit, match=message):
            data_sources(bad, recipe)


def test_a_mixed_run_trains_and_its_record_names_each_source(tmp_path):
    a, b = _folder(tmp_path, "wild", 60, size=48), _folder(tmp_path, "utk", 160, size=48)
    out = tmp_path / "run"
    argv = ["--model", "srcnn", "--data", str(a), str(b), "--data-weights", "2", "1", "--train-list", "train.txt",
            "--crop-range", "0.75", "0.85", "0.85", "1.0", "--drop-blurry", "0", "--output", str(out), "--steps", "2",
            "--tiny", "--hr-size", "32", "--batch-size", "2", "--workers", "0", "--no-progress",
            "--val-list", "train.txt", "--val-data", str(a), "--val-count", "2"]
    assert train_script.main(argv) == 0
    record = card_record(out / "last")
    assert record["datasets"] == ["wild", "utk"]
    assert [(s["folder"], round(s["weight"], 3), s["crop_range"]) for s in record["data sources"]] == [
        ("wild", 0.667, [0.75, 0.85]), ("utk", 0.333, [0.85, 1.0])]
    assert "67% of each batch" in record["data"] and "centre squares (0.80 of the" in record["validation"]
