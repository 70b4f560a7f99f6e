"""Persona styles exist as soon as prompts can be rendered, without importing any task."""

from __future__ import annotations

import subprocess
import sys

import pytest

from culturelens.errors import RenderError
from culturelens.personas import check_persona, parse_persona, persona_text, styles
from culturelens.schema import Item, ItemKind


def test_expand_persona_in_a_fresh_process_without_tasks():
    code = (
        "import sys\n"
        "from culturelens import sweep\n"
        "vs = sweep.expand(['persona=anthropological:Japan,language:Japan,typical:@item'])\n"
        "assert [v.persona for v in vs] == ['anthropological:Japan', 'language:Japan', 'typical:@item'], vs\n"
        "assert not [m for m in sys.modules if m.startswith('culturelens.tasks')], 'a task was imported'\n"
        "assert 'culturelens.steering' not in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_parse_persona_is_the_one_parser():
    p = parse_persona("anthropological:South_Korea|age=34|sex=woman|bad")
    assert (p.style, p.country, p.details) == (
        "anthropological",
        "South Korea",
        {"age": "34", "sex": "woman"},
    )
    assert p.arg == "South_Korea|age=34|sex=woman|bad" and not p.for_item
    assert parse_persona("typical:@item").for_item and parse_persona("typical").for_item


def test_builtin_styles_and_checks():
    assert {"typical", "citizen", "anthropological", "language"} <= set(styles())
    check_persona("anthropological:Japan|age=30")
    check_persona("language:@item")
    with pytest.raises(RenderError, match="unknown persona style"):
        check_persona("nosuch:Japan")
    with pytest.raises(RenderError, match="persona 'typical:Atlantis'"):
        check_persona("typical:Atlantis")


def test_persona_text_of_item_country():
    from culturelens.countries import normalize_country

    item = Item(
        id="x",
        task="t",
        kind=ItemKind.SURVEY,
        question="q?",
        options=["a", "b"],
        country=normalize_country("Kenya"),
    )
    assert persona_text("typical:@item", item) == "Answer as a typical person from Kenya would."
    assert persona_text("language:Kenya", item) == ""
    assert "fieldwork in Japan" in persona_text("anthropological:Japan", item)
