"""The weights campaign as data: every checkpoint the toolkit means to ship, its target on the
card benchmark (issue 20: CelebA-1000, DIC protocol, measured by `train.evaluate`), its budget
and its next step. `bench.readme_tables` renders it with what the committed checkpoints hold
(hours from `training.json`, scores from `eval_results.json`), so the state column is measured,
never typed: a target reads "met" only when the card's numbers meet it.

Targets (issue 20, section 3):
- `Gain(db)`: CelebA-1000 Y-PSNR at the scale at least `db` over bicubic's on the same LR
  (+2.0 at x8, +2.5 at x4 for the five papers' models; +0.0 for the SRCNN/VDSR baselines and MFFCN).
- `LpipsBelow(other)`: CelebA-1000 LPIPS below the checkpoint `other`'s at the same scale (GAN models).
- `RealWorldLpips(scale)`: on CelebA-1000 with real-world inputs, LPIPS below bicubic's (AGRNet-HR).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from hub_models.metrics import format_metric
from hub_models.registry import CHECKPOINT_DIR
from hub_models.training_record import total_training

BENCHMARK = "CelebA-1000"
REAL_WORLD_BENCHMARK = "CelebA-1000 real-world"  # the same faces, eq. 28 inputs (train.ship names the rows so)
BEST_MODEL_BARS = {8: 26.0, 4: 31.0}  # issue 20: the best x8 / x4 model's CelebA-1000 Y-PSNR (dB)


@dataclass(frozen=True)
class Gain:
    """Y-PSNR at `scale` at least `db` over bicubic's."""
    scale: int
    db: float

    def describe(self) -> str:
        return f"x{self.scale} ≥ {self.db:+.1f} dB" if self.db else f"x{self.scale} > bicubic"

    def check(self, name: str, rows_of) -> tuple[bool, str] | None:
        row = rows_of(name, BENCHMARK).get(self.scale)
        if row is None:
            return None
        gain = row["model"]["psnr_y"] - row["bicubic"]["psnr_y"]
        met = gain >= self.db if self.db else gain > 0
        return met, f"x{self.scale} {gain:+.2f} dB"


@dataclass(frozen=True)
class LpipsBelow:
    """LPIPS at `scale` below the checkpoint `other`'s at the same scale."""
    scale: int
    other: str

    def describe(self) -> str:
        return f"LPIPS x{self.scale} < `{self.other}`'s"

    def check(self, name: str, rows_of) -> tuple[bool, str] | None:
        mine, theirs = rows_of(name, BENCHMARK).get(self.scale), rows_of(self.other, BENCHMARK).get(self.scale)
        if mine is None or theirs is None:
            return None
        a, b = mine["model"]["lpips"], theirs["model"]["lpips"]
        return a < b, f"LPIPS {format_metric('lpips', a)} vs {format_metric('lpips', b)}"


@dataclass(frozen=True)
class RealWorldLpips:
    """On CelebA-1000 with the real-world degradation (eq. 28; `train.evaluate --degradation
    real-world`), LPIPS at `scale` below bicubic's on the same inputs."""
    scale: int

    def describe(self) -> str:
        return f"real-world x{self.scale}: LPIPS < bicubic's"

    def check(self, name: str, rows_of) -> tuple[bool, str] | None:
        row = rows_of(name, REAL_WORLD_BENCHMARK).get(self.scale)
        if row is None:
            return None
        a, b = row["model"]["lpips"], row["bicubic"]["lpips"]
        return a < b, f"real-world LPIPS {format_metric('lpips', a)} vs bicubic {format_metric('lpips', b)}"


@dataclass(frozen=True)
class Planned:
    """One checkpoint of the campaign: its targets, budget (CPU / GPU hours) and next step."""
    checkpoint: str
    targets: tuple
    budget: str
    next_step: str


PLAN = [
    Planned("rafsr-x4", (Gain(4, 2.5),), "10 CPU h or 1 GPU h",
            "128-px crops on the mix (the lever that lifted rafsr-x8); the best x4 model's bar is 31.0 dB"),
    Planned("rafsr-x8", (Gain(8, 2.0),), "10 CPU h or 1 GPU h",
            "continue 128-px crops on the mix (lr 5e-5); the best x8 model's bar is 26.0 dB"),
    Planned("rdan-x4", (Gain(4, 2.5),), "10 CPU h or 1 GPU h", "128-px crops on the mix"),
    Planned("crlnet-psnr-x4", (Gain(4, 2.5),), "2 CPU h", "L1 stage on the mix at 128 px"),
    Planned("crlnet-psnr-x8", (Gain(8, 2.0),), "2 CPU h", "L1 stage on the mix at 128 px"),
    Planned("crlnet-x4", (Gain(4, 2.5), LpipsBelow(4, "crlnet-psnr-x4")), "2 GPU h",
            "a longer GAN stage from a better crlnet-psnr-x4"),
    Planned("crlnet-x8", (Gain(8, 2.0), LpipsBelow(8, "crlnet-psnr-x8")), "2 GPU h",
            "continue the GAN stage (`--init-from checkpoints/crlnet-x8`, batch 8, 128 px, the mix): after 2 CPU h its "
            "PSNR hovers at bicubic's; a better crlnet-psnr-x8 first would lift it"),
    Planned("agrnet-x8", (Gain(8, 2.0),), "4 GPU h",
            "continue the paper's L2 recipe at 128 px on the mix (`--init-from checkpoints/agrnet-x8`, lr 2e-4, batch 8, "
            "1.6 img/s compiled bf16 on a CPU core with native bf16, about 0.3 img/s in fp32 without it), or "
            "`train/device_train.sh`; validation still rising fast"),
    Planned("agrnet-hr-psnr-128", (Gain(4, 0.0), RealWorldLpips(4)), "4 CPU h",
            "widths [32, 32, 64, 64] (2.4 M; the 39.3 M default does not fit the 50 MB checkout even in int8): "
            "continue the L1 stage on real-world degraded faces (`--init-from checkpoints/agrnet-hr-psnr-128`, "
            "`--clean-fraction 0.5`, lr 1e-4; GAN terms dropped; 1 CPU core, about 1 img/s compiled fp32): clean x4 "
            "still rising toward bicubic's"),
    Planned("agrnet-hr-128", (Gain(4, 0.0), RealWorldLpips(4), LpipsBelow(4, "agrnet-hr-psnr-128")), "4 GPU h",
            "the paper's composite GAN loss from agrnet-hr-psnr-128 (the perceptual network: GPU or many CPU hours)"),
    Planned("mffcn", (Gain(2, 0.0), Gain(3, 0.0), Gain(4, 0.0)), "3 GPU h",
            "pixel-loss stage with both cores, then the paper's full loss"),
    Planned("srcnn-x4", (Gain(4, 0.0),), "2 CPU h", "the mix, until validation stops rising"),
    Planned("vdsr-x4", (Gain(4, 0.0),), "4 CPU h or 2 GPU h", "the mix, until validation stops rising"),
]


def _json(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def benchmark_rows(name: str, checkpoint_dir: Path = CHECKPOINT_DIR, dataset: str = BENCHMARK) -> dict[int, dict]:
    """{scale: row} of the checkpoint's `dataset` rows in eval_results.json ({} if none)."""
    rows = _json(checkpoint_dir / name / "eval_results.json") or []
    return {row["scale"]: row for row in rows if row.get("dataset") == dataset}


def data_mix(record: dict) -> str:
    """"celeba_wild + utkface 1:1" from the record's data sources (its dataset names for older records)."""
    sources = [s for s in record.get("data sources") or [] if isinstance(s, dict) and "weight" in s]
    if len(sources) > 1:
        smallest = min(s["weight"] for s in sources)
        return " + ".join(s["folder"] for s in sources) + " " + ":".join(f"{s['weight'] / smallest:g}" for s in sources)
    names = [s["folder"] for s in sources] or record.get("datasets") or []
    return " + ".join(names) if names else "?"


def progress(entry: Planned, checkpoint_dir: Path = CHECKPOINT_DIR) -> dict:
    """The row of `entry`: what its committed checkpoint holds and whether each target is met."""
    folder = checkpoint_dir / entry.checkpoint
    row = {"checkpoint": entry.checkpoint, "targets": "; ".join(t.describe() for t in entry.targets),
           "budget": entry.budget, "next": entry.next_step}
    record = _json(folder / "training.json")
    if not (folder / "model.safetensors").is_file() or record is None:
        return {**row, "data": "", "trained": "", "measured": "", "state": "not shipped"}
    steps, hours = total_training(record)
    checks = [t.check(entry.checkpoint, lambda name, dataset: benchmark_rows(name, checkpoint_dir, dataset))
              for t in entry.targets]
    measured = "; ".join(text for _, text in filter(None, checks))
    if any(c is None for c in checks):
        state = "shipped, not evaluated on " + BENCHMARK
    elif all(met for met, _ in checks):
        state = "shipped, target met"
    else:
        state = "shipped, below target"
    return {**row, "data": data_mix(record), "trained": f"{hours:.1f} h ({steps} steps)", "measured": measured,
            "state": state}


def plan_rows(checkpoint_dir: Path = CHECKPOINT_DIR) -> list[dict]:
    return [progress(entry, checkpoint_dir) for entry in PLAN]


def best_model_lines(checkpoint_dir: Path = CHECKPOINT_DIR) -> list[str]:
    """One sentence per bar of `BEST_MODEL_BARS`: the best planned checkpoint at that scale and its Y-PSNR."""
    lines = []
    for scale, bar in BEST_MODEL_BARS.items():
        scored = [(row["model"]["psnr_y"], entry.checkpoint) for entry in PLAN
                  if (row := benchmark_rows(entry.checkpoint, checkpoint_dir).get(scale))]
        if not scored:
            lines.append(f"best x{scale}: no checkpoint evaluated at x{scale} (bar {bar:.1f} dB)")
            continue
        psnr, name = max(scored)
        verdict = "met" if psnr >= bar else f"{bar - psnr:.2f} dB short"
        lines.append(f"best x{scale}: `{name}` {psnr:.2f} dB (bar {bar:.1f} dB: {verdict})")
    return lines
