"""Markdown tables as data: a table is a list of `Column`s applied to rows (dicts). The model
table, the model cards, the benchmark's reports and the README tables are all written by
`table()`, so every table escapes, aligns and formats cells the same way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

Formatter = Callable[[Any], str]


def text(v: Any) -> str:
    """A cell as it is; empty for None."""
    return "" if v is None else str(v)


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
