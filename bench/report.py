"""Report writing: markdown tables are `hub_models.tables` (a list of `Column`s applied to
rows); csv files take a list of column names. The cell formatters here are shared so that
every table of bench/results/ writes numbers the same way."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from hub_models.tables import Column, Formatter, header_lines, row_line, table, text  # noqa: F401 (re-exported)


def fixed(digits: int = 1) -> Formatter:
    """Floats with `digits` decimals (inf/nan as such), other values as text, None/"" empty."""
    def cell(v: Any) -> str:
        if v is None or v == "":
            return ""
        if isinstance(v, float):
            if math.isinf(v) or math.isnan(v):
                return str(v)
            return f"{v:.{digits}f}"
        return str(v)
    return cell


def fmt(v: Any, digits: int = 1) -> str:
    """`fixed(digits)` applied to one value."""
    return fixed(digits)(v)


def mib(v: float | None) -> str:
    """Megabytes: one decimal under 10, none above."""
    return "" if v is None else (f"{v:.1f}" if v < 10 else f"{v:.0f}")


def times(digits: int = 2) -> Formatter:
    """A speed ratio, "1.23x"; empty when missing or zero."""
    return lambda v: fixed(digits)(v) + "x" if v else ""


def sci(v: float | None) -> str:
    """A small difference, "1.2e-05"; empty when missing."""
    return "" if v is None else f"{v:.1e}"


def metric(name: str) -> Formatter:
    """A quality metric through the shared metrics spec (`hub_models.metrics.format_metric`);
    an empty cell where there is no value."""
    from hub_models.metrics import format_metric

    return lambda v: "" if v is None else format_metric(name, v)


def write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    """`rows` under `columns` (missing values empty, floats to 6 significant digits)."""
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        for row in rows:
            w.writerow({k: ("" if row.get(k) is None else (f"{row[k]:.6g}" if isinstance(row.get(k), float) else row[k]))
                        for k in columns})
