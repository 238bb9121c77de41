"""Regenerate the measured tables of README.md and docs/*.md from the files that hold the measurements.

    python -m bench.readme_tables          # rewrite README.md and docs/*.md in place
    python -m bench.readme_tables --check  # exit 1 if any of them is out of date (a test runs this)

No number in these tables is typed by hand: each block between `<!-- BEGIN name -->` and
`<!-- END name -->`, in whichever of those files holds it (each block at least once), is rebuilt from

- `models`:  the registry (`python -m hub_models`),
- `shipped`: every shipped checkpoint's `eval_results.json` (written by `train.evaluate
  --update-card`, the evaluation command, which each row names) and `training.json`,
- `speed`, `quality`: `bench/results/speed.md` and `bench/results/quality.md` (written by `python -m bench`, bench/cli.py),
- `train_speed`, `train_speed_xeon`, `train_speed_compile`: `bench/results/train_speed.md` (written by
  `python -m bench.train_speed`), the same table measured earlier on a machine without native bf16, and
  the torch.compile modes,
- `experiments`: `bench/results/experiments/*.json`, training A/B tests: each run's training command
  and the rows `train.evaluate --json` wrote for its best checkpoint.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

import hub_models
from bench.environment import speed_run
from bench.report import Column, metric, table
from hub_models.__main__ import model_table
from hub_models.metrics import METRICS
from hub_models.registry import CHECKPOINT_DIR
from hub_models.training_record import card_lines
from train import plan

README = ROOT / "README.md"
DOCS = ROOT / "docs"
BENCH = ROOT / "bench" / "results"


def _side(side: str, name: str) -> Column:
    """The `name` score of the model or of bicubic (`side`), formatted by the metrics spec."""
    prefix = "bicubic " if side == "bicubic" else ""
    return Column(f"{side}.{name}", prefix + METRICS[name].label, metric(name),
                  value=lambda row: (row.get(side) or {}).get(name))


def _gain(row: dict):
    """PSNR-Y of the model minus bicubic's on the same LR (None without bicubic)."""
    model, bicubic = row.get("model") or {}, row.get("bicubic") or {}
    return model["psnr_y"] - bicubic["psnr_y"] if "psnr_y" in model and "psnr_y" in bicubic else None


def _signed_db(value) -> str:
    return "" if value is None else f"{value:+.{METRICS['psnr_y'].digits}f}"


def _times(scale) -> str:
    return f"x{scale}" if scale else ""


SHIPPED_COLUMNS = [
    Column("checkpoint", "checkpoint", lambda name: f"`{name}`"), Column("dataset", "data"),
    Column("scale", "scale", _times), Column("num_images", "images"),
    *(_side(side, name) for side in ("model", "bicubic") for name in ("psnr_y", "ssim_y", "lpips")),
    Column("gain", "gain (dB)", _signed_db, value=_gain), Column("trained", "training (all stages)"),
]
EXPERIMENT_COLUMNS = [
    Column("setting", "setting"),
    Column("best", "best checkpoint", value=lambda row: f"step {row['best']['steps']} ({row['best']['wall time']})"),
    Column("data", "data", value=lambda row: f"{row['data']} ({row['num_images']})"), Column("scale", "scale", _times),
    *(_side("model", name) for name in ("psnr_y", "ssim_y", "lpips")), _side("bicubic", "psnr_y"),
    Column("gain", "gain (dB)", _signed_db, value=_gain),
]


def shipped_table(checkpoint_dir: Path = CHECKPOINT_DIR) -> str:
    """One row per (checkpoint, dataset, scale) from the checkpoints' eval_results.json."""
    rows, commands = [], []
    for name in hub_models.list_checkpoints():
        folder = checkpoint_dir / name
        results_file = folder / "eval_results.json"
        training_file = folder / "training.json"
        training = card_lines(json.loads(training_file.read_text())) if training_file.is_file() else {}  # as the card says it
        trained = training.get("total training") or f"{training.get('steps', '?')} steps, {training.get('wall time', '?')}"
        if not results_file.is_file():
            rows.append({"checkpoint": name, "dataset": "(not evaluated)", "trained": trained})
            continue
        for row in json.loads(results_file.read_text()):
            rows.append({**row, "checkpoint": name, "trained": trained})
            commands.append(row["command"])
    lines = [table(SHIPPED_COLUMNS, rows)]
    if commands:
        example = commands[0]
        lines += ["", f"Each row was measured by `train.evaluate` (protocol `dic`), e.g. `{example}`; the exact "
                  f"command of every row is the *Reproduce* line of its checkpoint's card ({len(set(commands))} commands)."]
    return "\n".join(lines)


def bench_file(name: str, command: str = "python -m bench") -> str:
    """bench/results/`name` as it is (a note with the command that writes it when it is missing)."""
    path = BENCH / name
    if not path.is_file():
        return f"(`bench/results/{name}` not generated yet: run `{command}`)"
    return path.read_text().strip()


def _environment() -> dict:
    """bench/results/environment.json ({} before the first benchmark run)."""
    path = BENCH / "environment.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def speed_block() -> str:
    """bench/results/speed.md with the command and date of the run that wrote it (bench/results/environment.json,
    when its last run measured speed: it has the conv peaks)."""
    body = bench_file("speed.md")
    env = _environment()
    run = speed_run(env) or {}  # the run that measured speed (a later `--part quality` run keeps it)
    if run.get("command") and env.get("peaks") and (BENCH / "speed.md").is_file():
        body = f"Command: `{run['command']}` ({run.get('date', '?')}, {run.get('seconds', '?')} s).\n\n" + body
    return body


def _csv_rows(name: str) -> list[dict]:
    path = BENCH / name
    return list(csv.DictReader(path.open())) if path.is_file() else []


def _number(digits: int):
    return lambda v: "" if v in (None, "") else f"{float(v):.{digits}f}"


SPEED_SUMMARY_COLUMNS = [
    Column("model", "model"), Column("scale", "scale", lambda v: f"x{v}"), Column("default_mode", "default mode"),
    Column("default_ms", "ms per 128-px face", _number(1)), Column("default_img_s_b16", "faces/s (batch 16)", _number(1)),
    Column("pct_peak", "% of conv peak", _number(0)), Column("mpix_s", "tiled MP/s", _number(2)),
]


def speed_summary() -> str:
    """The speed table in short (bench/results/speed.csv + tiled.csv, the run of `speed_block`)."""
    tiled = {row["model"]: row for row in _csv_rows("tiled.csv")}
    rows = [{**row, "mpix_s": tiled.get(row["model"], {}).get("mpix_s")} for row in _csv_rows("speed.csv")]
    if not rows:
        return "(`bench/results/speed.csv` not generated yet: run `python -m bench --part speed`)"
    run = speed_run(_environment())
    where = f"`{run['command']}`, {run.get('date', '?')}, {run.get('device_desc', '')}" if run else "`python -m bench --part speed`"
    return table(SPEED_SUMMARY_COLUMNS, rows) + f"\n\nMeasured by {where}; the full tables: docs/benchmarks.md."


def experiments_table(folder: Path = BENCH / "experiments") -> str:
    """One section per A/B experiment: its question, then one row per run and evaluation set;
    with several evaluation sets, the order of the runs by PSNR-Y on each (does a cheap
    validation set rank checkpoints the way the benchmark does?)."""
    parts = []
    for path in sorted(folder.glob("*.json")):
        exp = json.loads(path.read_text())
        lines = [f"**{exp['title']}** (`bench/results/experiments/{path.name}`). {exp['question']} Hardware: {exp['hardware']}."]
        commands = [d["command"] for d in exp.get("datasets", []) if d.get("command")]
        if any("sharpness_median" in d for d in exp.get("datasets", [])):
            lines += ["", "Sharpness of the evaluation sets (median variance of the Laplacian, `train.data.sharpness`): "
                      + "; ".join(f"{d['name']} {d['sharpness_median']:.0f}" for d in exp["datasets"]) + "."]
        rows, by_dataset = [], {}
        for run in exp["runs"]:
            if run["train_command"]:
                commands.append(run["train_command"])
            for row in run["results"]:
                data = exp.get("data", row["dataset"])
                by_dataset.setdefault(data, []).append((row["model"]["psnr_y"], run["setting"]))
                rows.append({**row, "setting": run["setting"], "best": run["best_checkpoint"], "data": data})
                commands.append(row["command"])
        lines += ["", table(EXPERIMENT_COLUMNS, rows)]
        if len(by_dataset) > 1:
            lines += ["", "Order by PSNR-Y (best first):"]
            lines += [f"- {data}: " + " > ".join(setting for _, setting in sorted(runs, reverse=True))
                      for data, runs in by_dataset.items()]
        lines += ["", "```bash", *commands, "```"]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) if parts else "(no experiments recorded in `bench/results/experiments/`)"


PLAN_COLUMNS = [
    Column("checkpoint", "checkpoint", lambda name: f"`{name}`"), Column("data", "data (latest stage)"),
    Column("trained", "training so far (all stages)"), Column("measured", f"{plan.BENCHMARK} (gain over bicubic)"),
    Column("targets", "target"), Column("state", "state"),
]
PLAN_DETAIL_COLUMNS = [Column("checkpoint", "checkpoint", lambda name: f"`{name}`"), Column("budget", "budget"),
                       Column("next", "next step")]


def plan_table() -> str:
    """The campaign (train/plan.py) against the committed checkpoints: hours, data, measured gain, state."""
    rows = plan.plan_rows()
    return "\n".join([table(PLAN_COLUMNS, rows), "", "; ".join(plan.best_model_lines()) + ".", "",
                      f"Hours and data from each checkpoint's `training.json`, scores from its `eval_results.json` "
                      f"(`train.evaluate` on {plan.BENCHMARK}); targets and next steps in `train/plan.py`."])


BLOCKS = {
    "plan": plan_table,
    "plan_detail": lambda: table(PLAN_DETAIL_COLUMNS, plan.plan_rows()),
    "models": model_table,
    "shipped": shipped_table,
    "speed": lambda: speed_block(),
    "speed_summary": speed_summary,
    "quality": lambda: bench_file("quality.md"),
    "train_speed": lambda: bench_file("train_speed.md", "python -m bench.train_speed --quick"),
    "train_speed_xeon": lambda: bench_file("train_speed_xeon.md"),
    "train_speed_compile": lambda: bench_file("train_speed_compile.md", "python -m bench.train_speed --modes ..."),
    "experiments": experiments_table,
}


MARKER = re.compile(r"<!-- BEGIN (\w+) -->(.*?)<!-- END \1 -->", re.S)


def documents() -> list[Path]:
    """The files that may hold generated blocks: README.md and every docs/*.md."""
    return [README, *sorted(DOCS.glob("*.md"))]


def render(text: str, built: dict[str, str] | None = None) -> str:
    """`text` with every generated block it holds rebuilt (`built` caches the bodies by name)."""
    built = {} if built is None else built

    def rebuild(match: re.Match) -> str:
        name = match.group(1)
        if name not in BLOCKS:
            raise SystemExit(f"unknown generated block <!-- BEGIN {name} --> (known: {', '.join(BLOCKS)})")
        if name not in built:
            built[name] = BLOCKS[name]()
        return f"<!-- BEGIN {name} -->\n{built[name]}\n<!-- END {name} -->"

    return MARKER.sub(rebuild, text)


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def render_all(paths: list[Path] | None = None) -> dict[Path, tuple[str, str]]:
    """{path: (current text, regenerated text)} for every document; each block must be in one."""
    paths = documents() if paths is None else paths
    built: dict[str, str] = {}
    texts = {path: path.read_text() for path in paths}
    found = {match.group(1) for text in texts.values() for match in MARKER.finditer(text)}
    missing = [name for name in BLOCKS if name not in found]
    if missing:
        raise SystemExit("no <!-- BEGIN name --> ... <!-- END name --> block for "
                         + ", ".join(missing) + " in " + ", ".join(map(_shown, paths)))
    return {path: (text, render(text, built)) for path, text in texts.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="only report whether README.md and docs/*.md are up to date")
    args = p.parse_args(argv)
    stale = []
    for path, (current, fresh) in render_all().items():
        if fresh == current:
            continue
        stale.append(_shown(path))
        if not args.check:
            path.write_text(fresh)
            print(f"rewrote {_shown(path)}")
    if args.check:
        if stale:
            print(", ".join(stale) + " out of date: run `python -m bench.readme_tables`")
            return 1
        print("README.md and docs/*.md are up to date")
    elif not stale:
        print("README.md and docs/*.md were already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
