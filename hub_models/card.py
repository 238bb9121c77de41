"""Model cards: YAML metadata + a readable page, filled only from what is handed in.

The metrics table is built from `eval_results`, rows produced by the project's evaluation
command (never typed in). Each row is a dict:

    {"dataset": "CelebA-1000 (FSRNet test split)", "scale": 8, "protocol": "dic",
     "num_images": 1000, "command": "python -m train.evaluate ...",
     "model": {"psnr_y": ..., "ssim_y": ..., "lpips": ..., "psnr_rgb": ...},
     "bicubic": {... same keys ...}}      # "bicubic" optional

`training` is a free dict describing the run (data, steps, wall time, hardware, precision,
deviations); the training script fills it. The paper's own figures come from the class's
`paper_results` and are always labelled "paper".
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

if TYPE_CHECKING:
    from .base import SRModel

DATA_TERMS = (
    "UTKFace and CelebA are released for non-commercial research only; weights trained on "
    "them inherit these terms (the code is MIT, the weights are not)."
)

METRIC_NAMES = {"psnr_y": "PSNR-Y (dB)", "ssim_y": "SSIM-Y", "lpips": "LPIPS (alex)", "psnr_rgb": "PSNR-RGB (dB)"}

MODEL_CARD_TEMPLATE = """---
{{ card_data }}
---

# {{ title }}

{{ summary }}

- **Paper:** {{ paper_line }}
- **Architecture:** `{{ architecture }}` ({{ num_params }} parameters), scale(s) {{ scales }},
  input: {{ input_kind }}
- **Code:** {{ repo_url }}

## Use it

```python
import hub_models
model = hub_models.load("{{ load_name }}")   # or {{ class_name }}.from_pretrained(folder_or_repo_id)
sr = model.upscale(lr)                       # lr: (N,3,h,w) float in [0,1] -> (N,3,h*s,w*s)
```

## Results

{{ metrics_table }}

## Training

{{ training_section }}

**Data terms.** {{ data_terms }}

## Paper says / we do

{{ decisions_table }}

## Config

```json
{{ config_json }}
```
"""


def _fmt(value: Any, metric: str) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if metric in ("ssim_y", "lpips") else f"{value:.2f}"


def metrics_table(model: "SRModel", eval_results: list[dict] | None) -> str:
    """Markdown table of our measured rows, bicubic measured the same way, and the paper."""
    lines = []
    metrics = ["psnr_y", "ssim_y", "lpips", "psnr_rgb"]
    header = "| data | scale | method | " + " | ".join(METRIC_NAMES[m] for m in metrics) + " |"
    lines += [header, "|" + "---|" * (3 + len(metrics))]
    commands = []
    for row in eval_results or []:
        for who in ("model", "bicubic"):
            if who in row:
                label = "**this model**" if who == "model" else "bicubic"
                cells = " | ".join(_fmt(row[who].get(m), m) for m in metrics)
                lines.append(f"| {row['dataset']} | x{row['scale']} | {label} | {cells} |")
        if row.get("command") and row["command"] not in commands:
            commands.append(row["command"])
    for ref in model.paper_results:
        cells = " | ".join(_fmt(ref.get(m), m) for m in metrics)
        lines.append(f"| {ref['dataset']} | x{ref['scale']} | paper: {ref.get('method', model.architecture)} | {cells} |")
    if not eval_results:
        lines.insert(0, "No evaluation results were handed to this card: the model has not been measured yet.\n")
    notes = []
    protocols = sorted({row.get("protocol", "dic") for row in eval_results or []})
    if protocols:
        notes.append(
            f"Measured with protocol(s) {', '.join(protocols)} (`dic`: Y channel of BT.601, rounded, "
            "8-pixel border cropped, 7x7 uniform SSIM; per-image values averaged). "
            "LR = antialiased bicubic downscale of the HR image. LPIPS: AlexNet v0.1 on RGB."
        )
    if model.paper_results:
        notes.append("Rows labelled *paper* are the paper's own figures, on the paper's data, quoted for reference.")
    for command in commands:
        notes.append(f"Reproduce: `{command}`")
    return "\n".join(lines) + ("\n\n" + "\n\n".join(notes) if notes else "")


def model_index(model: "SRModel", eval_results: list[dict] | None) -> list[EvalResult]:
    results = []
    for row in eval_results or []:
        for metric, value in row["model"].items():
            if value is None or metric not in METRIC_NAMES:
                continue
            results.append(
                EvalResult(
                    task_type="image-to-image",
                    task_name=f"Face super-resolution x{row['scale']}",
                    dataset_type=row.get("dataset_id", row["dataset"].split()[0].lower()),
                    dataset_name=row["dataset"],
                    dataset_split=row.get("split", "test"),
                    metric_type=metric,
                    metric_name=f"{METRIC_NAMES[metric]} x{row['scale']}",
                    metric_value=round(float(value), 4),
                )
            )
    return results


def _plain(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def training_section(training: dict | None) -> str:
    if not training:
        return "These weights are untrained or the training record was not handed to this card."
    lines = []
    for key, value in training.items():
        if key.startswith("_"):  # machine-readable entries, not for the card
            continue
        if isinstance(value, (list, tuple)):
            value = "; ".join(_plain(v) for v in value)
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={_plain(v)}" for k, v in value.items())
        lines.append(f"- **{key.replace('_', ' ')}:** {value}")
    return "\n".join(lines)


def card_context(model: "SRModel", eval_results: list[dict] | None = None, training: dict | None = None, name: str | None = None) -> dict:
    """Everything the card template needs besides `card_data`."""
    paper = model.paper
    authors = paper.get("authors", "")
    paper_line = f"{paper.get('title', 'n/a')}" + (f" — {authors}" if authors else "")
    if paper.get("venue") or paper.get("year"):
        paper_line += f" ({paper.get('venue', '')} {paper.get('year', '')})".replace("( ", "(").replace(" )", ")")
    if paper.get("url"):
        paper_line += f", {paper['url']}"
    doc = (type(model).__doc__ or "").strip().split("\n\n")[0]
    decisions = ["| paper says | we do |", "|---|---|"] + [
        f"| {said.replace('|', '/')} | {done.replace('|', '/')} |" for said, done in model.decisions
    ]
    num_params = sum(p.numel() for p in model.parameters())
    summary = " ".join(doc.split())
    gan_source = ((training or {}).get("recipe sources") or {}).get("gan", "")
    if isinstance(gan_source, str) and gan_source.startswith("dropped"):
        summary += (" **This checkpoint is the generator after a pre-training stage without the adversarial"
                    " term** (no discriminator; recipe sources: gan), not the GAN-trained model.")
    return {
        "title": name or f"{type(model).__name__} (x{'/x'.join(map(str, model.supported_scales))})",
        "summary": summary,
        "paper_line": paper_line,
        "architecture": model.architecture,
        "class_name": type(model).__name__,
        "num_params": f"{num_params / 1e6:.3f} M",
        "scales": ", ".join(f"x{s}" for s in model.supported_scales),
        "input_kind": "bicubic pre-upsampled LR (done inside `upscale`)" if model.pre_upsampled else "the LR image",
        "load_name": name or model.architecture,
        "metrics_table": metrics_table(model, eval_results),
        "training_section": training_section(training),
        "data_terms": DATA_TERMS,
        "decisions_table": "\n".join(decisions) if model.decisions else "No open decisions.",
        "config_json": json.dumps(model.config_dict(), indent=2, sort_keys=True),
        "_eval_results": eval_results,
        "_training": training,
        "_name": name,
    }


def build_card(model: "SRModel", **context: Any) -> ModelCard:
    """Render the card for `model`; `context` is what `card_context` returned."""
    info = model._hub_mixin_info
    training = context.pop("_training", None) or {}
    eval_results = context.pop("_eval_results", None)
    name = context.pop("_name", None)
    data = ModelCardData(**info.model_card_data.to_dict())
    data.tags = sorted(set((data.tags or []) + [model.architecture]))
    datasets = training.get("datasets") if isinstance(training, dict) else None
    if datasets:
        data.datasets = list(datasets)
    results = model_index(model, eval_results)
    if results:
        data.model_name = name or model.architecture
        data.eval_results = results
    return ModelCard.from_template(card_data=data, template_str=info.model_card_template, repo_url=info.repo_url, **context)
