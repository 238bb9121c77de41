"""A paper's metadata, its own figures and our decisions where it is silent or ambiguous, as
data: each model file writes them once, and the class docstring ("Paper says / we do") and
the model card are both rendered from them.

    paper = Paper("Title", "A. Author, B. Author", venue="TPAMI", year=2016, seed="000_x.txt")
    paper_results = quoted("Helen (100 test images)", [(4, "RAFSR", 32.83, 0.880, "Table 1")])
    decisions = [Decision("x4 only", "`scale` in {2, 3, 4, 8}", note="one checkpoint per scale")]
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, fields
from typing import Any, Iterator, Sequence


@dataclass(frozen=True)
class Paper:
    """The bibliographic record of an architecture's paper (`seed`: the source file it was read from).

    Reads like the mapping it replaces too: ``paper["seed"]``, ``paper.get("year", "")``."""

    title: str
    authors: str = ""
    venue: str = ""
    year: int | None = None
    url: str = ""
    seed: str = ""

    def get(self, key: str, default: Any = None) -> Any:
        """The field `key` when it is set (not empty), else `default`."""
        value = getattr(self, key) if key in self.keys() else None
        return default if value in (None, "") else value

    def __getitem__(self, key: str) -> Any:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    @staticmethod
    def keys() -> tuple[str, ...]:
        return tuple(f.name for f in fields(Paper))

    def citation(self) -> str:
        """One line: title — authors (venue year), url."""
        line = self.title or "n/a"
        if self.authors:
            line += f" — {self.authors}"
        if self.venue or self.year:
            line += " (" + " ".join(str(v) for v in (self.venue, self.year) if v) + ")"
        if self.url:
            line += f", {self.url}"
        return line


@dataclass(frozen=True)
class Decision:
    """What the paper says and what we do; `note`: the reasoning or detail behind it (docstring and
    card show `we_do()`, the two together). Unpacks and counts as the pair (paper, ours): ``for said, done in decisions``."""

    paper: str
    ours: str
    note: str = ""

    def we_do(self) -> str:
        """What we do, with the note: the one wording the docstring and the card both show."""
        return f"{self.ours} -- {self.note}" if self.note else self.ours

    def __iter__(self) -> Iterator[str]:
        return iter((self.paper, self.ours))

    def __len__(self) -> int:
        return 2


# -- decisions several papers share (the same "we do", one wording) -----------------------
#: the paper does not say on which channel it measured PSNR/SSIM
CHANNEL_NOT_STATED = Decision("PSNR/SSIM channel not stated", "quoted as given; our evaluation uses the Y channel")


def quoted_as_printed(paper: str, note: str = "") -> Decision:
    """The paper's figures, whose channel or crop it does not state, are quoted as printed."""
    return Decision(paper, "quoted as printed under psnr_y/ssim_y, labelled paper", note)


def recipe_in_train(paper: str, note: str = "") -> Decision:
    """The paper's loss and optimiser are the training recipe's business, not the model's."""
    return Decision(paper, "training recipe lives in train/", note)


def adam_recipe(paper: str) -> Decision:
    """A baseline the paper trained with SGD is trained with Adam 1e-4 here."""
    return Decision(paper, "Adam 1e-4 (see train/recipes.py)")


#: the columns of a `quoted` row, in order; a row may stop early (later columns left out)
RESULT_COLUMNS = ("scale", "method", "psnr_y", "ssim_y", "note")


def quoted(dataset: str, rows: Sequence[tuple], columns: Sequence[str] = RESULT_COLUMNS,
           **common: Any) -> list[dict[str, Any]]:
    """The paper's own figures on one data set (never ours): one dict per row, with `dataset`,
    the row's values under `columns` (None values left out) and the `common` entries."""
    out = []
    for row in rows:
        if len(row) > len(columns):
            raise ValueError(f"row {row!r} has more values than columns {tuple(columns)}")
        entry = {"dataset": dataset, **dict(zip(columns, row)), **common}
        out.append({k: v for k, v in entry.items() if v is not None})
    return out


def render_decisions(decisions: Sequence[Decision], width: int = 92, indent: str = "    ") -> str:
    """The docstring section "Paper says / we do:" as bullets, `indent`-ed, wrapped at `width`."""
    lines = [f"{indent}Paper says / we do:"]
    for d in decisions:
        text = f"paper: {d.paper}; we: {d.we_do()}"
        lines += textwrap.wrap(text, width, initial_indent=f"{indent}- ", subsequent_indent=f"{indent}  ",
                               break_on_hyphens=False)
    return "\n".join(lines)


def with_decisions(doc: str | None, decisions: Sequence[Decision]) -> str | None:
    """`doc` with the rendered decisions appended as its last section (unchanged without decisions)."""
    if not decisions:
        return doc
    body = (doc or "").rstrip()
    return f"{body}\n\n{render_decisions(decisions)}\n" if body else render_decisions(decisions) + "\n"
