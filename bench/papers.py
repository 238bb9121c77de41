"""The papers' own figures (each class's `paper_results`, quoted) next to ours on the matching
test set: Set5/Set14 where the paper reports them, CelebA-1000 for every face test set."""

from __future__ import annotations

import hub_models

PAPER_COLUMNS = ["architecture", "paper_dataset", "scale", "method", "paper_psnr_y", "paper_ssim_y",
                 "paper_lpips", "ours_model", "ours_dataset", "ours_images", "ours_psnr_y",
                 "ours_ssim_y", "ours_lpips", "note"]


def _norm(name: str) -> str:
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


def _our_test_set(paper_dataset: str) -> str:
    lowered = paper_dataset.lower()
    return "Set14" if "set14" in lowered else "Set5" if "set5" in lowered else "CelebA-1000"


def _ours(quality_rows: list[dict], ours_arch: str | None, scale, pdata: str) -> tuple[dict | None, list[str]]:
    """Our row to set beside the paper's (None when there is none) and the notes on the pairing."""
    if ours_arch is None:
        return None, ["method not implemented here"]
    candidates = [q for q in quality_rows if q["architecture"] == ours_arch and q["scale"] == scale]
    want = _our_test_set(pdata)
    ours = next((q for q in candidates if q["dataset"] == want), None) or (candidates[0] if candidates else None)
    if ours is None:
        measured = ours_arch == "bicubic" or any(q["architecture"] == ours_arch for q in quality_rows)
        return None, ["not a scale of this benchmark (a checkpoint's card may have it)" if measured else "no checkpoint yet"]
    if "celeba" not in pdata.lower() and ours["dataset"] not in pdata:
        return ours, [f"different test set: paper {pdata.split(' (')[0]}, ours {ours['dataset']}"]
    if "celeba" in pdata.lower():
        return ours, ["same CelebA test images (paper's split)" if "1000" in pdata else "CelebA, split may differ"]
    return ours, []


def paper_rows(quality_rows: list[dict], archs: list[str]) -> list[dict]:
    """Each paper's own figures (labelled paper) next to ours on the matching test set."""
    rows = []
    registered = {_norm(n): n for n in hub_models.MODELS}
    for arch in archs:
        for pr in hub_models.MODELS[arch].paper_results:
            method = pr.get("method", arch)
            pdata = str(pr.get("dataset", ""))
            ours, note = _ours(quality_rows, registered.get(_norm(method)), pr.get("scale"), pdata)
            if pr.get("note"):
                note.append(f"paper: {pr['note']}")
            rows.append({
                "architecture": arch, "paper_dataset": pdata, "scale": pr.get("scale"), "method": method,
                "paper_psnr_y": pr.get("psnr_y"), "paper_ssim_y": pr.get("ssim_y"), "paper_lpips": pr.get("lpips"),
                "ours_model": ours["model"] if ours else "", "ours_dataset": ours["dataset"] if ours else "",
                "ours_images": ours["images"] if ours else "",
                "ours_psnr_y": ours["psnr_y"] if ours else None, "ours_ssim_y": ours["ssim_y"] if ours else None,
                "ours_lpips": ours["lpips"] if ours else None, "note": "; ".join(note),
            })
    return rows
