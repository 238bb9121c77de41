"""The package as a user installs it: a wheel built from pyproject.toml, used outside the repository."""

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCES = ["pyproject.toml", "README.md", "LICENSE", "hub_models", "train", "demo", "checkpoints"]


def _readme_snippet() -> str:
    """The README's "Using a model" code block."""
    section = REPO.joinpath("README.md").read_text().split("## Using a model", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_wheel_builds_and_works_outside_the_repository(tmp_path):
    """Build the wheel (from a copy of the sources: builds write into the tree), unpack it as an
    installer would, and from an unrelated folder import it, run the README snippet on the bundled
    checkpoint and resolve the console scripts; the repository is not on the path."""
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        copy(REPO / name, src / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if (REPO / name).is_dir() else {}))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                            "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    wheel = next((tmp_path / "dist").glob("facesr_hub-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "hub_models/_checkpoints/rafsr-x4/model.safetensors" in names and "hub_models/weights/lpips_alex_v0.1.safetensors" in names
    assert not any(n.startswith(("tests/", "runs/", "bench/")) for n in names)
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = _readme_snippet() + """
import importlib.metadata as md, pathlib, sys
assert pathlib.Path(hub_models.__file__).is_relative_to(pathlib.Path(sys.argv[1])), hub_models.__file__
assert tuple(sr.shape) == (1, 3, 128, 128) and model.hub_record["name"] == "rafsr-x4"
scripts = {ep.name: ep for ep in md.distribution("facesr-hub").entry_points if ep.group == "console_scripts"}
assert sorted(scripts) == ["facesr", "facesr-demo", "facesr-train"], scripts
for ep in scripts.values():
    assert callable(ep.load()), ep
print("ok", hub_models.__file__)
"""
    env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1"}
    env.pop("FACESR_CHECKPOINTS", None)
    ran = subprocess.run([sys.executable, "-c", script, str(site)], cwd=elsewhere, env=env,
                         capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0 and "ok" in ran.stdout, ran.stdout + ran.stderr
    assert str(REPO) not in ran.stdout
