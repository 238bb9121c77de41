"""The benchmark's test sets: the default suite (CelebA-1000 at x4/x8; Set5 and Set14 at x4
for bicubic and the architectures whose paper reports them), `--data` folders, and smooth
synthetic images for the mode check when there is no face data."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

import hub_models
from hub_models.evaluation import load_hr
from train.data import IMAGE_SUFFIXES, list_images

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("FACESR_SHARED", REPO.parent / "shared"))


@dataclass
class Dataset:
    name: str
    path: Path
    scales: list[int]
    archs: set[str] | None = None  # None: every architecture
    note: str = ""
    images: list[torch.Tensor] = field(default_factory=list)
    greyscale: int = 0
    grey_note: str = ""


def list_dataset_images(folder: Path) -> list[Path]:
    """Images directly in `folder` when there are any (Set5/Set14 keep greyscale copies in
    gray/, which must not count), else every image below it."""
    top = sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    return top or list_images(folder)


def _reports_general_sets(cls) -> bool:
    return any("set5" in str(r.get("dataset", "")).lower() or "set14" in str(r.get("dataset", "")).lower()
               for r in cls.paper_results)


def default_suite(scales: list[int]) -> list[Dataset]:
    """CelebA-1000 at `scales` (every architecture), Set5 and Set14 at x4 (bicubic and the
    architectures whose paper reports them); the folders that exist under shared/data."""
    general = {"bicubic"} | {name for name, cls in hub_models.MODELS.items() if _reports_general_sets(cls)}
    data = SHARED / "data"
    suite = [Dataset("CelebA-1000", data / "celeba_test1000" / "HR", scales)]
    for name in ("Set5", "Set14"):
        suite.append(Dataset(name, data / name.lower(), [4], archs=general,
                             note="general SR sets (not faces): bicubic and the architectures whose paper reports them"))
    return [d for d in suite if d.path.is_dir()]


def parse_data_args(values: list[str], scales: list[int]) -> list[Dataset]:
    """`--data FOLDER` or `--data NAME=FOLDER` values (a folder named HR or GT takes its parent's name)."""
    out = []
    for value in values:
        name, _, path = value.partition("=") if "=" in value and "/" not in value.split("=", 1)[0] else ("", "", value)
        path = Path(path).expanduser()
        if not path.is_dir():
            raise SystemExit(f"--data {path} is not a folder")
        name = name or (path.parent.name if path.name.lower() in ("hr", "gt") else path.name)
        out.append(Dataset(name, path, scales))
    return out


def _greyscale_note(grey: list[Path]) -> str:
    """Which greyscale files were single-channel (replicated to RGB) and which stored as RGB."""
    import cv2

    single = [p.name for p in grey if (cv2.imread(str(p), cv2.IMREAD_UNCHANGED) is not None
                                       and cv2.imread(str(p), cv2.IMREAD_UNCHANGED).ndim == 2)]
    stored_rgb = [p.name for p in grey if p.name not in single]
    parts = ([f"{', '.join(single[:3])} single-channel, replicated to RGB"] if single else []) + \
            ([f"{', '.join(stored_rgb[:3])} stored as RGB with equal channels"] if stored_rgb else [])
    return f"{len(grey)} greyscale image(s): " + "; ".join(parts) if grey else ""


def load_dataset(ds: Dataset, limit: int | None) -> Dataset:
    """Read the first `limit` images of `ds` as RGB (greyscale files replicated, and noted)."""
    paths = list_dataset_images(ds.path)[:limit]
    ds.images = load_hr(paths)  # OpenCV reads every file as 3-channel colour
    grey = [p for p, im in zip(paths, ds.images) if torch.equal(im[0], im[1]) and torch.equal(im[1], im[2])]
    ds.greyscale = len(grey)
    ds.grey_note = _greyscale_note(grey)
    return ds


def synthetic_faces(n: int, size: int, seed: int = 0) -> list[torch.Tensor]:
    """Smooth random images (no data available): enough to measure numeric drift of a mode."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, max(2, size // 8), max(2, size // 8), generator=g)
    hr = torch.nn.functional.interpolate(low, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
    return list(hr)
