import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# PyTorch engine in tests (an engine the benchmark chose for this CPU class would export every
# test model to ONNX on first use); tests/test_onnx_export.py checks the engines themselves
os.environ.setdefault("FACESR_INFERENCE_BACKEND", "torch")
torch.set_num_threads(min(2, torch.get_num_threads()))

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("FACESR_SHARED", REPO.parent / "shared"))


@pytest.fixture
def shared_dir() -> Path:
    """../shared (data, LPIPS reference); tests needing it skip with a reason where absent."""
    if not SHARED.is_dir():
        pytest.skip(f"shared data folder {SHARED} is absent (set FACESR_SHARED)")
    return SHARED


@pytest.fixture
def one_thread():
    """Tiny convolutions on a shared 2-core machine: one thread is several times faster than two
    (two OpenMP threads wait on each other whenever another process holds a core)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def fresh_accelerator_state():
    """accelerate keeps one process-wide AcceleratorState: an in-process run that picked bf16
    (the default on CPUs with native bf16) must not leak into the next test's Accelerator."""
    from accelerate.state import AcceleratorState

    yield
    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory) -> Path:
    """6 synthetic 48x48 face-like images and one corrupt file (the training tests' data)."""
    import cv2
    import numpy as np

    from train_helpers import smooth_face_like

    folder = tmp_path_factory.mktemp("faces")
    rng = np.random.default_rng(0)
    for i in range(6):
        cv2.imwrite(str(folder / f"face{i}.png"), smooth_face_like(rng))
    (folder / "corrupt.jpg").write_bytes(b"this is not a JPEG")
    return folder
