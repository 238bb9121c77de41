"""The benchmark command and the inference modes `upscale` uses by default."""

import csv
import json
import re

import cv2
import numpy as np
import pytest
import torch

import hub_models
from hub_models import MODELS
from hub_models.base import (INFERENCE_MODE_ENV, INFERENCE_MODES_FILE, mode_key, normalize_inference_mode,
                             read_inference_modes)
from hub_models.machine import BF16_TIERS, cpu_class
from bench import cli, speed, speed_report
from bench.bounds import BOUND_COLUMNS
from bench.datasets import Dataset, load_dataset
from bench.papers import PAPER_COLUMNS
from bench.quality import QUALITY_COLUMNS, card_row

ARCHS = sorted(MODELS)


def tiny(name: str):
    torch.manual_seed(0)
    return MODELS[name](**MODELS[name].test_config).eval()


def _eager_modes_for(name: str) -> list[str]:
    """channels_last (the usual CPU choice) and the fp32 modes the shipped file picks on any CPU class."""
    modes = {"channels_last"}
    for key, shipped in read_inference_modes().get(name, {}).items():
        if key.startswith("cpu") and "compile" not in shipped and not {"bf16", "fp16"} & set(shipped.split("+")):
            modes.add(normalize_inference_mode(shipped))
    return sorted(modes - {"fp32"})


@pytest.mark.parametrize("name", ARCHS)
def test_fast_modes_match_fp32(name):
    model = tiny(name)
    lr = torch.rand(2, 3, 7, 11)
    model.inference_mode = "fp32"
    ref = model.upscale(lr)
    for mode in _eager_modes_for(name):
        model.inference_mode = mode
        out = model.upscale(lr)
        assert out.shape == ref.shape and out.dtype == torch.float32 and out.is_contiguous()
        assert (out - ref).abs().max().item() < 1e-4, mode
    small = lr[:1, :, :4, :5]  # bf16 runs (slowly on CPUs without bf16 units) and stays close
    model.inference_mode = "fp32"
    ref = model.upscale(small)
    model.inference_mode = "bf16"
    assert (model.upscale(small) - ref).abs().max().item() < 0.1


def test_mode_resolution_order(monkeypatch, tmp_path):
    model = tiny("srcnn")
    modes_file = tmp_path / "modes.json"
    modes_file.write_text(json.dumps({"modes": {"srcnn": {mode_key("cpu"): "bf16+channels_last"}}}))
    monkeypatch.setattr(hub_models.base, "INFERENCE_MODES_FILE", modes_file)
    monkeypatch.delenv(INFERENCE_MODE_ENV, raising=False)
    assert model.resolved_inference_mode("cpu") == "bf16+channels_last"  # the choice measured for this CPU class
    assert model.resolved_inference_mode("cuda") == "fp32"  # nothing measured there
    monkeypatch.setenv(INFERENCE_MODE_ENV, "fp32")
    assert model.resolved_inference_mode("cpu") == "fp32"  # environment beats the file
    model.inference_mode = "bf16+channels_last"
    assert model.resolved_inference_mode("cpu") == "bf16+channels_last"  # the instance beats both
    model.inference_mode = None
    monkeypatch.setenv(INFERENCE_MODE_ENV, "auto")
    assert model.resolved_inference_mode("cpu") == "bf16+channels_last"


def test_modes_of_another_cpu_class_are_not_used(monkeypatch, tmp_path):
    """A mode measured on another CPU class (e.g. bf16 on an AMX Xeon) is not applied here:
    unmeasured classes run fp32 channels_last."""
    other = next(f"cpu:{tier}:{n}c" for tier in BF16_TIERS for n in (1, 4096) if f"cpu:{tier}:{n}c" != mode_key("cpu"))
    modes_file = tmp_path / "modes.json"
    modes_file.write_text(json.dumps({"modes": {"srcnn": {other: "bf16"}, "vdsr": {mode_key("cpu"): "fp32"}}}))
    monkeypatch.setattr(hub_models.base, "INFERENCE_MODES_FILE", modes_file)
    monkeypatch.delenv(INFERENCE_MODE_ENV, raising=False)
    assert tiny("srcnn").resolved_inference_mode("cpu") == "channels_last"
    assert tiny("vdsr").resolved_inference_mode("cpu") == "fp32"


def test_cpu_class_from_features_and_cores():
    flags = "flags\t\t: fpu avx2 avx512f {}\n"
    assert cpu_class(flags.format("avx512_bf16 amx_bf16 amx_tile"), cores=2) == "cpu:amx_bf16:2c"
    assert cpu_class(flags.format("avx512_bf16"), cores=12) == "cpu:avx512_bf16:16c"
    assert cpu_class(flags.format(""), cores=1) == "cpu:no_bf16:1c"
    assert cpu_class(flags.format(""), cores=3) == cpu_class(flags.format(""), cores=4) == "cpu:no_bf16:4c"


def test_mode_names():
    assert normalize_inference_mode("channels_last+bf16") == "bf16+channels_last"
    assert normalize_inference_mode("channels-last+compile") == "compile+channels_last"
    assert normalize_inference_mode(None) == normalize_inference_mode("fp32") == "fp32"
    for bad in ("int8", "bf16+fp16", "fp32+bf16"):
        with pytest.raises(ValueError):
            normalize_inference_mode(bad)
    model = tiny("srcnn")
    model.inference_mode = "turbo"
    with pytest.raises(ValueError, match="unknown inference mode"):
        model.upscale(torch.rand(1, 3, 8, 8))


def test_modes_leave_the_model_alone(tmp_path):
    """A fast mode changes nothing that is saved: weights keep their layout, config has no mode."""
    model = tiny("rafsr")
    model.inference_mode = "channels_last"
    model.upscale(torch.rand(1, 3, 8, 8))
    assert all(p.is_contiguous() for p in model.parameters())
    model.save_pretrained(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert "inference_mode" not in config
    assert hub_models.load(tmp_path / "m").inference_mode is None


def test_shipped_modes_file_is_valid():
    assert INFERENCE_MODES_FILE.is_file(), "hub_models/inference_modes.json is missing (python -m bench --write-modes)"
    data = json.loads(INFERENCE_MODES_FILE.read_text())
    assert set(data) >= {"about", "modes", "evidence"}
    for arch, per_device in data["modes"].items():
        assert arch in MODELS, f"{arch} is not a registered architecture"
        for device_type, mode in per_device.items():
            assert device_type in ("cuda", "mps") or re.fullmatch(r"cpu:(amx_bf16|avx512_bf16|no_bf16):\d+c", device_type)
            assert normalize_inference_mode(mode) == mode
            assert "compile" not in mode, "compile modes are opt-in (first call compiles for 10-20 s)"
            evidence = data["evidence"][arch][device_type]
            assert evidence["mode_ms"] <= evidence["fp32_ms"] or mode == "fp32"
            if mode != "fp32":
                assert abs(evidence["dpsnr_y"]) < speed.MAX_DPSNR
    for arch, per_class in data.get("backends", {}).items():  # engines that won by >= 20 % on a CPU class
        for key, engine in per_class.items():
            assert engine in ("onnxruntime", "openvino") and key.startswith("cpu:")
            assert data["evidence"][arch][key]["backend"]["speedup"] >= 1.2
    assert read_inference_modes() == data["modes"]


def _read_csv(path):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def test_quick_benchmark_writes_the_tables(tmp_path, monkeypatch):
    faces = tmp_path / "faces"
    faces.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        image = cv2.resize(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), (32, 32), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(faces / f"{i}.png"), image)
    cv2.imwrite(str(faces / "grey.png"), rng.integers(0, 256, (32, 32), dtype=np.uint8))  # single channel
    ckpt_dir = tmp_path / "checkpoints"
    tiny("rafsr").save_pretrained(ckpt_dir / "rafsr-tiny")
    monkeypatch.setattr(hub_models.registry, "CHECKPOINT_DIR", ckpt_dir)
    shipped = INFERENCE_MODES_FILE.read_bytes() if INFERENCE_MODES_FILE.is_file() else None
    out = tmp_path / "out"
    threads = torch.get_num_threads()
    try:
        assert cli.main(["--quick", "--threads", "1", "--models", "srcnn", "rafsr", "--data", f"faces={faces}",
                               "--out", str(out), "--write-modes", "--modes-file", str(tmp_path / "modes.json")]) == 0
    finally:
        torch.set_num_threads(threads)
    for name, columns in [("speed.csv", speed_report.SPEED_COLUMNS), ("modes.csv", speed_report.MODE_COLUMNS),
                          ("bounds.csv", BOUND_COLUMNS), ("scaling.csv", speed_report.SCALING_COLUMNS),
                          ("quality.csv", QUALITY_COLUMNS), ("papers.csv", PAPER_COLUMNS)]:
        header, rows = _read_csv(out / name)
        assert header == columns, name
        assert rows, name
    _, speed = _read_csv(out / "speed.csv")
    assert [r["model"] for r in speed] == ["bicubic", "srcnn", "rafsr"]
    assert all(float(r["default_ms"]) > 0 and float(r["gflops"]) >= 0 for r in speed)
    _, quality = _read_csv(out / "quality.csv")
    assert {(r["model"], r["scale"]) for r in quality} == {("bicubic-x4", "4"), ("bicubic-x8", "8"), ("rafsr-tiny", "4")}
    assert all(r["images"] == "4" and "1 greyscale" in r["note"] for r in quality)
    _, papers = _read_csv(out / "papers.csv")
    assert {r["architecture"] for r in papers} == {"rafsr"}  # srcnn quotes no figures
    assert any(r["ours_model"] == "rafsr-tiny" for r in papers)
    for md in ("benchmark.md", "speed.md", "quality.md"):
        text = (out / md).read_text()
        assert "| model |" in text
    assert "QUICK RUN" in (out / "benchmark.md").read_text()
    written = json.loads((tmp_path / "modes.json").read_text())
    assert set(written["modes"]) == {"bicubic", "srcnn", "rafsr"}
    assert (INFERENCE_MODES_FILE.read_bytes() if INFERENCE_MODES_FILE.is_file() else None) == shipped


def _faces(folder, n=2, side=32):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        image = cv2.resize(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), (side, side), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(folder / f"{i}.png"), image)
    return folder


def test_a_part_only_run_keeps_the_other_parts_results(tmp_path, monkeypatch):
    """`--part quality` after `--part speed` into the same folder (and back) merges:
    environment.json keeps the other part's keys and run, benchmark.md both sections."""
    from bench.environment import speed_run

    monkeypatch.setattr(hub_models.registry, "CHECKPOINT_DIR", tmp_path / "no-checkpoints")
    out = tmp_path / "out"
    common = ["--quick", "--threads", "1", "--models", "srcnn", "--no-engines", "--scales", "4",
              "--data", f"faces={_faces(tmp_path / 'faces')}", "--out", str(out)]
    threads = torch.get_num_threads()
    try:
        assert cli.main(common + ["--part", "speed"]) == 0
        after_speed = json.loads((out / "environment.json").read_text())
        assert cli.main(common + ["--part", "quality"]) == 0
        env = json.loads((out / "environment.json").read_text())
        page, speed_md = (out / "benchmark.md").read_text(), (out / "speed.md").read_text()
        assert cli.main(common + ["--part", "speed"]) == 0
        again = json.loads((out / "environment.json").read_text())
    finally:
        torch.set_num_threads(threads)
    assert {k: env[k] for k in ("peaks", "peak", "cpu_class", "memory_method", "mode_data_note")} == \
        {k: after_speed[k] for k in ("peaks", "peak", "cpu_class", "memory_method", "mode_data_note")}
    assert env["runs"]["speed"] == after_speed["runs"]["speed"] and "--part speed" in env["runs"]["speed"]["command"]
    assert env["command"] == env["runs"]["quality"]["command"] and "--part quality" in env["command"]
    assert speed_run(env)["command"] == after_speed["command"]
    assert "## Speed" in page and "## Quality" in page
    assert "--part speed" in page.split("## Speed")[0] and "--part quality" in page.split("## Speed")[0]
    assert page.split("## Speed\n\n")[1].split("\n\n## Quality")[0] == speed_md
    assert again["runs"]["quality"] == env["runs"]["quality"] and again["command"] == after_speed["command"]
    assert "## Quality" in (out / "benchmark.md").read_text()


def test_quick_run_may_not_overwrite_the_shipped_modes(tmp_path):
    with pytest.raises(SystemExit):
        cli.main(["--quick", "--write-modes", "--out", str(tmp_path)])


def test_card_results_are_reused_only_for_the_same_data(tmp_path):
    data = tmp_path / "HR"
    data.mkdir()
    ds = Dataset("CelebA-1000", data, [4], images=[torch.rand(3, 8, 8)] * 2)
    folder = tmp_path / "ckpt"
    folder.mkdir()
    row = {"dataset": "CelebA-1000", "scale": 4, "protocol": "dic", "num_images": 2,
           "command": f"python -m train.evaluate ckpt --data {data} --scale 4", "model": {"psnr_y": 30.0}}
    (folder / "eval_results.json").write_text(json.dumps([row]))
    assert card_row(folder, ds, 4, "dic")["model"]["psnr_y"] == 30.0
    assert card_row(folder, ds, 8, "dic") is None
    assert card_row(folder, ds, 4, "sparnet") is None
    other = Dataset("other", tmp_path, [4], images=ds.images)
    assert card_row(folder, other, 4, "dic") is None


def test_quality_rows_reuse_a_card_and_measure_bicubic_on_the_same_images(tmp_path, monkeypatch):
    import argparse

    from bench.quality import quality

    data = _faces(tmp_path / "HR", n=2)
    ckpt_dir = tmp_path / "checkpoints"
    tiny("rafsr").save_pretrained(ckpt_dir / "rafsr-tiny")
    card = {"dataset": "HR", "scale": 4, "protocol": "dic", "num_images": 2, "model": {"psnr_y": 99.0},
            "command": f"python -m train.evaluate rafsr-tiny --data {data} --scale 4"}
    (ckpt_dir / "rafsr-tiny" / "eval_results.json").write_text(json.dumps([card]))
    monkeypatch.setattr(hub_models.registry, "CHECKPOINT_DIR", ckpt_dir)
    ds = load_dataset(Dataset("HR", data, [4]), None)
    args = argparse.Namespace(quality_minutes=1.0, recompute=False, limit=None, protocol="dic", batch_size=4)
    rows = quality([ds], [("rafsr-tiny", hub_models.load(ckpt_dir / "rafsr-tiny"))], args, {}, lambda msg: None)
    bicubic, ours = rows
    assert (bicubic["model"], bicubic["source"], bicubic["images"]) == ("bicubic-x4", "computed", 2)
    assert (ours["source"], ours["mode"], ours["psnr_y"], ours["seconds"]) == ("card (eval_results.json)", "(card)", 99.0, None)
    assert ours["bicubic_psnr_y"] == bicubic["psnr_y"] and ours["gain_psnr_y"] == 99.0 - bicubic["psnr_y"]


def test_readme_tables_match_their_sources():
    """The measured tables of README.md and docs/*.md are generated (bench/readme_tables.py),
    never typed: every committed file must equal what the generator makes from the cards and
    bench/results/ files."""
    from bench import readme_tables

    documents = readme_tables.render_all()
    assert readme_tables.README in documents and len(documents) > 1  # README.md and docs/*.md
    for path, (current, fresh) in documents.items():
        assert fresh == current, f"{path.name}: run `python -m bench.readme_tables`"


def test_readme_tables_render_blocks_in_any_document_and_each_block_somewhere(tmp_path, monkeypatch):
    from bench import readme_tables

    monkeypatch.setattr(readme_tables, "BLOCKS", {"a": lambda: "| A |", "b": lambda: "| B |"})
    readme, doc = tmp_path / "README.md", tmp_path / "doc.md"
    readme.write_text("x\n<!-- BEGIN a -->\nold\n<!-- END a -->\ny\n")
    doc.write_text("<!-- BEGIN b -->\n<!-- END b -->\n<!-- BEGIN a -->old<!-- END a -->\n")
    out = readme_tables.render_all([readme, doc])
    assert out[readme][1] == "x\n<!-- BEGIN a -->\n| A |\n<!-- END a -->\ny\n"
    assert out[doc][1] == "<!-- BEGIN b -->\n| B |\n<!-- END b -->\n<!-- BEGIN a -->\n| A |\n<!-- END a -->\n"
    with pytest.raises(SystemExit, match="block for b"):
        readme_tables.render_all([readme])
    doc.write_text("<!-- BEGIN b -->\n<!-- END b -->\n<!-- BEGIN c -->\n<!-- END c -->\n")
    with pytest.raises(SystemExit, match="unknown generated block"):
        readme_tables.render_all([readme, doc])


def test_readme_shipped_table_lists_every_measured_row():
    import json

    from bench import readme_tables

    table = readme_tables.shipped_table()
    for name in hub_models.list_checkpoints():
        rows = json.loads((readme_tables.CHECKPOINT_DIR / name / "eval_results.json").read_text())
        for row in rows:
            assert f"| `{name}` | {row['dataset']} | x{row['scale']} | {row['num_images']} | {row['model']['psnr_y']:.2f} |" in table
            # every row's command is its card's Reproduce line (the README shows one as the example)
            card = (readme_tables.CHECKPOINT_DIR / name / "README.md").read_text()
            assert f"Reproduce: `{row['command']}`" in card


def test_readme_experiments_table_shows_every_run_with_its_commands(tmp_path):
    import json

    from bench import readme_tables

    row = {"dataset": "HR", "scale": 8, "num_images": 3, "command": "python -m train.evaluate X --data D",
           "model": {"psnr_y": 25.0, "ssim_y": 0.7, "lpips": 0.4}, "bicubic": {"psnr_y": 23.5}}
    runs = [{"setting": s, "train_command": f"python train/train.py --{s}", "results": [dict(row, model=dict(row["model"], psnr_y=p))],
             "best_checkpoint": {"steps": 10, "wall time": "0.1 h"}} for s, p in [("first", 25.0), ("second", 24.0)]]
    (tmp_path / "ab.json").write_text(json.dumps({"title": "T", "question": "Q?", "hardware": "H", "data": "CelebA-1000", "runs": runs}))
    table = readme_tables.experiments_table(tmp_path)
    assert "| first | step 10 (0.1 h) | CelebA-1000 (3) | x8 | 25.00 | 0.7000 | 0.4000 | 23.50 | +1.50 |" in table
    assert "| second |" in table and "| 24.00 |" in table and "| +0.50 |" in table
    lines = table.splitlines()
    assert lines.index("python train/train.py --first") < lines.index("python train/train.py --second")
    assert readme_tables.experiments_table(tmp_path / "none").startswith("(no experiments")


def test_experiment_measures_every_run_on_every_set_and_ranks_them(tmp_path, capsys):
    """bench.experiment: a spec without figures -> train.evaluate on every (run, set) -> a result
    file the README renders with the sets' sharpness and the order of the runs on each set."""
    from bench import experiment, readme_tables

    rng = np.random.default_rng(0)
    sets = {}
    for name, blur in (("sharp", 0), ("soft", 7)):
        folder = tmp_path / name
        folder.mkdir()
        for i in range(2):
            image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            cv2.imwrite(str(folder / f"{i}.png"), cv2.GaussianBlur(image, (blur, blur), 0) if blur else image)
        sets[name] = folder
    runs = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = MODELS["srcnn"](**MODELS["srcnn"].test_config)
        model.save_pretrained(tmp_path / f"m{seed}")
        runs.append({"setting": f"seed {seed}", "model": str(tmp_path / f"m{seed}"), "train_command": f"train {seed}"})
    spec = {"title": "T", "question": "Q?", "hardware": "H", "scale": 4, "runs": runs,
            "datasets": [{"name": n, "data": str(f), "command": f"make {n}"} for n, f in sets.items()]}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    out = tmp_path / "results" / "exp.json"
    out.parent.mkdir()
    assert experiment.main([str(tmp_path / "spec.json"), "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [len(r["results"]) for r in result["runs"]] == [2, 2]
    row = result["runs"][0]["results"][0]
    assert row["dataset"] == "sharp" and row["num_images"] == 2 and "--json" not in row["command"]
    sharpness = {d["name"]: d["sharpness_median"] for d in result["datasets"]}
    assert sharpness["sharp"] > 10 * sharpness["soft"]
    table = readme_tables.experiments_table(out.parent)
    assert "- sharp: seed " in table and "- soft: seed " in table and table.count("| seed ") == 4
    assert "make sharp" in table and table.index("make sharp") < table.index("train 0")
    # a spec naming a missing checkpoint is refused before anything runs
    spec["runs"][0]["model"] = str(tmp_path / "missing")
    (tmp_path / "bad.json").write_text(json.dumps(spec))
    assert experiment.main([str(tmp_path / "bad.json"), "--output", str(tmp_path / "x.json")]) == 2
    assert "missing" in capsys.readouterr().err and not (tmp_path / "x.json").exists()


def test_sharpness_export_writes_the_sharpest_crops_in_order(tmp_path, capsys):
    from train.sharpness import main

    rng = np.random.default_rng(3)
    src = tmp_path / "src"
    src.mkdir()
    noise = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    for name, blur in (("a", 9), ("b", 0), ("c", 3)):
        cv2.imwrite(str(src / f"{name}.png"), cv2.GaussianBlur(noise, (blur, blur), 0) if blur else noise)
    assert main([str(src), "--size", "24", "--crop", "0.5", "--export", str(tmp_path / "out"), "--count", "2"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0000_b.png", "0001_c.png"]
    assert cv2.imread(str(tmp_path / "out" / "0000_b.png")).shape == (24, 24, 3)
    assert main([str(src), "--export", str(tmp_path / "first"), "--count", "1", "--pick", "first"]) == 0
    assert [p.name for p in (tmp_path / "first").iterdir()] == ["0000_a.png"]
    assert main([str(src), "--export", str(tmp_path / "out")]) == 2  # not empty: refused
    assert "not empty" in capsys.readouterr().err


def test_evaluation_command_fills_the_card_and_records_itself(tmp_path):
    """train.evaluate --update-card: one row per scale in eval_results.json, measured against
    bicubic on the same LR, rendered in the card with the command that reproduces it."""
    from train import evaluate

    data = tmp_path / "faces"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(data / f"{i}.png"), cv2.GaussianBlur(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8), (5, 5), 0))
    torch.manual_seed(0)
    folder = tmp_path / "model"
    MODELS["mffcn"](**MODELS["mffcn"].test_config).save_pretrained(folder)
    argv = [str(folder), "--data", str(data), "--dataset", "tiny", "--scale", "2", "4", "--update-card",
            "--json", str(tmp_path / "rows.json")]
    assert evaluate.main(argv) == 0
    rows = json.loads((folder / "eval_results.json").read_text())
    assert [(r["dataset"], r["scale"], r["num_images"]) for r in rows] == [("tiny", 2, 3), ("tiny", 4, 3)]
    assert rows == json.loads((tmp_path / "rows.json").read_text())
    x2, x4 = (r["bicubic"]["psnr_y"] for r in rows)
    assert x2 > x4 + 1  # bicubic measured at each scale, not copied
    command = rows[0]["command"]
    assert command.startswith("python -m train.evaluate ") and "--scale 2 4 --update-card" in command
    assert "--json" not in command and "rows.json" not in command
    card = (folder / "README.md").read_text()
    assert "tiny" in card and f"{rows[1]['model']['psnr_y']:.2f}" in card
