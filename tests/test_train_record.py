"""The training record and the command line: overrides recorded as data and said by the card,
the warm-start history, the validation settings, the precision default, shipping; the record
format itself (numbers in training.json, the card's sentences made from them, records written
before format 2 shown as written)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import hub_models
import train.train as train_script
from hub_models.training_record import card_lines
from train.recipes import get_recipe
from train_helpers import card_record, raw_record, smooth_face_like

pytestmark = pytest.mark.usefixtures("one_thread", "fresh_accelerator_state")  # tests/conftest.py

CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"


def _args(model: str, data: Path, out: Path, steps: int, *extra: str) -> list[str]:
    return ["--model", model, "--data", str(data), "--output", str(out), "--steps", str(steps), "--tiny",
            "--hr-size", "32", "--batch-size", "2", "--workers", "0", "--no-progress", "--log-every", "1", *extra]


@pytest.mark.parametrize("flags, native", [
    ("fpu avx2 fma", False),
    ("avx2 avx512f avx512bw avx512_vnni", False),   # oneDNN reports bf16 "supported" here, but emulates it
    ("avx512f avx512bw avx512_bf16", True),
    ("avx512f amx_tile amx_bf16", True),
])
def test_bf16_default_only_where_the_cpu_computes_it(flags, native):
    from train.hardware import cpu_has_native_bf16

    assert cpu_has_native_bf16(f"processor : 0\nflags : {flags}\n") is native


def test_warm_start_history_accounts_for_every_stage(tmp_path):
    from train.record import add_warm_start_history

    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    (first / "training.json").write_text(json.dumps(
        {"steps": 500, "wall time": "0.50 h", "warm start": "none", "recipe": {"lr": 1e-4}}))
    (second / "training.json").write_text(json.dumps(
        {"steps": 300, "wall time": "0.25 h", "warm start": str(first),
         "recipe": {"lr": 3e-4, "hr_size": 64, "crop_range": [0.57, 0.8]}}))
    raw = add_warm_start_history({"steps": 100, "wall time": "0.10 h", "warm start": str(second)})
    record = card_lines(raw)
    assert [st["steps"] for st in raw["stages"]] == [500, 300] and [st["hours"] for st in raw["stages"]] == [0.5, 0.25]
    assert record["total training"] == "900 steps, 0.85 h"
    assert len(record["earlier training"]) == 2 and "lr 0.0003, HR 64 from 0.57-0.8 crops" in record["earlier training"][1]
    assert "HR" not in record["earlier training"][0]  # older records did not keep their crops
    assert "_stages" not in hub_models.card.training_section(raw) and "**stages:**" not in hub_models.card.training_section(raw)
    assert card_lines(add_warm_start_history({"steps": 5, "warm start": "none"})).get("earlier training") is None
    # stages resolved at the run's start win over what the folder holds by export time
    resolved_early = card_lines(add_warm_start_history({"steps": 100, "wall time": "0.10 h", "warm start": str(second)},
                                                       [{"steps": 7, "wall time": "0.01 h"}]))
    assert resolved_early["total training"] == "107 steps, 0.11 h"


def test_an_overridden_learning_rate_is_not_called_the_papers():
    from train.recipes import get_recipe
    from train.config import note_schedule_override
    from train.ship import mark_command_line_overrides

    recipe = get_recipe("rafsr")
    note_schedule_override(recipe, 2e-4, 500)
    assert recipe.lr == 2e-4 and recipe.lr_halve_every == 500
    assert recipe.source["optimizer"].startswith("ours, on the command line: lr 0.0002 (recipe: 0.0001), halved every 500")
    untouched = get_recipe("rafsr")
    note_schedule_override(untouched, None, None)
    assert untouched.source == get_recipe("rafsr").source
    old_export = {"recipe": {"lr": 3e-4, "lr_halve_every": 0}, "recipe sources": {"optimizer": "paper: Adam lr 1e-4"}}
    assert "lr 0.0003 (recipe: 0.0001)" in mark_command_line_overrides(old_export, "rafsr")["recipe sources"]["optimizer"]


def test_an_overridden_batch_is_not_called_the_papers():
    from train.config import note_batch_override
    from train.ship import mark_command_line_overrides

    recipe = get_recipe("mffcn")
    note_batch_override(recipe, 10)  # the paper's own batch: nothing to mark
    assert recipe.batch_size == 10 and recipe.source["batch_size"] == get_recipe("mffcn").source["batch_size"]
    note_batch_override(recipe, 8)
    assert recipe.batch_size == 8 and recipe.source["batch_size"].startswith("ours, on the command line: 8 (recipe: 10)")
    # records exported before the mark: the batch line tells, whatever the optimiser says
    old_export = {"batch": "8 x 1 process(es), HR crops 96x96", "recipe": {"lr": 2e-4, "lr_halve_every": 250},
                  "recipe sources": {"optimizer": "ours, on the command line: lr 0.0002", "batch_size": "paper"}}
    marked = mark_command_line_overrides(old_export, "mffcn")["recipe sources"]
    assert marked["batch_size"].startswith("ours, on the command line: 8 (recipe: 10)")
    assert marked["optimizer"] == "ours, on the command line: lr 0.0002"
    same = {"batch": "10 x 1 process(es), HR crops 128x128", "recipe sources": {"batch_size": "paper"}}
    assert mark_command_line_overrides(same, "mffcn")["recipe sources"]["batch_size"] == "paper"


def test_crop_range_sets_the_face_scale_and_is_called_ours(tmp_path):
    from train.data import center_square
    from train.config import set_crop_range

    recipe = get_recipe("rafsr")
    set_crop_range(recipe, None)
    assert recipe.crop_range == (0.8, 1.0) and "crop_range" not in recipe.source
    set_crop_range(recipe, (0.57, 0.8))
    assert recipe.crop_range == (0.57, 0.8)
    assert recipe.source["crop_range"].startswith("ours, on the command line: random crops of 0.57-0.8")
    for bad in [(0.0, 0.5), (0.9, 0.5), (0.5, 1.2)]:
        with pytest.raises(SystemExit, match="--crop-range"):
            set_crop_range(get_recipe("rafsr"), bad)
    # validation crops: the centre `fraction` of the image, resized
    image = np.zeros((100, 100, 3), np.uint8)
    image[25:75, 25:75] = 255  # white centre square covering half the side
    cv2.imwrite(str(tmp_path / "square.png"), image)
    whole = center_square(tmp_path / "square.png", 20)
    half = center_square(tmp_path / "square.png", 20, fraction=0.5)
    assert whole.shape == half.shape == (3, 20, 20)
    assert half.min() == 255 and whole[:, 0, 0].max() == 0 and whole[:, 10, 10].min() == 255


def test_a_gan_recipe_without_adversarial_terms_is_a_pretraining_stage():
    """--loss-weights that drop every adversarial term leave no discriminator to train
    (SRGAN's SRResNet stage); dropping only the feature term keeps the GAN."""
    from train.config import apply_loss_override

    pre = get_recipe("crlnet")
    apply_loss_override(pre, {"perceptual_mse": 0, "adversarial": 0, "l1": 1})
    assert pre.gan is None and pre.losses == {"l1": 1.0}
    assert pre.source["gan"].startswith("dropped") and "overridden on the command line" in pre.source["losses"]
    still_gan = get_recipe("crlnet")
    apply_loss_override(still_gan, {"perceptual_mse": 0})
    assert still_gan.gan is not None and "adversarial" in still_gan.losses and "gan" not in still_gan.source
    untouched = get_recipe("agrnet_hr")
    apply_loss_override(untouched, {})
    assert untouched.source == get_recipe("agrnet_hr").source and untouched.gan is not None


def test_ship_refuses_a_model_below_bicubic(tmp_path, monkeypatch, capsys):
    """An untrained model is far below bicubic: ship says so, exits 2 and writes no checkpoint
    (a BatchNorm net trained on 8-px LR crops was below bicubic on the 16-px CelebA inputs)."""
    from train import ship

    rng = np.random.default_rng(1)
    faces = tmp_path / "faces"
    faces.mkdir()
    for i in range(3):
        cv2.imwrite(str(faces / f"{i}.png"), cv2.resize(smooth_face_like(rng), (64, 64)))
    run = tmp_path / "run"
    torch.manual_seed(0)
    hub_models.create("rafsr", **hub_models.get_class("rafsr").test_config).save_pretrained(run)
    monkeypatch.setattr(ship, "CHECKPOINT_DIR", tmp_path / "checkpoints")
    assert ship.main([str(run), "--name", "untrained", "--celeba", str(faces)]) == 2
    assert "below bicubic" in capsys.readouterr().err
    assert not (tmp_path / "checkpoints").exists()

def test_validation_runs_at_the_benchmark_size_unless_told():
    """Small training crops are validated at CelebA's 128 px (BatchNorm nets trained on 8-px LR
    looked good at their own size and failed at the benchmark's); larger ones at their own size."""
    from train.config import BENCHMARK_HR, validation_size

    assert BENCHMARK_HR == 128
    assert validation_size(None, 64) == 128 and validation_size(None, 256) == 256
    assert validation_size(48, 64) == 48
    with pytest.raises(ValueError, match="val-size"):
        validation_size(4, 64)


def test_validation_can_pick_the_sharpest_faces(image_dir, tmp_path):
    """`--val-pick sharpest` validates on the sharpest centre crops (UTKFace's blur makes its
    first N a poor stand-in for CelebA); the card says which pick it was."""
    from train.data import sharpest

    rng = np.random.default_rng(1)
    flat = np.full((3, 16, 16), 128, np.uint8)
    noisy = rng.integers(0, 256, (3, 16, 16), dtype=np.uint8)
    soft = cv2.GaussianBlur(noisy.transpose(1, 2, 0), (5, 5), 2).transpose(2, 0, 1)
    from train.data import sharpness

    assert sharpest([sharpness(im) for im in (flat, soft, noisy)], 2) == [2, 1]  # noisy, then soft
    assert sharpest([1.0, 3.0, 3.0], 3) == [1, 2, 0]  # ties keep list order

    # face5 gets sharp noise: the one-image validation must be it, not the list's first
    cv2.imwrite(str(tmp_path / "face_sharp.png"), rng.integers(0, 256, (48, 48, 3), dtype=np.uint8))
    for i in range(2):
        cv2.imwrite(str(tmp_path / f"face{i}.png"), cv2.imread(str(image_dir / f"face{i}.png")))
    (tmp_path / "val.txt").write_text("face0.png\nface1.png\nface_sharp.png\n")
    records = {}
    for pick in ("first", "sharpest"):
        out = tmp_path / pick
        assert train_script.main(_args("srcnn", tmp_path, out, 1, "--val-list", str(tmp_path / "val.txt"),
                                       "--val-count", "1", "--val-pick", pick, "--drop-blurry", "0")) == 0
        records[pick] = card_record(out / "last")
        assert raw_record(out / "last")["validation"]["pick"] == pick
        assert records[pick]["validation"].startswith(f"{pick} 1 of ")
    # noise is far harder for bicubic than a smooth face
    assert records["sharpest"]["bicubic on validation"]["psnr_y"] < records["first"]["bicubic on validation"]["psnr_y"] - 5


# -- the record format ---------------------------------------------------------------------------
#: a format-2 record with every structured entry, and what its card says (the sentences the
#: training script wrote into the record before format 2, for the same run)
STRUCTURED = {
    "_format": 2,
    "datasets": ["celeba_wild", "utkface"],
    "data sources": [
        {"folder": "celeba_wild", "weight": 0.5, "crop_range": [0.75, 0.85], "drop_blurry": 0.0, "kept": 3479,
         "of": 3479, "path": "../shared/data/celeba_wild", "list": "train.txt", "threshold": None, "unreadable": 0},
        {"folder": "utkface", "weight": 0.5, "crop_range": [0.85, 1.0], "drop_blurry": 0.6, "kept": 3722, "of": 9304,
         "path": "../shared/data/utkface", "list": "train.txt", "threshold": 52.08, "unreadable": 2}],
    "skipped loads": 3,
    "steps": 5000,
    "batch": {"per_process": 8, "processes": 2, "grad_accum": 2, "hr_size": 96},
    "hours": 0.6149,
    "hardware": {"processes": 2, "device": "NVIDIA H200"},
    "precision": {"mixed": "bf16", "channels_last": True},
    "recipe": {"losses": {"l1": 1.0}, "lr": 2e-4},
    "recipe sources": {"losses": "paper", "optimizer": "paper: Adam lr 1e-4", "batch_size": "ours: not given; 16"},
    "overrides": {"batch_size": {"value": 8, "recipe": 16}, "lr": {"value": 2e-4, "recipe": 1e-4},
                  "lr_halve_every": {"value": 500, "recipe": 0}, "crop_range": {"value": [0.75, 0.85], "recipe": [0.8, 1.0]},
                  "losses": {"value": {"adversarial": 0}, "recipe": {"l1": 1.0, "adversarial": 0.001}},
                  "gan": {"value": None, "recipe": "bce"}},
    "perceptual network": "none",
    "warm start": "checkpoints/rafsr-x4",
    "ema": 0.999,
    "validation": {"pick": "sharpest", "count": 100, "data": "celeba_wild", "list": "val.txt", "crop": 0.8, "size": 128,
                   "degradation": "bicubic", "metric": "psnr_y"},
    "best validation": {"step": 5000, "psnr_y": 30.9},
    "bicubic on validation": None,
    "final validation": None,
    "batchnorm": {"processes": 2, "synced_layers": 0, "layers": 4},
    "resumed with changes": ["at step 10: seed: 0 -> 1",
                             {"step": 20, "changes": [{"field": "batch per process", "saved": 4, "now": 8},
                                                      {"field": "data[1].folder", "now": "utkface"}]}],
    "stages": [{"from": "checkpoints/rafsr-x4", "steps": 500, "wall time": "0.46 h", "hardware": "1 x CPU (x86_64, 2 threads)",
                "lr": 0.0001, "lr_halve_every": 0},
               {"from": "runs/a/best", "steps": 1800, "hours": 1.056, "hardware": {"processes": 1, "device": "CPU (AMD EPYC, 1 threads)"},
                "lr": 0.0002, "lr_halve_every": 500, "hr_size": 64, "crop_range": [0.57, 0.8]}],
    "status": {"ended": "max_time", "step": 5000, "steps": 400000, "signal": None, "max_time": 150.0},
    "storage": {"dtype": "fp16", "delta_db": -0.0002, "faces": 200, "scale": 4, "tolerance_db": 0.01},
}
SAID = {
    "datasets": ["celeba_wild", "utkface"],
    "data": "../shared/data/celeba_wild (train.txt; 50% of each batch; crops 0.75-0.85); none dropped (3479 of 3479 kept) + "
            "../shared/data/utkface (train.txt; 50% of each batch; crops 0.85-1); dropped the 60% blurriest images "
            "(variance of Laplacian < 52.1) (3722 of 9304 kept); 2 unreadable image(s) skipped; 3 load(s) of unreadable "
            "images replaced by the next image",
    "data sources": [{"folder": "celeba_wild", "weight": 0.5, "crop_range": [0.75, 0.85], "drop_blurry": 0.0, "kept": 3479, "of": 3479},
                     {"folder": "utkface", "weight": 0.5, "crop_range": [0.85, 1.0], "drop_blurry": 0.6, "kept": 3722, "of": 9304}],
    "steps": 5000,
    "batch": "8 x 2 process(es) x 2 accumulated (gradient accumulation: 32 images per step), HR crops 96x96",
    "wall time": "0.61 h",
    "hardware": "2 x NVIDIA H200",
    "precision": "bf16, channels_last",
    "recipe": {"losses": {"l1": 1.0}, "lr": 2e-4},
    "recipe sources": {
        "losses": "overridden on the command line: {'adversarial': 0} (recipe: {'l1': 1.0, 'adversarial': 0.001}); paper",
        "optimizer": "ours, on the command line: lr 0.0002 (recipe: 0.0001), halved every 500 steps (recipe: constant); "
                     "paper: Adam lr 1e-4",
        "batch_size": "ours, on the command line: 8 (recipe: 16); ours: not given; 16",
        "crop_range": "ours, on the command line: random crops of 0.75-0.85 of the shorter side (recipe: 0.8-1)",
        "gan": "dropped: no adversarial term left (pre-training stage, as SRGAN pre-trains SRResNet)"},
    "perceptual network": "none",
    "warm start": "checkpoints/rafsr-x4",
    "weights": "exponential moving average, decay 0.999 (warm-up min(decay, (1+t)/(10+t)))",
    "validation": "sharpest 100 of celeba_wild/val.txt, centre squares (0.80 of the shorter side) resized to 128px, "
                  "bicubic degradation; best checkpoint by PSNR-Y",
    "best validation": {"step": 5000, "psnr_y": 30.9},
    "bicubic on validation": "n/a",
    "final validation": "n/a",
    "batchnorm": "per process (--no-sync-bn)",
    "resumed with changes": ["at step 10: seed: 0 -> 1",
                             "at step 20: batch per process: 4 -> 8; data[1].folder: (absent) -> utkface"],
    "earlier training": ["500 steps, 0.46 h, lr 0.0001, 1 x CPU (x86_64, 2 threads)",
                         "1800 steps, 1.06 h, lr 0.0002 halved every 500 steps, HR 64 from 0.57-0.8 crops, 1 x CPU (AMD EPYC, 1 threads)"],
    "total training": "7300 steps, 2.13 h",
    "status": "stopped at --max-time 150 min, step 5000 of 400000 (state saved; continue with --resume)",
    "storage": "fp16 weights: fp16 rounding changed Y-PSNR by -0.0002 dB on 200 CelebA faces at x4 (fp16 is used when "
               "|change| < 0.01 dB)",
}


def test_the_card_says_a_structured_record_in_the_sentences_of_before():
    """Every structured entry becomes the sentence the record used to hold, in the record's order;
    the GAN pre-training note comes from the override, not from a sentence."""
    from hub_models.training_record import gan_dropped, per_process_batch, record_hours, storage_line

    assert card_lines(STRUCTURED) == SAID and list(card_lines(STRUCTURED)) == list(SAID)
    assert gan_dropped(STRUCTURED) and per_process_batch(STRUCTURED) == 8 and record_hours(STRUCTURED) == 0.6149
    assert storage_line(STRUCTURED["storage"]) == SAID["storage"]
    model = hub_models.create("srcnn", **hub_models.SRCNN.test_config)
    card = str(model.generate_model_card(training=STRUCTURED))
    assert "pre-training stage without the adversarial term" in card and "- **wall time:** 0.61 h" in card
    assert "overrides" not in card and "skipped loads" not in card and "_format" not in card


def test_records_written_before_format_2_render_as_written():
    """Older records hold the sentences: the card shows them unchanged (every shipped checkpoint's
    card keeps its Training section), and their numbers are still read for later stages."""
    from hub_models.card import training_section
    from hub_models.training_record import gan_dropped, per_process_batch, record_hours, stage_of

    shipped = sorted(CHECKPOINTS.glob("*/training.json"))
    old_format = 0
    for path in shipped:
        record = json.loads(path.read_text())
        if "_format" not in record:  # written before format 2: its sentences are shown as written
            old_format += 1          # (train.ship of today may add structured fields, e.g. storage)
            lines = card_lines(record)
            assert {k: lines[k] for k, v in record.items() if isinstance(v, str)} == \
                {k: v for k, v in record.items() if isinstance(v, str)}, path
        assert training_section(record) in (path.parent / "README.md").read_text(), path
    assert old_format, "no shipped checkpoint has an older record left: test one from a fixture instead"
    old = {"batch": "8 x 1 process(es), HR crops 96x96", "wall time": "1.43 h", "steps": 10, "recipe": {"lr": 1e-4},
           "recipe sources": {"gan": "dropped: no adversarial term left (pre-training stage)"}}
    assert per_process_batch(old) == 8 and record_hours(old) == 1.43 and gan_dropped(old)
    assert stage_of(old, "runs/x/best")["hours"] == 1.43 and not gan_dropped({"recipe sources": {"gan": "paper"}})


def test_a_run_records_numbers_and_its_card_the_sentences(image_dir, tmp_path):
    """A run's training.json holds numbers (hours, batch, overrides, status), no sentence the code
    would have to read back; its card says them."""
    out = tmp_path / "run"
    val_list = tmp_path / "val.txt"
    val_list.write_text("face0.png\nface1.png\n")
    argv = _args("srcnn", image_dir, out, 3, "--lr", "2e-4", "--lr-halve-every", "2", "--crop-range", "0.7", "0.9",
                 "--ema", "0.9", "--val-list", str(val_list), "--val-every", "3", "--drop-blurry", "0")
    assert train_script.main(argv) == 0
    raw, said = raw_record(out / "last"), card_record(out / "last")
    assert raw["_format"] == 2 and isinstance(raw["hours"], float) and said["wall time"] == f"{raw['hours']:.2f} h"
    assert raw["batch"] == {"per_process": 2, "processes": 1, "grad_accum": 1, "hr_size": 32}
    assert said["batch"] == "2 x 1 process(es), HR crops 32x32"
    assert raw["overrides"] == {"batch_size": {"value": 2, "recipe": 16}, "lr": {"value": 2e-4, "recipe": 1e-4},
                                "lr_halve_every": {"value": 2, "recipe": 0},
                                "crop_range": {"value": [0.7, 0.9], "recipe": [0.8, 1.0]}}
    assert raw["recipe sources"] == get_recipe("srcnn").sources  # the recipe's own; the overrides apart
    assert said["recipe sources"]["optimizer"].startswith("ours, on the command line: lr 0.0002 (recipe: 0.0001), "
                                                          "halved every 2 steps (recipe: constant); ")
    assert raw["status"] == {"ended": "finished", "step": 3, "steps": 3} and said["status"] == "finished: 3 steps"
    assert raw["ema"] == 0.9 and said["weights"].startswith("exponential moving average, decay 0.9 ")
    assert raw["validation"]["crop"] == pytest.approx(0.8) and raw["validation"]["size"] == 128
    assert raw["stages"] == [] and "earlier training" not in said
    assert raw["data sources"][0]["path"] == str(image_dir) and "none dropped" in said["data"]
