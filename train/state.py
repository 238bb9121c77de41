"""The training state on disk: the last two states, kept atomically, checked before a resume.

Layout in the run folder: `state/` (newest) and `state.prev/` (the one before). A save
writes `state.tmp/` (accelerate's `save_state`, the EMA, then `train_state.json` last, by an
atomic rename), then rotates: `state.prev/` -> `state.drop/`, `state/` -> `state.prev/`,
`state.tmp/` -> `state/`, and deletes `state.drop/`. A kill at any point leaves at least one
complete state among those names; `train_state.json` lists every file of its state with its
size, so a truncated file is found before anything is loaded.

On `--resume` the candidates are tried newest first (by the step in their train_state.json):
one whose files are incomplete or that fails to load is reported in one line and moved aside
as `<name>.damaged/`, and the next is tried. The state also holds the run's identity
(`run_identity`): resuming with a different model, recipe, batch, process count, precision
or data is refused with the differences listed, unless `--resume-changed` says it is meant.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from pathlib import Path

import torch

from hub_models.training_record import change_line

#: folders that may hold a state, in the order that wins among equal steps
STATE_NAMES = ("state", "state.tmp", "state.prev", "state.drop", "state.old", "state.settle-new", "state.settle-prev")
MANIFEST = "train_state.json"


# ----------------------------------------------------------------------------------------
# finding and checking
# ----------------------------------------------------------------------------------------
def _read_json(folder: Path) -> tuple[dict | None, str | None]:
    try:
        data = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as err:
        return None, f"{MANIFEST} is unreadable ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'empty'})"
    if not isinstance(data, dict):
        return None, f"{MANIFEST} does not hold a training state"
    return data, None


def state_candidates(output: Path) -> list[Path]:
    """Folders holding a train_state.json, newest first (by its step; unreadable ones first, as a
    state damaged by the crash is most likely the newest; ties by STATE_NAMES order)."""
    found = []
    for rank, name in enumerate(STATE_NAMES):
        folder = Path(output) / name
        if (folder / MANIFEST).is_file():
            data, _ = _read_json(folder)
            step = data.get("step") if data else None
            found.append((-(step if isinstance(step, (int, float)) else math.inf), rank, folder))
    return [folder for *_, folder in sorted(found, key=lambda t: t[:2])]


def find_state(output: Path) -> Path | None:
    """The newest state folder (complete or not: see check_state), or None."""
    candidates = state_candidates(output)
    return candidates[0] if candidates else None


def check_state(folder: Path) -> tuple[dict | None, str | None]:
    """(train_state.json's contents, None) when every listed file is there at its size, else
    (None, what is wrong). States written before the file list was kept pass on their JSON alone."""
    data, problem = _read_json(folder)
    if problem:
        return None, problem
    if not isinstance(data.get("step"), int):
        return None, f"{MANIFEST} has no step"
    for name, size in (data.get("_files") or {}).items():
        path = folder / name
        if not path.is_file():
            return None, f"{name} is missing"
        actual = path.stat().st_size
        if actual != size:
            return None, f"{name} is {actual} bytes, {size} expected (truncated or overwritten)"
    return data, None


# ----------------------------------------------------------------------------------------
# saving
# ----------------------------------------------------------------------------------------
def _write_atomic(path: Path, text: str) -> None:
    part = path.with_name(path.name + ".part")
    with open(part, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(part, path)


def save_training_state(accelerator, trainer, output: Path, history: dict, step: int) -> None:
    """accelerate's save_state into state.tmp/ (+ EMA, + train_state.json with the file list
    last), then the rotation that keeps the previous state as state.prev/."""
    output = Path(output)
    state_dir, tmp, prev, drop = (output / n for n in ("state", "state.tmp", "state.prev", "state.drop"))
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()  # every process's RNG file is in
    if accelerator.is_main_process:
        if trainer.ema is not None:
            from safetensors.torch import save_file

            save_file({k: v.detach().contiguous().cpu() for k, v in trainer.ema.state_dict().items()}, tmp / "ema.safetensors")
        history["step"] = step
        files = {str(p.relative_to(tmp)): p.stat().st_size for p in sorted(tmp.rglob("*")) if p.is_file()}
        _write_atomic(tmp / MANIFEST, json.dumps({**history, "_files": files}))
        history.pop("_files", None)
        if drop.exists():
            shutil.rmtree(drop)
        if prev.exists():
            prev.rename(drop)
        if state_dir.exists():
            state_dir.rename(prev)
        tmp.rename(state_dir)
        shutil.rmtree(drop, ignore_errors=True)
        shutil.rmtree(output / "state.old", ignore_errors=True)  # the single-state layout's leftover
    accelerator.wait_for_everyone()


# ----------------------------------------------------------------------------------------
# loading
# ----------------------------------------------------------------------------------------
def load_training_state(accelerator, trainer, folder: Path) -> dict:
    """Weights, optimisers, RNG (accelerate) and the EMA from `folder`; returns its history."""
    accelerator.load_state(str(folder))
    accelerator.step = 0  # saved at a step boundary: the gradient-accumulation count starts afresh
    history = json.loads((folder / MANIFEST).read_text())
    history.pop("_files", None)
    if trainer.ema is not None:
        ema_file = folder / "ema.safetensors"
        if ema_file.is_file():
            from safetensors.torch import load_file

            trainer.ema.load_state_dict(load_file(ema_file, device=str(accelerator.device)))
        else:
            trainer.ema.load_state_dict(trainer.net.state_dict())
            accelerator.print(f"--ema: no EMA in {folder}; the average starts from the resumed weights")
    return history


def _agree(accelerator, failed: bool) -> bool:
    """True when any process failed (every process takes the same decision)."""
    if accelerator.num_processes == 1:
        return failed
    flag = torch.tensor([float(failed)], device=accelerator.device)
    return bool(accelerator.reduce(flag, "sum").item() > 0)


def resume_state(accelerator, trainer, output: Path, identity: dict, allow_changes: bool) -> tuple[dict, Path] | None:
    """Load the newest usable state (None when there is none at all).

    A candidate with missing or truncated files, or that fails to load, is reported in one
    line and the previous one is tried; when none loads the run stops, saying how to warm-start
    instead. A state of another run identity stops the run with the differences listed, unless
    `allow_changes`: then the changes are appended to history["resumed with changes"]
    ({"step": N, "changes": [{"field", "saved", "now"}, ...]}).
    """
    output = Path(output)
    candidates = state_candidates(output)
    if not candidates:
        return None
    damaged: list[tuple[Path, str]] = []
    for index, folder in enumerate(candidates):
        data, problem = check_state(folder)
        if _agree(accelerator, problem is not None):
            problem = problem or "its files are incomplete on another process"
        elif data is not None:
            changes = identity_changes(data.get("identity"), identity)
            if changes and not allow_changes:
                raise SystemExit(
                    f"--resume: {folder} (step {data['step']}) was saved by a different run:\n  "
                    + "\n  ".join(map(change_line, changes))
                    + "\nResume with the same settings; or add --resume-changed to continue with these changes on "
                      "purpose (the card records them); or start a new --output.")
            try:
                history = load_training_state(accelerator, trainer, folder)
            except Exception as err:  # noqa: BLE001 (any unreadable file: report and try the previous state)
                problem = f"it does not load ({type(err).__name__}: {(str(err).splitlines() or [''])[0][:200]})"
            if _agree(accelerator, problem is not None):
                problem = problem or "it does not load on another process"
            else:
                if changes:
                    history.setdefault("resumed with changes", []).append({"step": history["step"], "changes": changes})
                    accelerator.print(f"--resume-changed: continuing with changes: {'; '.join(map(change_line, changes))}")
                history["identity"] = identity
                if damaged:
                    accelerator.print(f"resuming from the previous state {folder.name}/ (step {history['step']})")
                if accelerator.is_main_process:
                    _settle(output, folder, candidates[index + 1] if index + 1 < len(candidates) else None, damaged)
                accelerator.wait_for_everyone()
                return history, output / "state"
        accelerator.print(f"--resume: {folder.name}/ cannot be used: {problem}"
                          + (f"; trying {candidates[index + 1].name}/" if index + 1 < len(candidates) else ""))
        damaged.append((folder, problem))
    lines = "\n  ".join(f"{folder.name}/: {problem}" for folder, problem in damaged)
    raise SystemExit(
        f"--resume: no training state in {output} loads:\n  {lines}\n"
        f"Start again from the best weights of this run with --init-from {output / 'best'} (a fresh optimiser), "
        f"or from a shipped checkpoint (--init-from <name>, e.g. one under checkpoints/), with a new --output "
        f"or without --resume.")


def _settle(output: Path, chosen: Path, previous: Path | None, damaged: list[tuple[Path, str]]) -> None:
    """After a resume: damaged states moved aside as <name>.damaged/, `chosen` as state/, the next
    older one as state.prev/, other leftovers removed (every step leaves a findable state)."""
    for folder, _ in damaged:
        aside = folder.with_name(folder.name + ".damaged")
        shutil.rmtree(aside, ignore_errors=True)
        folder.rename(aside)
    if chosen.name == "state" and (previous is None or previous.name == "state.prev"):
        return
    for name in STATE_NAMES:
        folder = output / name
        if folder.exists() and folder not in (chosen, previous):
            shutil.rmtree(folder)
    new, old = output / "state.settle-new", output / "state.settle-prev"
    chosen.rename(new)
    if previous is not None:
        previous.rename(old)
    new.rename(output / "state")
    if previous is not None:
        old.rename(output / "state.prev")


# ----------------------------------------------------------------------------------------
# run identity
# ----------------------------------------------------------------------------------------
def list_digest(paths: list[Path], folder: str | Path) -> str:
    """Short hash of a training list's image names (relative to their folder)."""
    folder = Path(folder)
    names = "\n".join(str(Path(p).relative_to(folder)) if Path(p).is_relative_to(folder) else str(p) for p in paths)
    return hashlib.sha1(names.encode()).hexdigest()[:12]


def _plain(value):
    return json.loads(json.dumps(value, default=str))


def run_identity(*, recipe, model_config: dict, disc_config: dict | None, batch: int, processes: int,
                 precision: str, grad_accum: int, sync_bn: bool, seed: int, ema: float, sources: list[dict],
                 listed: list[list[Path]], train_list: str | None, validation: dict) -> dict:
    """What makes two runs the same run: resuming is exact only when all of it matches.
    Folders are named by their last part (a run may move between machines)."""
    gan = recipe.gan
    return _plain({
        "model": recipe.model,
        "model config": model_config,
        "discriminator config": disc_config,
        "recipe": {"losses": recipe.losses, "lr": recipe.lr, "betas": recipe.betas, "eps": recipe.eps,
                   "lr_halve_every": recipe.lr_halve_every, "scales": recipe.scales, "degradation": recipe.degradation,
                   "hr_size": recipe.hr_size, "grad_clip": recipe.grad_clip, "rotate90": recipe.rotate90,
                   "gan": {"adversarial": gan.adversarial, "lr": gan.lr, "betas": gan.betas} if gan else None},
        "batch per process": batch,
        "processes": processes,
        "gradient accumulation": grad_accum,
        "precision": precision,
        "sync batchnorm": sync_bn,
        "seed": seed,
        "ema": ema,
        "data": [{"folder": Path(src["folder"]).resolve().name, "weight": round(src["weight"], 6),
                  "crop_range": list(src["crop_range"]), "drop_blurry": src["drop_blurry"],
                  "list": Path(train_list).name if train_list else "all images",
                  "images": len(paths), "names": list_digest(paths, src["folder"])}
                 for src, paths in zip(sources, listed)],
        "validation": validation,
    })


def _flatten(value, prefix: str = "") -> dict:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = {}
        for i, item in enumerate(value):
            out.update(_flatten(item, f"{prefix}[{i}]"))
        out[f"{prefix} count"] = len(value)
        return out
    return {prefix: value}


def identity_changes(saved: dict | None, current: dict) -> list[dict]:
    """{"field", "saved", "now"} for every difference ("saved" / "now" left out where the field is
    absent; none for states saved before identities were kept)."""
    if not saved:
        return []
    old, new = _flatten(saved), _flatten(current)
    return [{"field": key, **({"saved": old[key]} if key in old else {}), **({"now": new[key]} if key in new else {})}
            for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]


def identity_differences(saved: dict | None, current: dict) -> list[str]:
    """'key: saved -> now' for every difference (none for states saved before identities were kept)."""
    return [change_line(change) for change in identity_changes(saved, current)]


# ----------------------------------------------------------------------------------------
# the log
# ----------------------------------------------------------------------------------------
def truncate_log(log_file: Path, step: int) -> int:
    """Keep the train_log.jsonl lines up to `step` (the resumed state's): lines a killed run wrote
    past its last saved state, and a line cut by the kill, are dropped. Returns how many."""
    log_file = Path(log_file)
    if not log_file.is_file():
        return 0
    kept, dropped = [], 0
    for line in log_file.read_text().splitlines():
        try:
            record = json.loads(line)
            keep = isinstance(record, dict) and record.get("step", math.inf) <= step
        except ValueError:
            keep = False
        if keep:
            kept.append(line)
        else:
            dropped += 1
    if dropped:
        _write_atomic(log_file, "".join(k + "\n" for k in kept))
    return dropped
