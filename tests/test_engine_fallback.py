"""An optional inference engine (ONNX) never stops an upscale, and training validation never uses one."""

from __future__ import annotations

import warnings

import torch

import hub_models
import hub_models.onnx_export as onnx_export
from train.train import validate


def _failing_engine(*_args, **_kwargs):
    raise RuntimeError("Failed to export the model with torch.export\n(long trace)")


def test_a_failing_engine_falls_back_to_pytorch_once_with_a_warning(monkeypatch):
    model = hub_models.get_class("srcnn")(**hub_models.get_class("srcnn").test_config)
    model.inference_backend = "onnxruntime"
    monkeypatch.setattr(onnx_export, "engine_upscale", _failing_engine)
    lr = torch.rand(1, 3, 12, 12)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = model.upscale(lr, scale=4)
        again = model.upscale(lr, scale=4)
    assert out.shape == (1, 3, 48, 48) and torch.equal(out, again)
    messages = [str(w.message) for w in caught if "engine failed" in str(w.message)]
    assert len(messages) == 1 and "now runs in PyTorch" in messages[0] and "(long trace)" not in messages[0]
    assert model.inference_backend == "torch"


def test_validation_runs_in_pytorch_whatever_engine_the_model_would_pick(monkeypatch):
    model = hub_models.get_class("srcnn")(**hub_models.get_class("srcnn").test_config)
    model.inference_backend = "onnxruntime"
    monkeypatch.setattr(onnx_export, "engine_upscale", _failing_engine)
    hr = torch.rand(2, 3, 32, 32)
    lr = torch.nn.functional.interpolate(hr, scale_factor=0.25, mode="area")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fallback warning would mean the engine was tried
        scores = validate(model, lr, hr, 4)
    assert set(scores) >= {"psnr_y", "ssim_y"} and model.inference_backend == "onnxruntime"



CRASHING_RUN = """
import sys
import train.train as train_script

real_validate, calls = train_script.validate, []

def validate_then_fail(*args, **kwargs):
    calls.append(1)
    if len(calls) > 1:  # the first call scores bicubic before the loop starts the workers
        raise RuntimeError("validation broke")
    return real_validate(*args, **kwargs)

train_script.validate = validate_then_fail
train_script.main(sys.argv[1:])
"""


def test_a_run_that_fails_mid_loop_exits_instead_of_waiting_for_its_data_workers(tmp_path):
    """Data workers ignore SIGTERM (so `pkill` stops a run cleanly); after an error they must
    still be joined, or the crashed process waits for them forever at exit (seen: a run hung
    for minutes after a validation error)."""
    import subprocess
    import sys

    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    for i in range(4):
        cv2.imwrite(str(tmp_path / f"face{i}.png"), rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    (tmp_path / "val.txt").write_text("face0.png\nface1.png\n")
    argv = ["--model", "srcnn", "--data", str(tmp_path), "--output", str(tmp_path / "run"), "--steps", "4", "--tiny",
            "--hr-size", "16", "--batch-size", "2", "--workers", "1", "--no-progress", "--val-list", "val.txt",
            "--val-every", "1", "--drop-blurry", "0", "--threads", "1"]
    done = subprocess.run([sys.executable, "-c", CRASHING_RUN, *argv], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "validation broke" in done.stderr
