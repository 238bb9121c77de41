"""Check a machine before a prepared training call (train/device_train.sh) spends its slot.

    python -m train.device_check --data data_cache/utkface --jobs "agrnet-x8 vdsr-x4" --init checkpoints/vdsr-x4

Checks, in a few seconds: torch's version, CUDA (unless --cpu-ok), the packages training
imports, the training code itself, the carried data (folder, lists, the listed images) and
the warm-start folders. Prints one line per problem and exits 2 if there is any, else 0.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

MIN_TORCH = (2, 6)  # torch.nn.utils.get_total_norm (train/trainer.py)
PACKAGES = {"accelerate": "accelerate", "safetensors": "safetensors", "huggingface_hub": "huggingface_hub",
            "numpy": "numpy", "cv2": "opencv-python-headless", "tqdm": "tqdm", "tensorboard": "tensorboard"}


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("+")[0].split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def check_torch(cpu_ok: bool) -> list[str]:
    try:
        import torch
    except Exception as err:  # noqa: BLE001 (a broken install fails in many ways)
        return [f"torch does not import ({type(err).__name__}: {err}): install torch>={'.'.join(map(str, MIN_TORCH))}"]
    problems = []
    if _version(torch.__version__) < MIN_TORCH:
        problems.append(f"torch {torch.__version__} is older than {'.'.join(map(str, MIN_TORCH))}, which training needs")
    if not cpu_ok and not torch.cuda.is_available():
        problems.append(f"no CUDA GPU visible to torch {torch.__version__} (CUDA build: {torch.version.cuda}); "
                        "this call trains on a GPU (TINY=1 or CPU_OK=1 to run on the CPU)")
    return problems


def check_packages() -> list[str]:
    problems = []
    for module, package in PACKAGES.items():
        try:
            importlib.import_module(module)
        except Exception as err:  # noqa: BLE001
            problems.append(f"package {package} is missing or broken ({type(err).__name__}: {err}): "
                            f"carry its wheel in data_cache/wheels/ or install it")
    try:
        importlib.import_module("train.train")
    except Exception as err:  # noqa: BLE001
        problems.append(f"the training code does not import ({type(err).__name__}: {err})")
    return problems


def check_data(data: Path, lists: list[str]) -> list[str]:
    if not data.is_dir():
        return [f"data folder {data} is missing: carry it (e.g. carry [\"data_cache\"] with {data} inside)"]
    problems = []
    for name in lists:
        path = data / name
        if not path.is_file():
            problems.append(f"{path} is missing (the image list the jobs train or validate on)")
            continue
        names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        missing = [n for n in names if not (data / n).is_file()]
        if not names:
            problems.append(f"{path} lists no images")
        elif missing:
            problems.append(f"{len(missing)} of the {len(names)} images in {path} are missing, e.g. {missing[0]} "
                            "(an incomplete copy of the data?)")
    return problems


def check_init(folders: list[str]) -> list[str]:
    return [f"warm-start folder {f} has no model.safetensors (checkpoints/ not in the working tree?)"
            for f in folders if not (Path(f) / "model.safetensors").is_file()]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="the carried data folder")
    p.add_argument("--lists", nargs="*", default=["train.txt", "val.txt"], help="image lists inside --data")
    p.add_argument("--init", nargs="*", default=[], help="warm-start folders the jobs use")
    p.add_argument("--cpu-ok", action="store_true", help="no GPU needed (tiny runs)")
    args = p.parse_args(argv)
    problems = check_torch(args.cpu_ok) + check_packages() + check_data(Path(args.data), args.lists) + check_init(args.init)
    for problem in problems:
        print(f"device check: {problem}", file=sys.stderr)
    if problems:
        print(f"device check: {len(problems)} problem(s); nothing was trained", file=sys.stderr)
        return 2
    import torch

    where = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    print(f"device check: torch {torch.__version__} on {where}; packages, data ({args.data}) and warm starts present")
    return 0


if __name__ == "__main__":
    sys.exit(main())
