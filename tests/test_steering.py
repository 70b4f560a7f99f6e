"""Steering: persona styles, the sweep design, gain / specificity, the CLI commands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from typer.testing import CliRunner

from culturelens import alignment as al
from culturelens.api import steer
from culturelens.backends.fake import FakeBackend
from culturelens.cli import app
from culturelens.render import persona_text, render
from culturelens.schema import Item, ItemKind, Mode, Variant
from culturelens.steering import anthropological_persona, parse_profile, steering_variants
from culturelens.sweep import expand
from culturelens.tasks.base import get_task


def run_steering(task, countries, styles, **kwargs):
    """(finished run, alignment, design) of the steering sweep, through the public API."""
    done, design = steer(task, countries, styles, report=False, **kwargs)
    return done, done.alignment, design


FIX = Path(__file__).parent / "fixtures"
GOQA = FIX / "opinions" / "global_opinions.csv"


def _item(country: str | None = None) -> Item:
    from culturelens.countries import normalize_country

    return Item(
        id="x",
        task="t",
        kind=ItemKind.SURVEY,
        question="Q?",
        options=["a", "b"],
        ordered=True,
        country=normalize_country(country) if country else None,
    )


def test_anthropological_persona_has_country_and_demographics():
    text = persona_text("anthropological:Japan", _item())
    assert "fieldwork in Japan" in text and "40-year-old" in text and "secondary school" in text
    custom = anthropological_persona(
        "Brazil|age=23|sex=woman|education=university degree|religion=Catholic", _item()
    )
    assert "23-year-old woman" in custom and "university degree" in custom and "Catholic" in custom
    assert "Brazil" in custom and "40-year-old" not in custom
    assert "fieldwork in Kenya" in persona_text("anthropological:@item", _item("Kenya"))
    assert "United States" in anthropological_persona("USA", _item())  # normalised country name
    assert parse_profile("Japan|age=34|bad") == ("Japan", {"age": "34"})


def test_persona_styles_render_and_language_adds_no_text():
    p = render(_item(), Variant(persona="anthropological:Japan"), Mode.LETTER)
    assert p.messages[0].role == "system" and "Japan" in p.messages[0].content
    q = render(_item(), Variant(persona="language:Japan"), Mode.LETTER)
    assert q.messages[0].role == "user"  # no system turn


def test_design_per_target_and_per_country_items():
    pres = expand(["option_order=identity,reversed"])
    d = steering_variants(["Japan", "Brazil"], ["typical", "anthropological"], pres)
    ids = [v.id for v in d.variants]
    assert len(ids) == 2 * (1 + 2 * 2) and ids[:2] == ["default", "option_order=reversed"]
    assert "option_order=reversed,persona=anthropological:Brazil" in ids
    d2 = steering_variants(["Japan", "Brazil"], ["typical"], pres, per_country_items=True)
    assert [v.persona for v in d2.variants] == [None, None, "typical:@item", "typical:@item"]
    with pytest.raises(ValueError, match="unknown steering style"):
        steering_variants(["Japan"], ["shouting"])


def test_language_style_only_where_items_have_translations():
    plain = [_item()]
    d = steering_variants(["Japan", "Brazil"], ["language"], items=plain)
    assert [v.id for v in d.variants] == ["default"]
    assert set(d.skipped) == {"language:Japan", "language:Brazil"}
    tr = [_item().model_copy(update={"translations": {"ja": {"question": "質問?", "options": ["あ", "い"]}}})]
    d = steering_variants(["Japan", "Brazil"], ["language"], items=tr)
    assert [v.id for v in d.variants] == ["default", "persona=language:Japan,language=ja"]
    p = render(tr[0], d.variants[1], Mode.LETTER)
    assert "質問?" in p.messages[-1].content


def test_gain_and_specificity_recomputed_by_hand(tmp_path):
    result, aln, design = run_steering(
        "opinions",
        ["Japan", "Brazil", "Kenya"],
        ["typical"],
        vary=["option_order=identity,reversed"],
        data_dir=str(GOQA),
        out=str(tmp_path / "run"),
        cache=str(tmp_path / "c.sqlite"),
        backend=FakeBackend("hash"),
        n_boot=200,
    )
    t = aln["tasks"]["opinions"]
    st = t["steering"]["styles"]["typical"]["splits"]["all"]
    assert t["steering"]["metric"] == "jsd" and sorted(st["targets"]) == ["Brazil", "Japan", "Kenya"]
    # recompute from samples.jsonl: debiased distribution per (persona, question)
    recs = [json.loads(x) for x in (Path(result.run_dir) / "samples.jsonl").read_text().splitlines()]
    items = {it.id: it for it in get_task("opinions", data_dir=GOQA).items()}

    def dist(persona: str | None, iid: str) -> np.ndarray:
        ps = [
            np.asarray(r["probs"])
            for r in recs
            if r["item_id"] == iid
            and (f"persona={persona}" in r["variant"] if persona else "persona=" not in r["variant"])
        ]
        assert len(ps) == 2
        return np.mean(ps, axis=0)

    def sim(d: np.ndarray, iid: str, c: str) -> float:
        return 1 - float(jensenshannon(d, items[iid].reference[c], base=2))

    qs = [i for i in items if "Japan" in items[i].reference]
    gain = np.mean([sim(dist("typical:Japan", i), i, "Japan") - sim(dist(None, i), i, "Japan") for i in qs])
    spec = np.mean(
        [
            sim(dist("typical:Japan", i), i, "Japan")
            - np.mean([sim(dist(f"typical:{y}", i), i, "Japan") for y in ("Brazil", "Kenya")])
            for i in qs
        ]
    )
    japan = st["targets"]["Japan"]
    assert japan["gain"]["mean"] == pytest.approx(gain) and japan["gain"]["n"] == len(qs)
    assert japan["specificity"]["mean"] == pytest.approx(spec)
    assert japan["gain"]["ci"][0] <= japan["gain"]["mean"] <= japan["gain"]["ci"][1]
    summ = st["summary"]["all"]
    assert summ["gain"]["mean"] == pytest.approx(
        np.mean([st["targets"][x]["gain"]["mean"] for x in ("Japan", "Brazil", "Kenya")])
    )
    assert 0 <= summ["top1"] <= 1
    assert st["matrix"]["Japan"]["Japan"] == pytest.approx(japan["aligned"]["mean"])


def test_wide_table_steering_has_question_splits_and_heldout_countries(tmp_path):
    _, aln, _ = run_steering(
        "opinions",
        ["Japan", "United Kingdom"],
        ["typical"],
        vary=[],
        data_dir=str(FIX / "opinions" / "rnr"),
        out=str(tmp_path / "run"),
        cache=str(tmp_path / "c.sqlite"),
        backend=FakeBackend("hash"),
        n_boot=100,
    )
    st = aln["tasks"]["opinions"]["steering"]
    assert st["metric"] == "mae" and st["heldout_countries"] == ["United Kingdom"]
    splits = st["styles"]["typical"]["splits"]
    assert set(splits) == {"all", "steer", "heldout"}
    assert splits["steer"]["questions"] + splits["heldout"]["questions"] == splits["all"]["questions"] == 4
    summary = splits["all"]["summary"]
    assert set(summary) == {"all", "main_countries", "heldout_countries"}
    assert summary["heldout_countries"]["targets"] == 1
    assert splits["all"]["targets"]["United Kingdom"]["heldout_country"] is True
    assert splits["all"]["spread_ratio"] is not None and splits["all"]["spread_ratio"] >= 0


def test_cli_run_prints_alignment_and_steer_command(tmp_path):
    runner = CliRunner()
    out = runner.invoke(
        app,
        [
            "run",
            "--model",
            "fake:first",
            "--task",
            "opinions",
            "--data-dir",
            str(GOQA),
            "--vary",
            "option_order=identity,reversed",
            "--out",
            str(tmp_path / "r1"),
            "--cache",
            str(tmp_path / "c.sqlite"),
            "--no-report",
        ],
    )
    assert out.exit_code == 0, out.output
    assert "nearest countries" in out.output and "Kenya" in out.output and "bias removed" in out.output
    assert (tmp_path / "r1" / "alignment.json").exists()
    out = runner.invoke(
        app,
        [
            "steer",
            "--model",
            "fake:hash",
            "--task",
            "opinions",
            "--data-dir",
            str(GOQA),
            "--countries",
            "Japan,Brazil",
            "--styles",
            "typical,anthropological",
            "--out",
            str(tmp_path / "r2"),
            "--cache",
            str(tmp_path / "c.sqlite"),
        ],
    )
    assert out.exit_code == 0, out.output
    assert "steering with 'typical'" in out.output and "steering with 'anthropological'" in out.output
    aln = json.loads((tmp_path / "r2" / "alignment.json").read_text())
    assert set(aln["tasks"]["opinions"]["steering"]["styles"]) == {"typical", "anthropological"}
    bad = runner.invoke(
        app,
        [
            "steer",
            "--model",
            "fake:hash",
            "--data-dir",
            str(GOQA),
            "--countries",
            "Japan",
            "--styles",
            "shouting",
            "--out",
            str(tmp_path / "r3"),
        ],
    )
    assert bad.exit_code == 2 and "unknown steering style" in bad.output


def test_cli_steer_vsm(tmp_path):
    hof = (
        Path(__file__).resolve().parents[2]
        / "shared"
        / "datasets"
        / "hofstede"
        / "6-dimensions-for-website-2015-08-16.csv"
    )
    args = [
        "steer",
        "--model",
        "fake:hash",
        "--task",
        "vsm",
        "--countries",
        "Japan,Brazil,Germany",
        "--styles",
        "typical",
        "--out",
        str(tmp_path / "v"),
        "--cache",
        str(tmp_path / "c.sqlite"),
    ]
    if hof.exists():
        args += ["--opt", f"hofstede_file={hof}"]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    assert "VSM 2013 indices" in out.output
    vsm = json.loads((tmp_path / "v" / "alignment.json").read_text())["tasks"]["vsm"]["vsm"]
    assert set(vsm["conditions"]) == {"unsteered", "typical:Japan", "typical:Brazil", "typical:Germany"}
    if hof.exists():
        assert "vs Hofstede" in out.output
        assert vsm["styles"]["typical"]["hofstede"]["dimensions"]["IDV"]["n"] == 3
    assert isinstance(al.VSM_FORMULAS, dict)
