"""The quality part: `hub_models.evaluation.evaluate_model` (the card protocol) on each dataset
of the suite, bicubic then every shipped checkpoint at the dataset's scales it supports.

A checkpoint's own full-set result in its eval_results.json (same data folder, scale,
protocol and image count) is reused instead of recomputed (column `source`); `--recompute`
forces. Evaluations share `--quality-minutes`: one that would not fit runs on the first N
images that fit (the `images` column says so). The papers' own figures (each class's
`paper_results`) are a separate table (`paper_rows`), next to ours on the matching test set."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path
from typing import Any, Callable

import torch

import hub_models
from bench.datasets import REPO, Dataset
from bench.papers import PAPER_COLUMNS, paper_rows
from bench.quality_report import quality_markdown
from bench.report import write_csv
from hub_models.evaluation import evaluate_model

QUALITY_COLUMNS = ["model", "architecture", "weights", "dataset", "scale", "protocol", "images",
                   "psnr_y", "ssim_y", "psnr_rgb", "lpips", "bicubic_psnr_y", "bicubic_ssim_y",
                   "bicubic_lpips", "gain_psnr_y", "mode", "seconds", "source", "note"]


def _card_data_folder(row: dict) -> list[Path] | None:
    """Where the card row's `--data` folder may be (None: a row of a subset or list)."""
    try:
        args = shlex.split(row.get("command", ""))
        data = Path(args[args.index("--data") + 1]).expanduser()
    except (ValueError, IndexError):
        return None
    if "--limit" in args or "--list" in args:
        return None
    return [data] if data.is_absolute() else [REPO / data, Path.cwd() / data]


def card_row(folder: Path, ds: Dataset, scale: int, protocol: str) -> dict | None:
    """A full-set result the checkpoint's card already holds for this data folder/scale/protocol."""
    path = folder / "eval_results.json"
    if not path.is_file():
        return None
    try:
        rows = json.loads(path.read_text())
    except ValueError:
        return None
    for row in rows:
        if row.get("scale") != scale or row.get("protocol") != protocol or row.get("num_images") != len(ds.images):
            continue
        candidates = _card_data_folder(row)
        if candidates and any(c.is_dir() and c.resolve() == ds.path.resolve() for c in candidates):
            return row
    return None


def merge_means(a: dict, b: dict) -> dict:
    """Two `evaluate_model` results on disjoint image sets -> the result on their union."""
    na, nb = a["num_images"], b["num_images"]
    return {"model": {k: (a["model"][k] * na + b["model"][k] * nb) / (na + nb) for k in a["model"]},
            "num_images": na + nb,
            "seconds_per_image": (a["seconds_per_image"] * na + b["seconds_per_image"] * nb) / (na + nb)}


def _jobs(datasets: list[Dataset], checkpoints: list[tuple[str, Any]]) -> list[tuple]:
    """(dataset, scale, name, model or None for bicubic) for every evaluation of the run."""
    jobs = []
    for ds in datasets:
        for scale in ds.scales:
            jobs.append((ds, scale, "bicubic", None))
            for name, model in checkpoints:
                if scale in model.supported_scales and (ds.archs is None or model.architecture in ds.archs):
                    jobs.append((ds, scale, name, model))
    return jobs


def _budgeted_scores(model, images: list[torch.Tensor], scale: int, args, share_s: float) -> dict:
    """`evaluate_model` on as many of `images` as fit `share_s` seconds, timed on a first batch."""
    trial = images[: min(len(images), args.batch_size)]
    evaluate_model(model, trial[:1], scale, args.protocol, 1, with_bicubic=False)  # warm-up (LPIPS net, kernels): not timed
    ts = time.perf_counter()
    result = evaluate_model(model, trial, scale, args.protocol, args.batch_size, with_bicubic=False)
    per_image = (time.perf_counter() - ts) / max(1, len(trial))
    n = len(images) if per_image * (len(images) - len(trial)) <= share_s else max(len(trial), int(share_s / per_image))
    if n > len(trial):
        rest = evaluate_model(model, images[len(trial):n], scale, args.protocol, args.batch_size, with_bicubic=False)
        result = merge_means(result, rest)
    return result


def _subject(name: str, model, scale: int) -> tuple[Any, str, str, list[str]]:
    """The model to evaluate, its architecture, its weights' label and its notes."""
    if model is None:
        return hub_models.create("bicubic", scale=scale).eval(), "bicubic", "none", []
    notes = ["trained for real-world degradation; bicubic LR is not its task"] if model.architecture == "agrnet_hr" else []
    return model, model.architecture, f"checkpoints/{name}", notes


def _row(label: str, arch: str, weights: str, ds: Dataset, scale: int, args, n: int, scores: dict,
         bic: dict | None, **run) -> dict:
    """A quality.csv row; `run`: mode, seconds, source and note (a list) of the evaluation."""
    gain = scores.get("psnr_y") - bic["psnr_y"] if bic and scores.get("psnr_y") is not None else None
    return {
        "model": label, "architecture": arch, "weights": weights, "dataset": ds.name, "scale": scale,
        "protocol": args.protocol, "images": n,
        "psnr_y": scores.get("psnr_y"), "ssim_y": scores.get("ssim_y"), "psnr_rgb": scores.get("psnr_rgb"),
        "lpips": scores.get("lpips"),
        "bicubic_psnr_y": bic.get("psnr_y") if bic else None, "bicubic_ssim_y": bic.get("ssim_y") if bic else None,
        "bicubic_lpips": bic.get("lpips") if bic else None, "gain_psnr_y": gain,
        "mode": run["mode"], "seconds": run["seconds"], "source": run["source"], "note": "; ".join(run["note"]),
    }


def _scores(card: dict | None, model, ds: Dataset, scale: int, args, share_s: float) -> tuple[dict, int, str, list]:
    """Scores, image count, source and notes of one evaluation: the card's when it has them."""
    if card:
        return card["model"], card["num_images"], "card (eval_results.json)", []
    result = _budgeted_scores(model, ds.images, scale, args, share_s)
    n = result["num_images"]
    notes = [f"first {n} of {len(ds.images)} images (time budget --quality-minutes)"] if n < len(ds.images) else []
    return result["model"], n, "computed", notes


def _bicubic_on(bicubic_scores: dict, ds: Dataset, scale: int, n: int, args) -> dict:
    """Bicubic's scores on the first `n` images of `ds` (measured once per dataset, scale and n)."""
    key = (ds.name, scale, n)
    if bicubic_scores.get(key) is None:  # a subset: bicubic on the same images
        bicubic_scores[key] = evaluate_model(hub_models.create("bicubic", scale=scale), ds.images[:n], scale,
                                             args.protocol, args.batch_size, with_bicubic=False)["model"]
    return bicubic_scores[key]


def quality(datasets: list[Dataset], checkpoints: list[tuple[str, Any]], args, chosen_modes: dict,
            log: Callable[[str], None]) -> list[dict]:
    """One quality.csv row per (dataset, scale, bicubic or checkpoint)."""
    rows: list[dict] = []
    deadline = time.perf_counter() + 60 * args.quality_minutes
    jobs = _jobs(datasets, checkpoints)
    reuse = not args.recompute and args.limit is None
    cards = [card_row(hub_models.registry.CHECKPOINT_DIR / name, ds, scale, args.protocol)
             if model is not None and reuse else None for ds, scale, name, model in jobs]
    bicubic_scores: dict[tuple, dict] = {}
    for i, (ds, scale, name, model) in enumerate(jobs):
        model_obj, arch, weights, note = _subject(name, model, scale)
        if chosen_modes.get(arch) and model is not None:
            model_obj.inference_mode = chosen_modes[arch]
        used_mode = "(card)" if cards[i] else model_obj.resolved_inference_mode(
            next((p.device for p in model_obj.parameters()), torch.device("cpu")))
        t0 = time.perf_counter()
        share = max(1.0, deadline - t0) / max(1, sum(c is None for c in cards[i:]))  # card rows take no time
        scores, n, source, budget_note = _scores(cards[i], model_obj, ds, scale, args, share)
        if model is None:
            bicubic_scores[(ds.name, scale, n)] = scores
        rows.append(_row(name if model is not None else f"bicubic-x{scale}", arch, weights, ds, scale, args, n, scores,
                         _bicubic_on(bicubic_scores, ds, scale, n, args), mode=used_mode,
                         seconds=time.perf_counter() - t0 if source == "computed" else None, source=source,
                         note=([ds.grey_note] if ds.greyscale else []) + note + budget_note))
        if model is not None:
            model_obj.inference_mode = None
        log(f"  quality {rows[-1]['model']} {ds.name} x{scale}: PSNR-Y {scores.get('psnr_y', float('nan')):.2f} "
            f"({n} images, {source}, {time.perf_counter() - t0:.0f} s)")
    return rows


def run_quality(args, env: dict, archs: list[str], datasets: list[Dataset], checkpoints: list[tuple[str, Any]],
                chosen_modes: dict, log: Callable[[str], None]) -> None:
    """The quality part (in the modes the speed part chose, when it ran): quality.csv,
    papers.csv and quality.md."""
    qrows = quality(datasets, checkpoints, args, chosen_modes, log)
    prows = paper_rows(qrows, [a for a in archs if a != "bicubic"])
    write_csv(args.out / "quality.csv", qrows, QUALITY_COLUMNS)
    write_csv(args.out / "papers.csv", prows, PAPER_COLUMNS)
    (args.out / "quality.md").write_text(quality_markdown(qrows, prows, env))
