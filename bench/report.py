"""Report writing: a table is a list of `Column`s applied to rows (dicts), rendered as
markdown; csv files take a list of column names. Cell formatters are shared here so that
every table of bench/results/ writes numbers the same way."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

Formatter = Callable[[Any], str]


def text(v: Any) -> str:
    """A cell as it is; empty for None."""
    return "" if v is None else str(v)


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


@dataclass(frozen=True)
class Column:
    """One table column: `header` over the cells `format(row[name])`; `value`, when given,
    computes the cell's value from the whole row instead (cells that combine fields);
    `align="right"` right-aligns it."""
    name: str
    header: str
    format: Formatter = text
    value: Callable[[dict], Any] | None = None
    align: str = ""

    def cell(self, row: dict) -> str:
        return self.format(self.value(row) if self.value else row.get(self.name))


def _escaped(cell: str) -> str:
    return str(cell).replace("|", "\\|").replace("\n", " ")


def header_lines(columns: list[Column]) -> list[str]:
    """The header and separator lines of a markdown table."""
    return ["| " + " | ".join(c.header for c in columns) + " |",
            "|" + "|".join("---:" if c.align == "right" else "---" for c in columns) + "|"]


def row_line(columns: list[Column], row: dict) -> str:
    """One markdown table line (pipes in cells escaped, newlines folded)."""
    return "| " + " | ".join(_escaped(c.cell(row)) for c in columns) + " |"


def table(columns: list[Column], rows: Iterable[dict]) -> str:
    """The markdown table of `rows` under `columns`."""
    return "\n".join(header_lines(columns) + [row_line(columns, row) for row in rows])


def write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    """`rows` under `columns` (missing values empty, floats to 6 significant digits)."""
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        for row in rows:
            w.writerow({k: ("" if row.get(k) is None else (f"{row[k]:.6g}" if isinstance(row.get(k), float) else row[k]))
                        for k in columns})
