"""train/plan.py: the campaign's state is computed from the checkpoints' records, never typed."""

import json

import hub_models
from train import plan
from train.plan import Gain, LpipsBelow, Planned


def _row(scale, psnr, bicubic_psnr, lpips=0.3, dataset="CelebA-1000"):
    return {"dataset": dataset, "scale": scale, "model": {"psnr_y": psnr, "lpips": lpips},
            "bicubic": {"psnr_y": bicubic_psnr, "lpips": 0.5}}


def _checkpoint(root, name, rows, record=None):
    folder = root / name
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"x")
    (folder / "eval_results.json").write_text(json.dumps(rows))
    record = record or {"steps": 100, "hours": 0.5, "datasets": ["utkface"],
                        "stages": [{"from": "x", "steps": 50, "hours": 0.25}]}
    (folder / "training.json").write_text(json.dumps(record))


def test_every_shipped_checkpoint_is_planned():
    planned = [entry.checkpoint for entry in plan.PLAN]
    assert len(planned) == len(set(planned))
    assert set(hub_models.list_checkpoints()) <= set(planned)


def test_gain_target_met_and_missed(tmp_path):
    _checkpoint(tmp_path, "good", [_row(8, 26.0, 23.5), _row(8, 30.0, 20.0, dataset="UTKFace-val")])
    _checkpoint(tmp_path, "weak", [_row(8, 25.0, 23.5)])
    good = plan.progress(Planned("good", (Gain(8, 2.0),), "", ""), tmp_path)
    weak = plan.progress(Planned("weak", (Gain(8, 2.0),), "", ""), tmp_path)
    assert (good["state"], good["measured"]) == ("shipped, target met", "x8 +2.50 dB")  # the UTKFace row is ignored
    assert (weak["state"], weak["measured"]) == ("shipped, below target", "x8 +1.50 dB")
    assert good["trained"] == "0.8 h (150 steps)"  # own stage + the earlier one


def test_above_bicubic_target_needs_a_positive_gain(tmp_path):
    _checkpoint(tmp_path, "level", [_row(2, 30.0, 30.0)])
    assert plan.progress(Planned("level", (Gain(2, 0.0),), "", ""), tmp_path)["state"] == "shipped, below target"


def test_lpips_target_compares_with_the_counterpart(tmp_path):
    _checkpoint(tmp_path, "gan", [_row(4, 28.0, 25.0, lpips=0.20)])
    _checkpoint(tmp_path, "psnr", [_row(4, 28.5, 25.0, lpips=0.25)])
    row = plan.progress(Planned("gan", (Gain(4, 2.5), LpipsBelow(4, "psnr")), "", ""), tmp_path)
    assert row["state"] == "shipped, target met"
    assert "LPIPS 0.2000 vs 0.2500" in row["measured"]
    reverse = plan.progress(Planned("psnr", (LpipsBelow(4, "gan"),), "", ""), tmp_path)
    assert reverse["state"] == "shipped, below target"


def test_missing_or_unevaluated_checkpoints(tmp_path):
    assert plan.progress(Planned("absent", (Gain(8, 2.0),), "", ""), tmp_path)["state"] == "not shipped"
    _checkpoint(tmp_path, "x4only", [_row(4, 28.0, 25.0)])
    assert plan.progress(Planned("x4only", (Gain(8, 2.0),), "", ""), tmp_path)["state"].startswith("shipped, not evaluated")


def test_best_model_bars(tmp_path, monkeypatch):
    _checkpoint(tmp_path, "a", [_row(8, 25.5, 23.5)])
    _checkpoint(tmp_path, "b", [_row(8, 26.1, 23.5)])
    monkeypatch.setattr(plan, "PLAN", [Planned("a", (), "", ""), Planned("b", (), "", "")])
    monkeypatch.setattr(plan, "BEST_MODEL_BARS", {8: 26.0, 4: 31.0})
    assert plan.best_model_lines(tmp_path) == ["best x8: `b` 26.10 dB (bar 26.0 dB: met)",
                                               "best x4: no checkpoint evaluated at x4 (bar 31.0 dB)"]


def test_data_mix_names_the_shares():
    record = {"data sources": [{"folder": "celeba_wild", "weight": 0.5}, {"folder": "utkface", "weight": 0.5}]}
    assert plan.data_mix(record) == "celeba_wild + utkface 1:1"
    assert plan.data_mix({"data sources": [{"folder": "a", "weight": 0.25}, {"folder": "b", "weight": 0.75}]}) == "a + b 1:3"
    assert plan.data_mix({"datasets": ["utkface"]}) == "utkface"


def test_real_world_target_reads_the_real_world_rows(tmp_path):
    from train.plan import RealWorldLpips

    rows = [_row(4, 26.0, 25.0, lpips=0.40), {**_row(4, 24.0, 24.5, lpips=0.42), "dataset": plan.REAL_WORLD_BENCHMARK}]
    rows[1]["bicubic"]["lpips"] = 0.49
    _checkpoint(tmp_path, "rw", rows)
    row = plan.progress(Planned("rw", (Gain(4, 0.0), RealWorldLpips(4)), "", ""), tmp_path)
    assert row["state"] == "shipped, target met"
    assert row["measured"] == "x4 +1.00 dB; real-world LPIPS 0.4200 vs bicubic 0.4900"
    _checkpoint(tmp_path, "bicubic-only", rows[:1])
    assert plan.progress(Planned("bicubic-only", (RealWorldLpips(4),), "", ""), tmp_path)["state"].startswith(
        "shipped, not evaluated")
