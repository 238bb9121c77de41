"""The checkout itself: under 50 MB (issue 20), and no data set committed (only the demo's few
example faces and each card's example images)."""

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIMIT_MB = 50
IMAGE_FOLDERS = ("demo", "demo/examples")  # plus checkpoints/<name>/examples


def _tracked() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / name for name in out.decode().split("\0") if name]


def test_checkout_stays_under_50_mb():
    sizes = {path: path.stat().st_size for path in _tracked() if path.is_file()}
    total = sum(sizes.values()) / 1e6
    largest = ", ".join(f"{p.relative_to(ROOT)} {s / 1e6:.1f} MB" for p, s in sorted(sizes.items(), key=lambda kv: -kv[1])[:5])
    assert total < LIMIT_MB, (f"the tracked files take {total:.1f} MB (limit {LIMIT_MB} MB); largest: {largest}. "
                              "Ship weights in int8/fp16 (train.ship picks the smallest measured harmless).")


def test_no_data_set_is_committed():
    images = [p.relative_to(ROOT) for p in _tracked() if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".bmp", ".webp"}]
    stray = [p for p in images if str(p.parent) not in IMAGE_FOLDERS
             and not (p.parts[0] == "checkpoints" and p.parent.name == "examples")]
    assert not stray, f"images outside the demo examples and the cards' examples: {stray[:10]}"
    assert sum(1 for p in images if str(p.parent) == "demo/examples") <= 10  # a few example faces, not a set
