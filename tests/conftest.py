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
