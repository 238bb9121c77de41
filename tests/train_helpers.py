"""Shared pieces of the training tests: synthetic face-like images and the record of a run as
its card says it (tests/test_train*.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hub_models.training_record import card_lines


def smooth_face_like(rng: np.random.Generator, size: int = 48) -> np.ndarray:
    """A smooth colour image with some structure (blobs + a stripe pattern), uint8 HxWx3."""
    y, x = np.mgrid[0:size, 0:size] / size
    image = np.zeros((size, size, 3))
    for c in range(3):
        for _ in range(4):
            cx, cy, s = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.1, 0.3)
            image[..., c] += rng.uniform(0.2, 0.8) * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s * s))
        image[..., c] += 0.3 * np.sin(2 * np.pi * (rng.uniform(1, 4) * x + rng.uniform(1, 4) * y))
    image = (image - image.min()) / (image.max() - image.min())
    return (255 * image).astype(np.uint8)


def raw_record(folder: Path) -> dict:
    """The training.json of an exported folder, as written (data)."""
    return json.loads((Path(folder) / "training.json").read_text())


def card_record(folder: Path) -> dict:
    """The training record of an exported folder as its card says it (key -> sentence)."""
    return card_lines(raw_record(folder))
