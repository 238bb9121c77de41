"""Face images for training: file lists, a sharpness filter, augmentation, deterministic order.

HR crops are made here (uint8 -> float [0,1]); LR images are synthesised on the fly in the
training loop with the library's degradations (`hub_models.degradations`), batched, on the
training device. Every random choice is derived from (seed, step, position), so a resumed
run sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from hub_models.evaluation import read_rgb  # uint8 HxWx3 RGB, or None with a warning

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def list_images(data_dir: str | Path, file_list: str | Path | None = None) -> list[Path]:
    """Image paths: the names in `file_list` (one per line, relative to `data_dir`, or an
    absolute list path / a name inside data_dir), else every image under `data_dir`."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"--data {data_dir} is not a folder")
    if file_list:
        list_path = Path(file_list)
        if not list_path.is_file():
            list_path = data_dir / file_list
        if not list_path.is_file():
            raise FileNotFoundError(f"file list {file_list} not found (also looked in {data_dir})")
        names = [line.strip() for line in list_path.read_text().splitlines() if line.strip()]
        paths = [data_dir / n for n in names]
    else:
        paths = sorted(p for p in data_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ValueError(f"no images found in {data_dir}" + (f" with list {file_list}" if file_list else ""))
    return paths


def laplacian_variance(path: Path) -> float:
    """Sharpness: variance of the Laplacian of the grey image (low = blurry); nan if unreadable."""
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    return float("nan") if image is None else float(cv2.Laplacian(image, cv2.CV_64F).var())


def sharpness(image: np.ndarray) -> float:
    """Variance of the Laplacian of a uint8 (3, H, W) RGB image's grey version (low = blurry)."""
    grey = cv2.cvtColor(np.ascontiguousarray(image.transpose(1, 2, 0)), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def sharpest(scores: list[float], count: int) -> list[int]:
    """Indices of the `count` highest `sharpness` scores, sharpest first (ties keep list order):
    the one rule for `train.py --val-pick sharpest` and `train.sharpness --export`."""
    return sorted(range(len(scores)), key=lambda i: -scores[i])[:count]


def drop_blurriest(paths: list[Path], fraction: float, cache_dir: Path | None = None) -> tuple[list[Path], dict]:
    """Drop the `fraction` of images with the lowest variance of the Laplacian, and every
    unreadable file (warned about and counted in the returned info: "unreadable").

    UTKFace holds blurry and upscaled photos; SR trained on blurry "ground truth" learns to
    blur. The rule (recorded in the model card): drop the blurriest `fraction` of the list,
    measured on the full-size grey image. Scores are cached by content of the list. Returns
    the kept paths and {"threshold", "kept", "of", "unreadable"} (numbers, for the record).
    With `fraction` <= 0 nothing is read here; `FaceCrops` then skips unreadable files.
    """
    if fraction <= 0:
        return paths, {"threshold": None, "kept": len(paths), "of": len(paths)}
    key = hashlib.sha1("\n".join(map(str, paths)).encode()).hexdigest()[:16]
    cache = (cache_dir / f"sharpness-{key}.json") if cache_dir else None
    if cache and cache.is_file():
        scores = json.loads(cache.read_text())
    else:
        scores = [laplacian_variance(p) for p in paths]
        if cache:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(scores))
            os.replace(tmp, cache)
    unreadable = [str(p) for p, s in zip(paths, scores) if s != s]
    if unreadable:
        shown = ", ".join(unreadable[:5]) + (f" (+{len(unreadable) - 5} more)" if len(unreadable) > 5 else "")
        warnings.warn(f"skipping {len(unreadable)} unreadable image(s): {shown}", stacklevel=2)
    valid = np.array([s for s in scores if s == s])
    threshold = float(np.quantile(valid, fraction)) if len(valid) else 0.0
    kept = [p for p, s in zip(paths, scores) if s == s and s >= threshold]
    info = {
        "threshold": threshold,  # variance of the Laplacian below which an image was dropped
        "kept": len(kept),
        "of": len(paths),
        "unreadable": len(unreadable),
    }
    return kept, info


def center_square(path: Path, size: int, fraction: float = 1.0):
    """The centre square covering `fraction` of the shorter side, resized to `size` (validation crops
    at the middle of the training crops' range, so validation sees the training face scale)."""
    image = read_rgb(path)
    if image is None:
        raise FileNotFoundError(f"validation image {path} is unreadable")
    h, w = image.shape[:2]
    side = max(1, int(round(min(h, w) * fraction)))
    top, left = (h - side) // 2, (w - side) // 2
    image = image[top : top + side, left : left + side]
    image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA) if side != size else image
    return image.transpose(2, 0, 1).copy()


class FaceCrops(Dataset):
    """HR training crops with augmentation, indexed by (image index, augmentation seed).

    Augmentation: a random square crop covering `crop_range` of the shorter side (scale
    augmentation: UTKFace crops are tighter than the CelebA test crops), resized to
    `hr_size` with area interpolation, random horizontal flip; `rotate90` adds the
    8 dihedral variants (for general SR: RDAN). Corrupt files are skipped with a warning:
    the next readable image is used in their place; each item comes with the number of
    files skipped to make it (0 normally), so the training loop counts them across worker
    processes (`skipped` only sees this process's).
    Decoded images are cached in memory (uint8) when `cache` is set.
    """

    def __init__(self, paths: list[Path], hr_size: int, crop_range: tuple[float, float] = (0.8, 1.0),
                 rotate90: bool = False, cache: bool = True):
        self.paths = paths
        self.hr_size = hr_size
        self.crop_range = crop_range
        self.rotate90 = rotate90
        self.cache: dict[int, np.ndarray] | None = {} if cache else None
        self.skipped: set[int] = set()

    def __len__(self) -> int:
        return len(self.paths)

    def _image(self, index: int) -> np.ndarray | None:
        if self.cache is not None and index in self.cache:
            return self.cache[index]
        image = None if index in self.skipped else read_rgb(self.paths[index])
        if image is None:
            self.skipped.add(index)
        elif self.cache is not None:
            self.cache[index] = image
        return image

    def __getitem__(self, item: tuple[int, int]) -> tuple[torch.Tensor, int]:
        """(uint8 (3, hr_size, hr_size) crop, number of unreadable files skipped for it)."""
        index, seed = item
        rng = np.random.default_rng(seed)
        for attempt in range(len(self.paths)):
            image = self._image((index + attempt) % len(self.paths))
            if image is not None:
                break
        else:
            raise RuntimeError("no readable image in the training list")
        h, w = image.shape[:2]
        side = min(h, w)
        crop = max(1, int(round(side * rng.uniform(*self.crop_range))))
        top = int(rng.integers(0, h - crop + 1))
        left = int(rng.integers(0, w - crop + 1))
        patch = image[top : top + crop, left : left + crop]
        if crop != self.hr_size:
            interp = cv2.INTER_AREA if crop > self.hr_size else cv2.INTER_CUBIC
            patch = cv2.resize(patch, (self.hr_size, self.hr_size), interpolation=interp)
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        if self.rotate90:
            patch = np.rot90(patch, int(rng.integers(0, 4)))
        return torch.from_numpy(np.ascontiguousarray(patch)).permute(2, 0, 1), attempt  # uint8 (3,H,W)


class MixedCrops(Dataset):
    """Several `FaceCrops` sources (e.g. celeba_wild and UTKFace) behind one index: items are
    (source, image index, augmentation seed); each source keeps its own crop range."""

    def __init__(self, parts: list[FaceCrops]):
        if not parts:
            raise ValueError("MixedCrops needs at least one source")
        self.parts = parts

    def __len__(self) -> int:
        return sum(len(part) for part in self.parts)

    def __getitem__(self, item: tuple[int, int, int]) -> tuple[torch.Tensor, int]:
        source, index, seed = item
        return self.parts[source][(index, seed)]


def mix_weights(weights: list[float] | None, count: int) -> list[float]:
    """Normalised sampling weights of `count` sources (None: equal); a clear error when out of range."""
    weights = [1.0] * count if not weights else [float(w) for w in weights]
    if len(weights) != count:
        raise ValueError(f"--data-weights gives {len(weights)} weight(s) for {count} --data folder(s): give one per folder")
    if any(not w >= 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"--data-weights must be >= 0 with a positive sum, got {weights}")
    total = sum(weights)
    return [w / total for w in weights]


class StepSampler(torch.utils.data.Sampler):
    """Yields (image index, augmentation seed) for global steps `start_step` onwards.

    The order is a fresh permutation per epoch, fixed by `seed`; with several processes
    each takes its own slice of every global batch. Everything depends only on
    (seed, step), which makes `--resume` reproduce the uninterrupted run's data exactly.

    With `source_sizes` and `weights` (a `MixedCrops` of several sources) each position draws
    its source with those probabilities and an image of it uniformly, both from (seed, position),
    and yields (source, image index, augmentation seed).
    """

    def __init__(self, num_images: int, batch_size: int, seed: int, start_step: int = 0,
                 rank: int = 0, world_size: int = 1, source_sizes: list[int] | None = None,
                 weights: list[float] | None = None):
        self.n, self.batch, self.seed = num_images, batch_size, seed
        self.start_step, self.rank, self.world = start_step, rank, world_size
        self.source_sizes = source_sizes if source_sizes and len(source_sizes) > 1 else None
        self.weights = np.asarray(weights if weights else [1.0], dtype=float)

    def _perm(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(self.n)

    def __iter__(self):
        step = self.start_step
        global_batch = self.batch * self.world
        while True:
            first = step * global_batch
            for pos in range(first + self.rank * self.batch, first + (self.rank + 1) * self.batch):
                aug_seed = int(self.seed * 1_000_003 + pos)
                if self.source_sizes:
                    rng = np.random.default_rng([self.seed, pos, 7])
                    source = int(rng.choice(len(self.source_sizes), p=self.weights))
                    yield source, int(rng.integers(self.source_sizes[source])), aug_seed
                    continue
                epoch, offset = divmod(pos, self.n)
                yield int(self._perm(epoch)[offset]), aug_seed
            step += 1


def hr_to_float(batch_uint8: torch.Tensor) -> torch.Tensor:
    return batch_uint8.float().div_(255.0)
