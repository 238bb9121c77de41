"""Model cards: YAML metadata + a readable page, filled only from what is handed in.

The metrics table is built from `eval_results`, rows produced by the project's evaluation
command (never typed in). Each row is a dict:

    {"dataset": "CelebA-1000 (FSRNet test split)", "scale": 8, "protocol": "dic",
     "num_images": 1000, "command": "python -m train.evaluate ...",
     "model": {"psnr_y": ..., "ssim_y": ..., "lpips": ..., "psnr_rgb": ...},
     "bicubic": {... same keys ...}}      # "bicubic" optional

`training` is the run's training record (data, steps, hours, hardware, precision, overrides,
stages: `training_record.py`), written by the training script; its sentences are rendered by
`training_record.card_lines`. The paper's own figures come from the class's
`paper_results` and are always labelled "paper".
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from torch import nn  # models are `hub_models.base.SRModel`s; base imports this module, not the reverse

from .metrics import LPIPS_NOTE, METRICS, describe_protocol, format_metric
from .registry import parameter_count
from .tables import Column, table

from .training_record import card_lines, gan_dropped


#: the data sets this project knows, by the names its records use (not Hub dataset ids)
DATASETS = {
    "utkface": {"name": "UTKFace", "url": "https://susanqq.github.io/UTKFace/",
                "terms": "non-commercial research purposes only"},
    "celeba": {"name": "CelebA", "url": "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html",
               "terms": "non-commercial research purposes only"},
}
#: Hub namespace the shipped checkpoints are published under (base_model of warm-started ones)
HUB_NAMESPACE = "facesr-hub"
CODE_TERMS = "MIT (the `LICENSE` file of the code repository)"


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

{{ examples_section }}

## Training

{{ training_section }}

{{ data_section }}

## Licence

- **Code:** {{ code_terms }}.
- **Weights:** {{ weights_terms }}

## Paper says / we do

{{ decisions_table }}

## Config

```json
{{ config_json }}
```
"""


#: the card's results table: where the row comes from, then every metric of the spec
METRICS_TABLE = [Column("data", "data"), Column("split", "split"), Column("scale", "scale"), Column("method", "method")] + [
    Column(m, spec.header, lambda v, m=m: format_metric(m, v)) for m, spec in METRICS.items()]
DECISIONS_TABLE = [Column("paper", "paper says"), Column("ours", "we do", value=lambda d: d["decision"].we_do())]


def metrics_table(model: nn.Module, eval_results: list[dict] | None) -> str:
    """Markdown table of our measured rows, bicubic measured the same way, and the paper."""
    rows, commands = [], []
    for row in eval_results or []:
        for who in ("model", "bicubic"):
            if who in row:
                rows.append({**row[who], "data": row["dataset"], "split": row_split(row), "scale": f"x{row['scale']}",
                             "method": "**this model**" if who == "model" else "bicubic"})
        if row.get("command") and row["command"] not in commands:
            commands.append(row["command"])
    rows += [{**ref, "data": ref["dataset"], "split": "paper's", "scale": f"x{ref['scale']}",
              "method": f"paper: {ref.get('method', model.architecture)}"} for ref in model.paper_results]
    lines = [table(METRICS_TABLE, rows)]
    if not eval_results:
        lines.insert(0, "No evaluation results were handed to this card: the model has not been measured yet.\n")
    notes = []
    protocols = sorted({row.get("protocol", "dic") for row in eval_results or []})
    if protocols:
        notes.append(
            f"Measured with protocol(s) {', '.join(protocols)} (`dic`: {describe_protocol('dic')}, Y = BT.601 luma; "
            f"per-image values averaged). LR = antialiased bicubic downscale of the HR image. {LPIPS_NOTE}."
        )
    if any(row_split(row) == "validation" for row in eval_results or []):
        notes.append("Split *validation*: the training run picked its best checkpoint on (part of) this list, "
                     "so these rows are not a held-out test.")
    if model.paper_results:
        notes.append("Rows labelled *paper* are the paper's own figures, on the paper's data, quoted for reference.")
    for command in commands:
        notes.append(f"Reproduce: `{command}`")
    return "\n".join(lines) + ("\n\n" + "\n\n".join(notes) if notes else "")


def model_index(model: nn.Module, eval_results: list[dict] | None) -> list[EvalResult]:
    results = []
    for row in eval_results or []:
        for metric, value in row["model"].items():
            if value is None or metric not in METRICS:
                continue
            results.append(
                EvalResult(
                    task_type="image-to-image",
                    task_name=f"Face super-resolution x{row['scale']}",
                    dataset_type=dataset_id(row),
                    dataset_name=row["dataset"],
                    dataset_split=row_split(row),
                    metric_type=metric,
                    metric_name=f"{METRICS[metric].header} x{row['scale']}",
                    metric_value=round(float(value), 4),
                )
            )
    return results


def row_split(row: dict) -> str:
    """A result row's split: its own, else "validation" for validation lists (UTKFace-val), else "test"."""
    return row.get("split") or ("validation" if re.search(r"(^|[^a-z])val", row["dataset"].lower()) else "test")


def dataset_id(row: dict) -> str:
    """The model-index dataset type of a row: this project's name (e.g. celeba-1000), not a Hub id."""
    return row.get("dataset_id", row["dataset"].split()[0].lower())


def known_dataset(name: str) -> str | None:
    """The `DATASETS` key a data folder or set name belongs to (celeba_test1000 -> celeba)."""
    lowered = name.lower()
    return next((key for key in DATASETS if lowered.startswith(key) or f"/{key}" in lowered), None)


def training_datasets(training: dict | None) -> list[str]:
    """The data sets that trained the weights: the record's "datasets" (runs since data mixing),
    else the known data sets named in its "data" line (older records)."""
    training = training or {}
    if training.get("datasets"):
        return [str(d) for d in training["datasets"]]
    data = str(training.get("data", "")).lower()
    return [key for key in DATASETS if re.search(rf"(^|[^a-z]){key}", data)]


def base_model(training: dict | None, name: str | None) -> str | None:
    """The Hub id of the checkpoint these weights were warm-started from (a shipped checkpoint under
    `HUB_NAMESPACE`, or a Hub id as given); None for runs' folders, the same checkpoint or no warm start."""
    start = str((training or {}).get("warm start") or "none")
    if start == "none" or start.startswith(("runs/", "/", ".")):
        return None
    parent = f"{HUB_NAMESPACE}/{Path(start).name}" if start.startswith("checkpoints/") or "/" not in start else start
    return None if name and parent.split("/")[-1] == name else parent


def weights_terms(training: dict | None, eval_results: list[dict] | None = None) -> dict[str, Any]:
    """Licence metadata and LICENSE.md text of the weights: the terms of the data they were trained
    on (and evaluated on, as this project reads CelebA's terms). Untrained weights: MIT, no text."""
    trained = training_datasets(training)
    if not trained:
        return {"license": "mit", "text": None, "summary": "no training record: MIT, as the code."}
    evaluated = [known_dataset(row["dataset"]) for row in eval_results or []]
    involved = list(dict.fromkeys([known_dataset(d) or d for d in trained] + [d for d in evaluated if d]))
    known = [DATASETS[d] for d in involved if d in DATASETS]
    unknown = [d for d in involved if d not in DATASETS]
    lines = [f"- {info['name']} ({info['url']}): released for {info['terms']}." for info in known]
    lines += [f"- {d}: terms not known to this toolkit; check them before using these weights." for d in unknown]
    summary = (f"trained on {', '.join(known_dataset(d) and DATASETS[known_dataset(d)]['name'] or d for d in trained)}"
               + (f", evaluated on {', '.join(DATASETS[d]['name'] for d in dict.fromkeys(evaluated) if d)}" if evaluated else "")
               + "; they carry the terms of that data"
               + (" (**non-commercial research only**)" if known else "") + ", not the code's MIT licence. See LICENSE.md.")
    text = ("# Terms of these weights\n\nThese weights are not under the code's MIT licence. They were "
            f"{summary.split('; ')[0]}, and carry the terms of that data:\n\n" + "\n".join(lines) + "\n\n"
            "Use them for non-commercial research only; the people shown in the data keep their rights "
            "to their likeness. The code that defines and trains the model is MIT-licensed.\n")
    if not known:
        text = text.replace("Use them for non-commercial research only; ", "")
    slug = "-".join(d for d in involved if d in DATASETS) or "training-data"
    return {"license": "other", "license_name": f"{slug}-{'non-commercial' if known else 'terms'}",
            "license_link": "LICENSE.md", "text": text, "summary": summary}


def data_section(training: dict | None, eval_results: list[dict] | None) -> str:
    """What the metadata's dataset names are (this project's, not Hub dataset ids)."""
    lines = []
    for d in training_datasets(training):
        info = DATASETS.get(known_dataset(d) or "")
        lines.append(f"`{d}`: " + (f"{info['name']}, {info['url']}" if info else "a local data folder"))
    for row in eval_results or []:
        ident = f"`{dataset_id(row)}`: {row['dataset']}"
        info = DATASETS.get(known_dataset(row["dataset"]) or "")
        line = ident + (f" ({info['name']}, {info['url']})" if info else "") + f", split {row_split(row)}"
        if line not in lines:
            lines.append(line)
    if not lines:
        return ""
    return ("**Data names.** The `datasets` and model-index names in the metadata are this project's "
            "names, not Hub dataset ids: " + "; ".join(lines) + ".")


def examples_section(examples: dict | list | None, scale: int) -> str:
    """A row of the example images saved beside the card (input, bicubic, this model, original)."""
    if not examples:
        return ""
    paths = sorted(examples)
    order = ["input", "bicubic", "output", "original"]
    paths.sort(key=lambda p: order.index(Path(p).stem) if Path(p).stem in order else len(order))
    captions = {"input": f"input (the LR image, shown at its size; x{scale})", "bicubic": "bicubic",
                "output": "this model", "original": "original (CelebA test face)"}
    head = " | ".join(captions.get(Path(p).stem, Path(p).stem) for p in paths)
    cells = " | ".join(f"![{Path(p).stem}]({p})" for p in paths)
    return (f"### Example\n\n| {head} |\n|{'---|' * len(paths)}\n| {cells} |\n\n"
            "Made by `python -m train.cards` from a CelebA test face (bicubic downscale, as in the evaluation).")


def _plain(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def training_section(training: dict | None) -> str:
    if not training:
        return "These weights are untrained or the training record was not handed to this card."
    lines = []
    for key, value in card_lines(training).items():  # the record's data as sentences (training_record.py)
        if key.startswith("_"):  # machine-readable entries, not for the card
            continue
        if isinstance(value, (list, tuple)):
            value = "; ".join(_plain(v) for v in value)
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={_plain(v)}" for k, v in value.items())
        lines.append(f"- **{key.replace('_', ' ')}:** {value}")
    return "\n".join(lines)


def card_context(model: nn.Module, eval_results: list[dict] | None = None, training: dict | None = None,
                 name: str | None = None, examples: dict | list | None = None, weights_note: str | None = None) -> dict:
    """Everything the card template needs besides `card_data`; `examples`: the example images'
    paths in the folder ({path: PNG bytes or None}); `weights_note`: said first (changed weights)."""
    doc = (type(model).__doc__ or "").strip().split("\n\n")[0]
    decisions = table(DECISIONS_TABLE, [{"paper": d.paper, "decision": d} for d in model.decisions])
    num_params = parameter_count(model)
    summary = " ".join(doc.split())
    if gan_dropped(training):
        summary += (" **This checkpoint is the generator after a pre-training stage without the adversarial"
                    " term** (no discriminator; recipe sources: gan), not the GAN-trained model.")
    if weights_note:
        summary = weights_note + "\n\n" + summary
    return {
        "title": name or f"{type(model).__name__} (x{'/x'.join(map(str, model.supported_scales))})",
        "summary": summary,
        "paper_line": model.paper.citation(),
        "architecture": model.architecture,
        "class_name": type(model).__name__,
        "num_params": f"{num_params / 1e6:.3f} M",
        "scales": ", ".join(f"x{s}" for s in model.supported_scales),
        "input_kind": "bicubic pre-upsampled LR (done inside `upscale`)" if model.capabilities.pre_upsampled
                      else "the LR image",
        "load_name": name or model.architecture,
        "metrics_table": metrics_table(model, eval_results),
        "training_section": training_section(training),
        "data_section": data_section(training, eval_results),
        "code_terms": CODE_TERMS,
        "weights_terms": weights_terms(training, eval_results)["summary"],
        "examples_section": examples_section(examples, model.default_scale),
        "decisions_table": decisions if model.decisions else "No open decisions.",
        "config_json": json.dumps(model.config_dict(), indent=2, sort_keys=True),
        "_eval_results": eval_results,
        "_training": training,
        "_name": name,
    }


def build_card(model: nn.Module, **context: Any) -> ModelCard:
    """Render the card for `model`; `context` is what `card_context` returned."""
    info = model._hub_mixin_info
    training = context.pop("_training", None) or {}
    eval_results = context.pop("_eval_results", None)
    name = context.pop("_name", None)
    data = ModelCardData(**info.model_card_data.to_dict())
    data.tags = sorted(set((data.tags or []) + [model.architecture]))
    terms = weights_terms(training, eval_results)
    data.license = terms["license"]
    if terms["license"] == "other":
        data.license_name, data.license_link = terms["license_name"], terms["license_link"]
    if training_datasets(training):
        data.datasets = training_datasets(training)
    parent = base_model(training, name)
    if parent:
        data.base_model, data.base_model_relation = parent, "finetune"
    results = model_index(model, eval_results)
    if results:
        data.model_name = name or model.architecture
        data.eval_results = results
    return ModelCard.from_template(card_data=data, template_str=info.model_card_template, repo_url=info.repo_url, **context)
