"""Paper metadata, quoted figures and decisions are data, written once per model file and
rendered into both the class docstring and the model card."""

from pathlib import Path

import pytest

import hub_models
from hub_models import MODELS
from hub_models.paper import Decision, Paper, quoted, render_decisions, with_decisions

ARCHS = sorted(MODELS)
ARCH_DIR = Path(hub_models.__file__).resolve().parent / "archs"


@pytest.mark.parametrize("name", ARCHS)
def test_docstring_and_card_render_the_decisions(name):
    cls = MODELS[name]
    assert isinstance(cls.paper, Paper) and cls.paper.title
    assert all(isinstance(d, Decision) and d.paper and d.ours for d in cls.decisions)
    assert cls.__doc__.count("Paper says / we do") == (1 if cls.decisions else 0)
    if cls.decisions:
        assert cls.__doc__.rstrip().endswith(render_decisions(cls.decisions).rstrip())
    card = MODELS[name](**cls.test_config).generate_model_card().text
    assert cls.paper.citation() in card
    for d in cls.decisions:  # the card shows what the docstring shows: ours with its note
        assert f"| {d.paper.replace('|', '/')} | {d.we_do().replace('|', '/')} |" in card
        assert f"we: {d.we_do()}"[:40] in " ".join(cls.__doc__.split())


def test_no_model_file_writes_its_decisions_in_prose():
    for path in ARCH_DIR.glob("*.py"):
        assert "Paper says / we do" not in path.read_text(), path.name


def test_every_decision_is_written_once_per_class():
    for cls in MODELS.values():
        pairs = [tuple(d) for d in cls.decisions]
        assert len(pairs) == len(set(pairs)), cls.__name__


def test_paper_reads_like_the_mapping_it_replaced():
    paper = Paper("T", "A. B", venue="V", year=2020, seed="000.txt")
    assert paper["seed"] == "000.txt" and paper.get("url", "none") == "none" and paper.get("year") == 2020
    with pytest.raises(KeyError):
        paper["url"]
    assert paper.citation() == "T — A. B (V 2020)"
    assert Paper("T", year=2020).citation() == "T (2020)" and Paper("", url="u").citation() == "n/a, u"


def test_decision_unpacks_as_its_pair_and_renders_its_note():
    d = Decision("x4 only", "any scale", note="one checkpoint per scale")
    said, done = d
    assert (said, done) == ("x4 only", "any scale") and len(d) == 2
    text = render_decisions([d])
    assert text.splitlines()[0] == "    Paper says / we do:"
    assert "- paper: x4 only; we: any scale -- one checkpoint per scale" in text
    assert with_decisions("Summary.\n    ", []) == "Summary.\n    "
    assert with_decisions("Summary.", [d]).startswith("Summary.\n\n    Paper says / we do:")


def test_quoted_rows_keep_the_columns_they_have():
    rows = quoted("Helen", [(4, "A", 30.0, 0.9), (8, "B", None, 0.8, "n")])
    assert rows == [{"dataset": "Helen", "scale": 4, "method": "A", "psnr_y": 30.0, "ssim_y": 0.9},
                    {"dataset": "Helen", "scale": 8, "method": "B", "ssim_y": 0.8, "note": "n"}]
    assert quoted("S", [(4, "A", 0.2)], columns=("scale", "method", "lpips"), note="x")[0] == \
        {"dataset": "S", "scale": 4, "method": "A", "lpips": 0.2, "note": "x"}
    with pytest.raises(ValueError, match="more values"):
        quoted("S", [(1, 2, 3, 4, 5, 6)])
