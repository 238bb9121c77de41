"""What a run gives back (`UpscaleResult`, `CompareRow`), how it is scored against the
original (the face SR papers' DIC protocol, through `hub_models.metrics`) and how the
scores are written (the library's `MetricSpec`s)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from hub_models import metrics

from .catalogue import ModelEntry
from .degradation import Degradation
from .framing import Framed

#: PSNR/SSIM protocol of the face SR papers (DIC): Y channel, 8-pixel border crop
PROTOCOL = "dic"
PROTOCOL_NOTE = f"PSNR/SSIM of the DIC protocol ({metrics.describe_protocol(PROTOCOL)}, Y = BT.601 luma); {metrics.LPIPS_NOTE}"
MIN_SCORED_SIDE = 24  # 8-px crop on both sides + the 7x7 SSIM window
#: the score columns of the demo's tables, in order (their specs: hub_models.metrics.METRICS)
SCORE_METRICS = ("psnr_y", "ssim_y", "psnr_rgb", "lpips")
#: a table cell without a value
MISSING = "–"


def metric_header(name: str) -> str:
    """A score column's title: the metric's label and whether higher or lower is better."""
    spec = metrics.METRICS[name]
    return f"{spec.label} {'↑' if spec.higher_is_better else '↓'}"


def metric_text(name: str, value: float | None, **kwargs) -> str:
    """A score as the page shows it: `metrics.format_metric` (the spec's digits, or `digits=`),
    "–" without a value, "∞" for the PSNR of a result identical to the original."""
    if value is None or value != value:
        return MISSING
    if value == math.inf:
        return "∞"
    return metrics.format_metric(name, value, **kwargs)


def score(sr: torch.Tensor, hr: torch.Tensor, scale: int) -> dict[str, float]:
    """PSNR-Y, SSIM-Y, PSNR-RGB (DIC protocol) and LPIPS of one image, as plain floats."""
    out = metrics.evaluate(sr, hr, protocol=PROTOCOL, scale=scale)
    return {k: float(v[0]) for k, v in out.items()}


def scorable(hr: torch.Tensor | None) -> bool:
    """Whether there is a ground truth large enough for the protocol's crop and window."""
    return hr is not None and min(hr.shape[-2:]) >= MIN_SCORED_SIDE


@dataclass
class UpscaleResult:
    model: ModelEntry
    degradation: Degradation
    lr: np.ndarray                     # uint8 (h, w, 3)
    lr_display: np.ndarray             # LR enlarged (nearest) to the output size
    sr: np.ndarray
    bicubic: np.ndarray | None         # None in mode "none" (nothing to compare against)
    hr: np.ndarray | None
    scores: dict[str, dict[str, float]]  # method -> metrics (+ time_ms); empty without ground truth
    times_ms: dict[str, float]
    framed: Framed
    photo_result: np.ndarray | None
    notes: list[str]

    def summary(self) -> dict:
        """JSON-ready description of the run (what the API's scores output holds); an
        infinite PSNR (result identical to the original) is given as None."""
        return {
            "model": self.model.name,
            "scale": int(self.degradation.scale),
            "degradation": self.degradation.as_dict(),
            "protocol": PROTOCOL_NOTE if self.scores else None,
            "input_size": [int(self.lr.shape[1]), int(self.lr.shape[0])],
            "output_size": [int(self.sr.shape[1]), int(self.sr.shape[0])],
            "face_box": self.framed.box.as_list() if self.framed.box else None,
            "scores": {m: {k: (v if math.isfinite(v) else None) for k, v in sc.items()} for m, sc in self.scores.items()},
            "time_ms": {k: round(v, 1) for k, v in self.times_ms.items()},
            "notes": self.notes,
        }


@dataclass
class CompareRow:
    """One model's line in "Compare all": its output and scores, or why it was skipped."""

    name: str
    label: str
    sr: np.ndarray | None
    scores: dict[str, float] | None
    time_ms: float | None
    skipped: str | None = None
