"""quality.md: our scores (quality.csv's rows) and the papers' tables side by side (papers.csv's
rows), as column specs; metric cells through the shared metrics spec."""

from __future__ import annotations

from bench.report import Column, metric, table, text
from hub_models import metrics


def _scale(v) -> str:
    return f"x{v}" if isinstance(v, int) else text(v)


QUALITY_TABLE = [
    Column("model", "model"), Column("weights", "weights"), Column("dataset", "dataset"),
    Column("scale", "scale", lambda v: f"x{v}"), Column("images", "images"),
    Column("psnr_y", "PSNR-Y", metric("psnr_y")), Column("ssim_y", "SSIM-Y", metric("ssim_y")),
    Column("lpips", "LPIPS", metric("lpips")), Column("bicubic_psnr_y", "bicubic PSNR-Y", metric("psnr_y")),
    Column("bicubic_ssim_y", "bicubic SSIM-Y", metric("ssim_y")), Column("gain_psnr_y", "gain (dB)", metric("psnr_y")),
    Column("mode", "mode"), Column("source", "source"), Column("note", "note"),
]
PAPER_TABLE = [
    Column("architecture", "architecture"), Column("method", "method"), Column("scale", "scale", _scale),
    Column("paper_dataset", "paper: test set"), Column("paper_psnr_y", "paper PSNR-Y", metric("psnr_y")),
    Column("paper_ssim_y", "paper SSIM-Y", metric("ssim_y")), Column("paper_lpips", "paper LPIPS", metric("lpips")),
    Column("ours_model", "ours: model", lambda v: v or "-"), Column("ours_dataset", "ours: test set", lambda v: v or "-"),
    Column("ours_psnr_y", "ours PSNR-Y", metric("psnr_y")), Column("ours_ssim_y", "ours SSIM-Y", metric("ssim_y")),
    Column("ours_lpips", "ours LPIPS", metric("lpips")), Column("note", "note"),
]


def quality_markdown(qrows: list[dict], prows: list[dict], env: dict) -> str:
    out = [f"Protocol `{env['protocol']}` ({env['protocol_desc']}); LR = antialiased bicubic downscale, "
           f"8-bit quantised; PSNR/SSIM on Y, {metrics.LPIPS_NOTE}; bicubic on the same LR. "
           "Our numbers only: the papers' own figures are in the next table, labelled paper."]
    out.append(table(QUALITY_TABLE, qrows))
    out.append("\n**The papers' tables side by side** (`paper` columns are the papers' own figures, quoted, on "
               "their own test sets and protocols; `ours` is this benchmark's measurement):\n")
    out.append(table(PAPER_TABLE, prows))
    return "\n".join(out) + "\n"
