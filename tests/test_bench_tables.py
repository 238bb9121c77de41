"""bench's tables are column specs (bench.report): the shipped results under bench/results/
re-render from their csv files to the shipped markdown, and the run environment merges."""

import csv
import json
import re
from pathlib import Path

from bench import gpu, modes, peaks
from bench.environment import merge_environment, recorded_runs, speed_run
from hub_models.metrics import describe_protocol as protocol_description
from bench.quality_report import quality_markdown
from bench.report import Column, fixed, metric, table, times
from bench.speed_report import speed_markdown
from hub_models.base import INFERENCE_MODES_FILE

RESULTS = Path(__file__).resolve().parent.parent / "bench" / "results"
INTEGER = {"scale", "input", "output", "images", "ours_images", "runs"}
NUMBER = re.compile(r"-?\d+\.\d+")


def _rows(name: str) -> list[dict]:
    """A results csv as the writers' row dicts (empty cells absent, numbers as numbers)."""
    def typed(key, value):
        try:
            return int(value) if key in INTEGER else float(value)
        except ValueError:
            return value
    with open(RESULTS / name, newline="") as f:
        return [{k: typed(k, v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


def _same(ours: str, shipped: str) -> bool:
    """Equal lines, but for numbers one unit of their last digit apart (csv keeps 6 digits)."""
    a, b = NUMBER.findall(ours), NUMBER.findall(shipped)
    if NUMBER.sub("#", ours) != NUMBER.sub("#", shipped) or len(a) != len(b):
        return False
    return all(x == y or (len(x) == len(y) and abs(float(x) - float(y)) <= 1.01 * 10 ** -len(x.split(".")[1]))
               for x, y in zip(a, b))


def _starts(ours: str, shipped: str) -> bool:
    lines, ship = ours.splitlines(), shipped.splitlines()
    return len(lines) <= len(ship) and all(_same(x, y) for x, y in zip(lines, ship))


def _environment() -> dict:
    return json.loads((RESULTS / "environment.json").read_text())


def test_shipped_quality_page_renders_from_its_csv_files():
    text = quality_markdown(_rows("quality.csv"), _rows("papers.csv"), _environment())
    shipped = (RESULTS / "quality.md").read_text()
    assert len(text.splitlines()) == len(shipped.splitlines()) and _starts(text, shipped)


def test_shipped_speed_page_renders_from_its_csv_files():
    by_model: dict[str, dict[str, list]] = {}
    for name in ("modes.csv", "scaling.csv"):
        for row in _rows(name):
            by_model.setdefault(row["model"], {}).setdefault(name, []).append(row)
    bounds = {r["model"]: r for r in _rows("bounds.csv")}
    tiled = {r["model"]: r for r in _rows("tiled.csv")}
    results = [{**r, "label": r["model"], "lr": r["input"], "out": r["output"], "params": r["params_m"] * 1e6,
                "flops": r["gflops"] * 1e9, "architecture": "bicubic" if r["model"] == "bicubic" else r["model"],
                "modes": by_model.get(r["model"], {}).get("modes.csv", []),
                "scaling": by_model.get(r["model"], {}).get("scaling.csv", []),
                "_bound": bounds.get(r["model"]), "tiled": tiled.get(r["model"])} for r in _rows("speed.csv")]
    env = _environment()
    env = {**env, **(speed_run(env) or {})}  # speed.md was written with the speed run's environment
    shipped = (RESULTS / "speed.md").read_text()
    text = speed_markdown(results, list(bounds.values()), env)
    assert _starts(text, shipped) and text.count("\n| ") > 3 * len(results)
    rest = shipped.splitlines()[len(text.splitlines()):]
    limit = peaks.limit_markdown(_rows("limits.csv"), env["peaks"]).splitlines()
    start = rest.index(limit[0])
    assert all(_same(x, y) for x, y in zip(limit, rest[start:start + len(limit)]))
    assert gpu.gpu_markdown([], env["device_desc"]).strip() in shipped
    assert modes.modes_markdown(INFERENCE_MODES_FILE, env["cpu_class"]) in shipped


def test_columns_format_their_cells():
    columns = [Column("name", "model"), Column("ms", "ms", fixed(1), align="right"),
               Column("psnr_y", "PSNR-Y", metric("psnr_y")), Column("vs", "speed", times(2)),
               Column("both", "a+b", value=lambda r: f"{r['name']}/{r['ms']}")]
    rows = [{"name": "a|b", "ms": 1.25, "psnr_y": 30.123, "vs": 1.5}, {"name": "c", "ms": None, "vs": 0}]
    assert table(columns, rows).splitlines() == [
        "| model | ms | PSNR-Y | speed | a+b |", "|---|---:|---|---|---|",
        "| a\\|b | 1.2 | 30.12 | 1.50x | a\\|b/1.25 |", "| c |  |  |  | c/None |"]


def test_protocol_descriptions_come_from_the_protocols():
    assert protocol_description("dic") == "Y rounded, 8 px border crop, 7x7 uniform SSIM"
    assert protocol_description("sparnet") == "Y floored, no crop, 11x11 Gaussian SSIM"
    assert protocol_description("basicsr") == "Y float, scale-pixel crop, 11x11 Gaussian SSIM"


def test_environment_written_before_runs_counts_as_the_parts_its_command_measured():
    legacy = {"command": "python -m bench --part speed --write-modes", "date": "d", "peaks": {"fp32": {}},
              "cpu_class": "cpu:x", "seconds": 3.0}
    assert set(recorded_runs(legacy)) == {"speed"} and recorded_runs(legacy)["speed"]["seconds"] == 3.0
    assert set(recorded_runs({"command": "python -m bench --quick --out x"})) == {"speed", "quality"}
    assert set(recorded_runs({"command": "python -m bench --part quality speed --quick"})) == {"speed", "quality"}
    quality_run = {"command": "python -m bench --part quality", "date": "e", "protocol": "dic"}
    merged = merge_environment(legacy, quality_run, ["quality"])
    assert merged["peaks"] == legacy["peaks"] and merged["cpu_class"] == "cpu:x"
    assert merged["command"] == quality_run["command"]
    assert merged["runs"]["speed"]["command"] == legacy["command"] and merged["runs"]["quality"]["date"] == "e"
    both = merge_environment(merged, {"command": "python -m bench", "date": "f"}, ["speed", "quality"])
    assert "peaks" not in both and {r["date"] for r in both["runs"].values()} == {"f"}


def test_readme_speed_summary_has_every_timed_model():
    import csv

    from bench import readme_tables

    summary = readme_tables.speed_summary()
    rows = list(csv.DictReader((readme_tables.BENCH / "speed.csv").open()))
    assert rows
    for r in rows:
        assert f"| {r['model']} | x{r['scale']} | {r['default_mode']} | {float(r['default_ms']):.1f} |" in summary


def test_a_slow_tiled_job_is_timed_smaller_and_says_so():
    import hub_models
    from bench import tiled

    class Probe:
        def run(self, fn):
            fn()
            return 1.0

    model = hub_models.create("bicubic", scale=4)
    # 100 s per output megapixel: 4096^2 would take 1678 s, 2048^2 419 s, 1024^2 105 s (< 120 s)
    row = tiled.measure_tiled("bicubic", model, "fp32", Probe(), est_s_per_mpix=100.0, max_s=120.0)
    assert row["output"] == "1024x1024" and row["mpix_s"] > 0
    assert row["note"].startswith("1024x1024 job: the full one est. 1678 s")
    fast = tiled.measure_tiled("bicubic", model, "fp32", Probe(), est_s_per_mpix=1e-3, max_s=120.0, out_side=512)
    assert fast["output"] == "512x512" and fast["note"] == ""
