"""Training that survives faults and scales out: two kept states and the fallback, refused
resumes of another run, the divergence guard, the log cut back on resume, gradient
accumulation, the global mean loss and SyncBatchNorm over two CPU processes, and the
device script's environment check. Tiny configs on synthetic images, a few steps each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import train.train as train_script
from train.guard import DivergenceGuard
from train.losses import Criterion
from train.state import identity_differences, state_candidates, truncate_log
from train_helpers import card_record, raw_record

REPO = Path(__file__).resolve().parent.parent


pytestmark = pytest.mark.usefixtures("one_thread", "fresh_accelerator_state")  # tests/conftest.py


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    """8 synthetic 40x40 images with structure (blobs and stripes) and a train list."""
    folder = tmp_path_factory.mktemp("faces")
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:40, 0:40] / 40
    for i in range(8):
        image = np.stack([np.sin(2 * np.pi * (rng.uniform(1, 4) * x + rng.uniform(1, 4) * y)) for _ in range(3)], -1)
        cv2.imwrite(str(folder / f"f{i}.png"), ((image + 1) * 127.5).astype(np.uint8))
    (folder / "train.txt").write_text("".join(f"f{i}.png\n" for i in range(8)))
    return folder


def _args(data: Path, out: Path, steps: int, *extra: str, model: str = "srcnn") -> list[str]:
    return ["--model", model, "--data", str(data), "--output", str(out), "--steps", str(steps), "--tiny",
            "--hr-size", "32", "--batch-size", "2", "--workers", "0", "--no-progress", "--log-every", "1",
            "--drop-blurry", "0", "--mixed-precision", "no", *extra]


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


def _log_steps(out: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (out / "train_log.jsonl").read_text().splitlines()]


# -- two states, fallback ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def reference(faces, tmp_path_factory) -> dict[str, torch.Tensor]:
    """Weights after an uninterrupted 6-step run (one thread, as the tests: module fixtures run
    before the per-test one_thread)."""
    from accelerate.state import AcceleratorState

    out = tmp_path_factory.mktemp("ref") / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert train_script.main(_args(faces, out, 6, "--save-every", "2")) == 0
    finally:
        torch.set_num_threads(threads)
        AcceleratorState._reset_state(reset_partial_state=True)
    return _weights(out / "state")


def _truncate(path: Path) -> str:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return f"{path.name} is {path.stat().st_size} bytes"


def _scramble(path: Path) -> str:
    data = bytearray(path.read_bytes())
    data[: min(len(data), 4096)] = bytes(min(len(data), 4096))  # same size, header zeroed
    path.write_bytes(bytes(data))
    return "it does not load"


def _empty(path: Path) -> str:
    path.write_text("")
    return "train_state.json is unreadable"


@pytest.mark.parametrize("damage, name", [(_truncate, "model.safetensors"), (_scramble, "optimizer.bin"),
                                          (_empty, "train_state.json")])
def test_a_damaged_newest_state_resumes_from_the_previous(faces, tmp_path, reference, capsys, damage, name):
    """A run killed after its step-4 save, whose newest state is then damaged: --resume says what
    is wrong in one line, continues from step 2 and ends with the uninterrupted run's weights;
    the log holds every step once (lines past step 2 were cut)."""
    out = tmp_path / "run"
    assert train_script.main(_args(faces, out, 4, "--save-every", "2")) == 0
    assert [json.loads((out / d / "train_state.json").read_text())["step"] for d in ("state", "state.prev")] == [4, 2]
    said = damage(out / "state" / name)
    capsys.readouterr()
    assert train_script.main(_args(faces, out, 6, "--save-every", "2", "--resume")) == 0
    text = capsys.readouterr().out
    line = next(line for line in text.splitlines() if "cannot be used" in line)
    assert line.startswith("--resume: state/ cannot be used: ") and said in line and "trying state.prev/" in line
    assert "resumed from step 2" in text
    got = _weights(out / "state")
    assert all(torch.equal(got[k], reference[k]) for k in reference)
    assert _log_steps(out) == [1, 2, 3, 4, 5, 6]
    assert (out / "state.damaged").is_dir()  # kept aside for a look, out of the rotation
    assert [json.loads((out / d / "train_state.json").read_text())["step"] for d in ("state", "state.prev")] == [6, 4]


def test_no_loadable_state_says_how_to_warm_start(faces, tmp_path):
    out = tmp_path / "run"
    assert train_script.main(_args(faces, out, 4, "--save-every", "2")) == 0
    for folder in ("state", "state.prev"):
        _truncate(out / folder / "model.safetensors")
    with pytest.raises(SystemExit) as stop:
        train_script.main(_args(faces, out, 6, "--resume"))
    message = str(stop.value)
    assert "no training state" in message and "state/: model.safetensors is" in message
    assert "state.prev/: model.safetensors is" in message and f"--init-from {out / 'best'}" in message


def test_the_newest_state_is_found_after_a_kill_in_the_rotation(tmp_path):
    """A kill after state.tmp/ is complete but before it is renamed: the step decides."""
    for name, step in (("state", 4), ("state.tmp", 6), ("state.drop", 2)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "train_state.json").write_text(json.dumps({"step": step}))
    (tmp_path / "state.prev").mkdir()  # a rotation in progress: not yet a state
    assert [p.name for p in state_candidates(tmp_path)] == ["state.tmp", "state", "state.drop"]


# -- run identity ------------------------------------------------------------------------------
def test_resuming_another_run_is_refused_unless_meant(faces, tmp_path, capsys):
    out = tmp_path / "run"
    assert train_script.main(_args(faces, out, 2)) == 0
    (tmp_path / "fewer.txt").write_text("f0.png\nf1.png\nf2.png\n")
    changed = _args(faces, out, 4, "--resume", "--lr", "0.01", "--train-list", str(tmp_path / "fewer.txt"))
    changed[changed.index("--batch-size") + 1] = "3"
    with pytest.raises(SystemExit) as stop:
        train_script.main(changed)
    message = str(stop.value)
    for needle in ("was saved by a different run", "batch per process: 2 -> 3", "recipe.lr: 0.0001 -> 0.01",
                   "data[0].images: 8 -> 3", "--resume-changed"):
        assert needle in message, needle
    assert "precision" not in message and json.loads((out / "state" / "train_state.json").read_text())["step"] == 2
    assert train_script.main(changed + ["--resume-changed"]) == 0
    assert "resumed from step 2" in capsys.readouterr().out
    record = card_record(out / "last")
    assert record["steps"] == 4 and "batch per process: 2 -> 3" in record["resumed with changes"][0]
    assert {"field": "batch per process", "saved": 2, "now": 3} in raw_record(out / "last")["resumed with changes"][0]["changes"]
    assert "at step 2" in record["resumed with changes"][0] and "resumed with changes" in (out / "last" / "README.md").read_text()
    # the same settings again: accepted silently
    assert train_script.main(changed + ["--steps", "5"]) == 0


def test_identity_differences_name_each_changed_field():
    old = {"model": "srcnn", "recipe": {"lr": 1e-3}, "data": [{"folder": "a", "weight": 1.0}]}
    new = {"model": "srcnn", "recipe": {"lr": 1e-3}, "data": [{"folder": "a", "weight": 0.5}, {"folder": "b", "weight": 0.5}]}
    diffs = identity_differences(old, new)
    assert "data count: 1 -> 2" in diffs and "data[0].weight: 1.0 -> 0.5" in diffs and "data[1].folder: (absent) -> b" in diffs
    assert identity_differences(old, old) == [] and identity_differences(None, new) == []  # older states: not checked


# -- divergence, signals, the log --------------------------------------------------------------
def test_a_forced_divergence_stops_with_its_code_and_exports_nothing(faces, tmp_path, monkeypatch, capsys):
    """From step 13 on the loss is 1000x what it was (Adam keeps the weights finite): the guard
    stops after 3 such steps with exit 4, names the loss and suggests a lower lr."""
    real_call = Criterion.__call__
    calls = {"n": 0}

    def rising(self, sr, hr, gan_terms=None):
        total, parts = real_call(self, sr, hr, gan_terms)
        calls["n"] += 1
        return (total * 1000, parts) if calls["n"] > 12 else (total, parts)

    monkeypatch.setattr(Criterion, "__call__", rising)
    out = tmp_path / "run"
    code = train_script.main(_args(faces, out, 40, "--save-every", "5", "--diverge-steps", "3", "--diverge-window", "10"))
    assert code == train_script.EXIT_DIVERGED == 4
    text = capsys.readouterr().out
    assert "stopped at step 15: the loss diverged: above 10 x its" in text
    assert "since step 13" in text and "lower --lr (now 0.0001)" in text and "last/ is not exported" in text
    assert not (out / "last").exists() and _log_steps(out)[-1] == 15
    assert json.loads((out / "state" / "train_state.json").read_text())["step"] == 10


def test_the_guard_watches_the_gradient_norm_too():
    guard = DivergenceGuard(factor=10, patience=2, window=10, grad_factor=100)
    for step in range(1, 11):
        assert guard.observe(step, 1.0, 0.5) is None
    assert guard.observe(11, 1.0, 1e4) is None  # one spike is not a divergence
    assert guard.observe(12, 1.0, 0.5) is None
    assert guard.observe(13, 1.0, 1e4) is None
    verdict = guard.observe(14, 1.2, 2e4)
    assert verdict.startswith("the gradient norm diverged: above 100 x its running median (0.5)") and "since step 13" in verdict
    # a loss that jumps at the second step and stays there: judged against its start, never
    # against a median the jump would fill
    early = DivergenceGuard(factor=10, patience=5, window=100)
    verdicts = [early.observe(step, 0.3 if step == 1 else 7e13) for step in range(1, 7)]
    assert verdicts[:5] == [None] * 5 and verdicts[5].startswith("the loss diverged: above 10 x its value at the start (0.3)")
    assert list(early.losses) == [0.3]
    calm = DivergenceGuard(patience=1, window=10)
    for step in range(1, 11):
        calm.observe(step, 1.0, 0.5)
    assert calm.observe(11, float("nan"), float("inf")) is None  # non-finite values: left to the non-finite stop
    assert len(calm.losses) == 10 and calm.losses[-1] == 1.0
    with pytest.raises(ValueError, match="factors must be > 1"):
        DivergenceGuard(factor=0.5)


def test_max_time_is_a_clean_finish_and_the_record_says_where_it_stopped(faces, tmp_path):
    out = tmp_path / "run"
    assert train_script.main(_args(faces, out, 10**6, "--max-time", "1e-9", "--save-every", "1000")) == 0
    record = card_record(out / "last")
    assert record["status"].startswith("stopped at --max-time 1e-09 min, step 1 of 1000000")


def test_truncate_log_drops_lines_past_the_step_and_a_cut_line(tmp_path):
    log = tmp_path / "train_log.jsonl"
    log.write_text("".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in range(1, 6)) + '{"step": 6, "lo')
    assert truncate_log(log, 3) == 3 and [json.loads(l)["step"] for l in log.read_text().splitlines()] == [1, 2, 3]
    assert truncate_log(tmp_path / "absent.jsonl", 3) == 0


# -- batches over processes and accumulation ---------------------------------------------------
def test_gradient_accumulation_matches_the_larger_batch(faces, tmp_path):
    """2 accumulated batches of 2 = one batch of 4 (the same images, the same update)."""
    big, acc = tmp_path / "big", tmp_path / "acc"
    four = _args(faces, big, 3)
    four[four.index("--batch-size") + 1] = "4"
    assert train_script.main(four) == 0
    assert train_script.main(_args(faces, acc, 3, "--grad-accum", "2")) == 0
    a, b = _weights(big / "last"), _weights(acc / "last")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    record = card_record(acc / "last")
    assert record["batch"].startswith("2 x 1 process(es) x 2 accumulated (gradient accumulation: 4 images per step)")
    assert [json.loads(l)["loss"] for l in (acc / "train_log.jsonl").read_text().splitlines()] == pytest.approx(
        [json.loads(l)["loss"] for l in (big / "train_log.jsonl").read_text().splitlines()], rel=1e-5)


def test_two_processes_log_the_global_mean_and_share_batchnorm_statistics(faces, tmp_path):
    """CRLNet (BatchNorm in G and D) on 2 CPU processes with 2 images each logs the losses one
    process with the 4 images computes: the mean over both processes, with BatchNorm statistics
    over the global batch (SyncBatchNorm). Rank 0's own loss, or per-process BatchNorm, would differ."""
    extra = ["--loss-weights", '{"perceptual_mse": 0}', "--save-every", "100"]
    one = tmp_path / "one"
    four = _args(faces, one, 2, *extra, model="crlnet")
    four[four.index("--batch-size") + 1] = "4"
    assert train_script.main(four) == 0
    two = tmp_path / "two"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--module", "train.train",
           *_args(faces, two, 2, *extra, model="crlnet")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, cwd=REPO)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "SyncBatchNorm:" in log and "BatchNorm layer(s) normalise over all 2 processes" in log
    rows = {name: [json.loads(l) for l in (d / "train_log.jsonl").read_text().splitlines()] for name, d in
            (("one", one), ("two", two))}
    assert [r["step"] for r in rows["two"]] == [1, 2]
    for a, b in zip(rows["one"], rows["two"]):
        for key in ("loss", "d_loss", "l1", "adversarial"):
            if key in a:
                # measured: 1e-7 apart; per-process BatchNorm: 2e-4 (loss) and 2e-2 (d_loss) apart
                assert b[key] == pytest.approx(a[key], rel=1e-5), (key, a[key], b[key])
    record = card_record(two / "last")
    assert record["batchnorm"].startswith("SyncBatchNorm over 2 processes")
    assert "SyncBatchNorm" not in (two / "last" / "config.json").read_text()


# -- the device script -------------------------------------------------------------------------
def test_the_device_script_checks_its_environment_first(faces, tmp_path):
    """Missing data or list files, an unknown job and (without TINY) a missing GPU stop
    train/device_train.sh within seconds with the reason, before any job starts."""
    script = REPO / "train" / "device_train.sh"
    base = {**os.environ, "PYTHON": sys.executable, "RUNS": str(tmp_path / "runs"), "OMP_NUM_THREADS": "1"}

    def run(**env):
        start = time.monotonic()
        done = subprocess.run(["bash", str(script), "1"], env={**base, **env}, capture_output=True, text=True, timeout=120)
        return done.returncode, done.stdout + done.stderr, time.monotonic() - start

    code, text, took = run(TINY="1", JOBS="srcnn-x4", DATA=str(tmp_path / "absent"), OUT=str(tmp_path / "o1"))
    assert code == 2 and "data folder" in text and "is missing" in text and took < 60, text
    assert "nothing was trained" in (tmp_path / "o1" / "summary.txt").read_text()
    assert not list((tmp_path / "runs").glob("dev-srcnn-x4*"))
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "train.txt").write_text("gone.png\n")
    code, text, _ = run(TINY="1", JOBS="srcnn-x4", DATA=str(partial), OUT=str(tmp_path / "o2"))
    assert code == 2 and "val.txt is missing" in text and "1 of the 1 images" in text, text
    code, text, took = run(TINY="1", JOBS="srcnn-x4 nope", DATA=str(faces), OUT=str(tmp_path / "o3"))
    assert code == 2 and "unknown job 'nope'" in text and took < 10, text
    if not torch.cuda.is_available():
        (tmp_path / "data").mkdir()
        for name in ("train.txt", "val.txt"):
            (tmp_path / "data" / name).write_text("f0.png\n")
        cv2.imwrite(str(tmp_path / "data" / "f0.png"), np.zeros((8, 8, 3), np.uint8))
        code, text, _ = run(JOBS="srcnn-x4", DATA=str(tmp_path / "data"), OUT=str(tmp_path / "o4"))
        assert code == 2 and "no CUDA GPU visible" in text, text


def test_a_nonfinite_step_under_compile_and_bf16_names_the_likely_cause(faces, tmp_path, monkeypatch, capsys):
    """inductor's bf16 backward on the CPU turns RAFSR's gradients NaN (torch 2.14.1, bench.train_speed):
    the non-finite guard stops the run before the update and says what to change."""
    from train import trainer as trainer_module

    real = trainer_module.Trainer.losses

    def nan_losses(self, hr, degrade_seed):
        loss, parts, d_loss = real(self, hr, degrade_seed)
        return loss * float("nan"), parts, d_loss

    monkeypatch.setattr(trainer_module.Trainer, "losses", nan_losses)  # no compiler needed to reach the message
    import accelerate

    asked: list = []
    monkeypatch.setattr(accelerate, "Accelerator", _fake_compiling_accelerator(accelerate.Accelerator, asked))
    assert train_script.main(_args(faces, tmp_path / "c", 2, "--compile", "--mixed-precision", "bf16")) == 3
    said = capsys.readouterr().out
    assert "non-finite loss at step" in said and "likely inductor's bf16 backward" in said and "drop --compile" in said
    assert train_script.main(_args(faces, tmp_path / "e", 2, "--mixed-precision", "bf16")) == 3
    assert "inductor" not in capsys.readouterr().out  # without --compile: the plain message
    assert asked == ["inductor", None]  # --compile reaches accelerate as its dynamo backend


def _fake_compiling_accelerator(cls, asked: list):
    """accelerate's Accelerator that notes the dynamo backend asked for and does not compile (seconds)."""
    def make(*args, dynamo_backend=None, **kwargs):
        asked.append(dynamo_backend)
        return cls(*args, **kwargs)
    return make


def test_warm_start_refuses_model_kwargs_that_disagree_with_the_checkpoint(faces, tmp_path):
    out = tmp_path / "run"
    assert train_script.main(_args(faces, out, 2)) == 0
    config = json.loads((out / "last" / "config.json").read_text())
    same = json.dumps({"scale": config["scale"]})
    assert train_script.main(_args(faces, tmp_path / "same", 1, "--init-from", str(out / "last"),
                                   "--model-kwargs", same)) == 0
    with pytest.raises(SystemExit) as stop:
        train_script.main(_args(faces, tmp_path / "other", 1, "--init-from", str(out / "last"),
                                "--model-kwargs", json.dumps({"scale": config["scale"] + 1})))
    message = str(stop.value)
    assert "disagrees with" in message and f"scale: {config['scale']}" in message and "drop --model-kwargs" in message
