"""The HTML report: the data it is built from, escaping, file size. (Browser checks: test_report_browser.py.)"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections import defaultdict
from pathlib import Path

import pytest
from typer.testing import CliRunner

import culturelens.report as report_mod
from culturelens.backends.fake import FakeBackend
from culturelens.cli import app
from culturelens.report import build_report, read_samples_block, render_html, script_json
from culturelens.report.data import (
    across_variants,
    answer_distribution,
    build_model,
    human_reference,
    item_sets,
    map_assignment,
    pack_samples,
    region_gap,
    region_gap_claim,
    shorten,
)
from culturelens.runner import RunConfig, Runner
from culturelens.schema import Mode
from culturelens.sweep import expand

XSS = "<script>window.__pwned=1</script><img src=x onerror=window.__pwned=2>"


def fake_run(out: Path, policy: str = "first", **kwargs) -> Path:
    """A run of the shipped starter suite (or ``data_dir``) scored by the deterministic fake backend."""
    generate_text = kwargs.pop("generate_text", None)
    cfg = RunConfig(out=str(out), cache=str(out.parent / f"{out.name}.sqlite"), n_boot=200, **kwargs)
    return Runner(cfg, backend=FakeBackend(policy, generate_text=generate_text)).run().run_dir


def xss_dataset(folder: Path) -> Path:
    """Starter-format rows whose text fields carry HTML/script payloads."""
    rows = []
    for i, country in enumerate(["Japan", "Kenya", "Brazil", "Assam", "India", "Peru"]):
        rows.append(
            {
                "id": f"x-{i}-<b>id</b>",
                "kind": "multiple_choice",
                "country": country,
                "topic": "food<img src=x onerror=window.__pwned=3>",
                "question": f"Question {i} </script><script>window.__pwned=4</script>?",
                "options": ["<i>one</i>", "two", "three & four", "<svg onload=window.__pwned=5>"],
                "answer": i % 4,
            }
        )
    path = folder / "starter.jsonl"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return folder


def samples_of(run_dir: Path) -> list[dict]:
    return [
        json.loads(line)
        for line in (run_dir / "samples.jsonl").read_text(encoding="utf-8").splitlines()
        if line
    ]


def embedded(html_text: str, element_id: str) -> dict:
    m = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', html_text, re.S)
    assert m, element_id
    return json.loads(m.group(1))


@pytest.fixture(scope="module")
def starter_run(tmp_path_factory) -> Path:
    return fake_run(tmp_path_factory.mktemp("rep") / "first", "first", limit=80)


def test_country_scores_match_samples(starter_run: Path):
    model = build_model([starter_run])
    task = model["runs"][0]["tasks"]["starter"]
    assert task["metric"] == "acc"
    by_country: dict[str, list[float]] = defaultdict(list)
    for s in samples_of(starter_run):
        by_country[s["country"]].append(s["metrics"]["acc"])
    rows = {c["key"]: c for c in task["countries"]}
    assert set(rows) == set(by_country)
    for name, vals in by_country.items():
        m = rows[name]["metrics"]["acc"]
        assert m["mean"] == pytest.approx(sum(vals) / len(vals), abs=1e-4)
        assert m["lo"] <= m["mean"] <= m["hi"]
        assert rows[name]["n"] == len(vals)
        assert rows[name]["iso2"] and len(rows[name]["iso2"]) == 2
    # every country is coloured on the map from its own (national) row
    assert {v["key"] for v in task["map"].values()} == set(by_country)
    assert all(v["via"] is None for v in task["map"].values())
    gap = task["region_gap"]["acc"]
    means = {r["name"]: r["metrics"]["acc"]["mean"] for r in task["regions"]}
    assert gap["best_mean"] == max(means.values()) and gap["worst_mean"] == min(means.values())
    assert gap["gap"] == pytest.approx(max(means.values()) - min(means.values()), abs=1e-4)
    dims = [b["dim"] for b in task["breakdowns"]]
    assert "topic" in dims and "subset:format" in dims


def test_samples_are_packed_and_complete(starter_run: Path):
    model = build_model([starter_run])
    packed = model["samples"]
    recs = samples_of(starter_run)
    assert packed["total"] == len(recs) == len(packed["rows"])
    col = {c: i for i, c in enumerate(packed["columns"])}
    tables = packed["tables"]
    for row, rec in zip(packed["rows"], recs, strict=True):
        assert tables["task"][row[col["task"]]] == rec["task"]
        assert tables["prompt"][row[col["prompt"]]] == rec["prompt"]
        assert row[col["gold"]] == rec["gold"]
        assert row[col["pred"]] == rec["prediction"]
        assert row[col["outcome"]] == int(rec["metrics"]["acc"])
    assert "cache_key" not in json.dumps(packed)
    assert model["runs"][0]["command"] is None or isinstance(model["runs"][0]["command"], str)
    assert model["runs"][0]["reproduce"].startswith("culturelens run --model")


def test_map_assignment_rolls_up_subnational_only_without_national():
    def row(key, iso2, sub, n):
        return {"key": key, "iso2": iso2, "subnational": sub, "n": n}

    both = map_assignment([row("India", "IN", None, 5), row("Assam", "IN", "Assam", 9)])
    assert both == {"IN": {"key": "India", "via": None}}
    only = map_assignment([row("Assam", "IN", "Assam", 9), row("Japan", "JP", None, 3)])
    assert only["IN"] == {"key": "Assam", "via": "Assam"} and only["JP"]["via"] is None
    two = map_assignment(
        [row("Germany East", "DE", "Germany East", 4), row("Germany West", "DE", "Germany West", 7)]
    )
    assert two["DE"]["key"] == "Germany West"


def test_subnational_rows_from_a_real_run(tmp_path: Path):
    run = fake_run(tmp_path / "x", "first", data_dir=str(xss_dataset(tmp_path / "data")))
    task = build_model([run])["runs"][0]["tasks"]["starter"]
    keys = {c["key"]: c for c in task["countries"]}
    # Assam and India: the aggregate keys them by country name; whichever rows exist, India is on the map
    assert "IN" in task["map"]
    for c in keys.values():
        assert c["region"] in {"Africa", "Americas", "Asia", "Europe", "Oceania"}


def test_region_gap_flags_overlapping_cis():
    def reg(name, mean, lo, hi):
        return {"name": name, "n": 10, "metrics": {"acc": {"mean": mean, "lo": lo, "hi": hi, "n": 10}}}

    clear = region_gap(
        [reg("Europe", 0.9, 0.8, 1.0), reg("Africa", 0.3, 0.2, 0.4), reg("Asia", 0.6, 0.5, 0.7)], "acc"
    )
    assert (clear["best"], clear["worst"], clear["gap"], clear["ci_disjoint"]) == (
        "Europe",
        "Africa",
        0.6,
        True,
    )
    noisy = region_gap([reg("Europe", 0.6, 0.3, 0.9), reg("Africa", 0.5, 0.2, 0.8)], "acc")
    assert noisy["ci_disjoint"] is False
    assert region_gap([reg("Europe", 0.6, 0.3, 0.9)], "acc") is None


def test_script_json_cannot_break_out():
    payload = {
        "a": "</script><script>alert(1)</script>",
        "b": "<!-- x",
        "c": "a\u2028b & c > d",
        "n": float("nan"),
    }
    text = script_json(payload)
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    back = json.loads(text)
    assert back["a"] == payload["a"] and back["c"] == payload["c"] and back["n"] is None


def test_xss_payloads_stay_data(tmp_path: Path):
    run = fake_run(
        tmp_path / "xss",
        "first",
        mode=Mode.GENERATE,
        data_dir=str(xss_dataset(tmp_path / "data")),
        generate_text=XSS,
    )
    out = build_report([run], tmp_path / "report.html")
    page = out.read_text(encoding="utf-8")
    # the payloads are present as data ...
    samples = read_samples_block(page)
    texts = [r[samples["columns"].index("text")] for r in samples["rows"]]
    assert texts and all(t == XSS for t in texts)
    assert any("onerror=window.__pwned=3" in t for t in samples["tables"]["topic"])
    # ... but never as markup: the page has exactly our four script elements and no injected tags
    assert len(re.findall(r"<script\b", page)) == 4
    assert "__pwned" in page and "<img" not in page and "<svg onload" not in page and "<i>one" not in page
    # a CSP that only runs the page's own script (by hash) and allows no connection
    script = re.search(r"<script>(.*)</script>\s*</body>", page, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1)
    assert f"'sha256-{digest}'" in csp and "connect-src 'none'" in csp and "default-src 'none'" in csp


def test_page_assets_reference_nothing_external():
    from importlib import resources

    pkg = resources.files("culturelens.report") / "assets"
    for name in ("report.js", "report.css", "template.html"):
        text = (pkg / name).read_text(encoding="utf-8")
        urls = set(re.findall(r"https?://[^\s'\"]+", text))
        assert urls <= {"http://www.w3.org/2000/svg"}, (name, urls)  # an XML namespace, never fetched
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text and "document.write" not in text
    world = json.loads((pkg / "world.json").read_text(encoding="utf-8"))
    assert {"JP", "KE", "BR", "IN", "US", "FR", "SG"} <= set(world["countries"])
    assert world["countries"]["SG"].get("p"), "small countries get a marker point"
    assert "Natural Earth" in world["source"]


def test_sweep_section_data(tmp_path: Path):
    variants = expand(["option_order=rotate"])
    run = fake_run(tmp_path / "sweep", "first", limit=30, variants=variants)
    view = build_model([run])["runs"][0]
    assert view["reproduce"].endswith("--limit 30 --vary option_order=identity,rotate:1,rotate:2,rotate:3")
    sw = view["tasks"]["starter"]["sweep"]
    assert sw is not None and [v["name"] for v in sw["variants"]] == [v.id for v in variants]
    # FakeBackend('first') always picks the first displayed option, so rotating the options moves
    # its answer: every item answered under all four rotations flips
    recs = samples_of(run)
    by_item: dict[str, set] = defaultdict(set)
    for r in recs:
        by_item[r["item_id"]].add(json.dumps(r["prediction"]))
    expected = sum(1 for preds in by_item.values() if len(preds) > 1)
    assert sw["flip"]["items"] == len(by_item) and sw["flip"]["flipped"] == expected and expected > 0
    assert sw["factors"] == ["option_order"]
    levels = sw["effects"][0]["levels"]
    assert {lv["level"] for lv in levels} == {v.option_order for v in variants}
    hm = sw["heatmap"]
    assert len(hm["values"]) == len(variants) and all(len(r) == len(hm["countries"]) for r in hm["values"])


def test_large_runs_cap_prompts_and_say_so():
    runs = [
        {
            "results": {"tasks": {"t": {"metrics": {"acc": {}}}}},
            "samples": [
                {"task": "t", "item_id": str(i), "prompt": f"{i:05d}" + "x" * 2000, "metrics": {"acc": 1.0}}
                for i in range(50)
            ],
        }
    ]
    packed = pack_samples(runs, prompt_budget=20_000)
    assert packed["prompt_cap"] == 600 and packed["prompts_shortened"] == 50
    p = packed["tables"]["prompt"][0]
    assert len(p) < 700 and "characters not embedded" in p and p.startswith("00000")
    assert shorten("short", 100) == "short"
    uncapped = pack_samples(runs)
    assert uncapped["prompt_cap"] is None and len(uncapped["tables"]["prompt"][0]) == 2005


def test_two_run_comparison_and_cli(tmp_path: Path):
    a = fake_run(tmp_path / "a", "first", limit=60)
    b = fake_run(tmp_path / "b", "hash", limit=60)
    res = CliRunner().invoke(app, ["report", str(a), str(b), "-o", str(tmp_path / "cmp.html")])
    assert res.exit_code == 0, res.output
    page = (tmp_path / "cmp.html").read_text(encoding="utf-8")
    data = embedded(page, "report-data")
    assert [r["label"] for r in data["runs"]] == ["fake-first", "fake-hash"]
    comp = data["comparisons"][0]
    assert comp["error"] is None and comp["result"]["tasks"]["starter"]["rows"][0]["group"] == "all"
    assert read_samples_block(page)["total"] == 120 and "samples" not in data
    bad = CliRunner().invoke(app, ["report", str(tmp_path / "nope"), "-o", str(tmp_path / "x.html")])
    assert bad.exit_code == 2 and "nope: not found" in bad.output


def test_report_states_its_size(starter_run: Path, tmp_path: Path):
    out = build_report([starter_run], tmp_path / "r.html")
    page = out.read_text(encoding="utf-8")
    size_kb = out.stat().st_size / 1024
    m = re.search(r"This file: (\d+) KB, 80 samples", page)
    assert m and abs(int(m.group(1)) - size_kb) <= 2
    assert size_kb < 400
    assert render_html(build_model([starter_run])).count("{{") == 0


def test_large_sample_blocks_are_compressed(starter_run: Path, monkeypatch):
    model = build_model([starter_run])
    plain = render_html(model)
    assert 'id="report-samples">' in plain and 'data-encoding="gzip+base64"' not in plain
    monkeypatch.setattr(report_mod, "COMPRESS_OVER", 1000)
    packed = render_html(model)
    assert 'data-encoding="gzip+base64"' in packed and len(packed) < len(plain)
    assert (
        read_samples_block(packed) == read_samples_block(plain) == json.loads(script_json(model["samples"]))
    )


def test_side_files_are_optional_and_read_defensively(starter_run: Path, tmp_path: Path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(starter_run, run)
    assert build_model([run])["runs"][0]["alignment"] is None
    (run / "alignment.json").write_text("{not json", encoding="utf-8")
    (run / "robustness.json").write_text(
        json.dumps({"tasks": {"starter": {"verdicts": ["ok"]}}}), encoding="utf-8"
    )
    view = build_model([run])["runs"][0]
    assert view["alignment"] is None and any("alignment.json could not be read" in n for n in view["notes"])
    assert view["robustness"]["tasks"]["starter"]["verdicts"] == ["ok"]
    (run / "results.json").write_text("[]", encoding="utf-8")
    with pytest.raises(ValueError, match="no 'tasks' object"):
        build_model([run])


# --- what a reader takes away: one rule per claim ----------------------------------------------------------
def test_region_gap_claims_a_difference_only_when_the_cis_are_disjoint():
    assert region_gap_claim("Europe", "Africa", True, 40, "above")["claim"] == "difference"
    noisy = region_gap_claim("Europe", "Africa", False, 40, "above")
    assert noisy["claim"] == "no_difference" and "may be noise" in noisy["statement"]
    assert noisy["cautions"] == []
    weak = region_gap_claim("Europe", "Africa", True, 3, "indistinguishable")
    assert weak["claim"] == "difference" and len(weak["cautions"]) == 2
    assert any("not above chance" in c for c in weak["cautions"])
    assert region_gap_claim("Europe", "Africa", None, 40, None)["claim"] == "unknown"


def test_zero_width_interval_is_flagged_not_shown_as_certain(tmp_path: Path):
    """Every item answered the same way: the table shows 'all values equal', never [x, x] as certainty."""
    from culturelens.report.data import _metrics

    flat = _metrics({"metrics": {"acc": {"mean": 1.0, "ci": [1.0, 1.0], "n": 3}}})["acc"]
    assert flat.get("flat") is True
    assert "flat" not in _metrics({"metrics": {"acc": {"mean": 0.5, "ci": [0.2, 0.8], "n": 6}}})["acc"]


def test_sweep_headline_is_the_mean_over_variants(tmp_path: Path):
    run = fake_run(tmp_path / "sw", "first", limit=40, variants=expand(["option_order=rotate"]))
    t = build_model([run])["runs"][0]["tasks"]["starter"]
    means = [v["metrics"]["acc"]["mean"] for v in t["sweep"]["variants"]]
    a = t["across"]
    assert a["n_variants"] == 4 == len(means)
    assert a["mean"] == pytest.approx(sum(means) / 4, abs=1e-6)
    assert (a["min"], a["max"]) == (pytest.approx(min(means)), pytest.approx(max(means)))
    assert a["primary"] == t["sweep"]["variants"][0]["name"]
    assert max(means) > min(means)  # 'first' under rotation: the variants really differ
    assert across_variants(None) is None


def test_answer_distribution_counts_labels_as_shown():
    """A model that always picks the first shown option: every pick is 'A' whatever the shuffle."""
    samples = [
        {"mode": "letter", "targets": [" A", " B", " C"], "order": order, "prediction": order[0], "gold": 2}
        for order in ([0, 1, 2], [2, 0, 1], [1, 2, 0], [0, 2, 1])
    ]
    d = answer_distribution(samples, survey=False)
    assert d["n"] == 4 and len(d["sets"]) == 1
    st = d["sets"][0]
    assert st["top"] == "A" and st["top_share"] == 1.0
    assert st["strong"] is False  # 4 answers: too few to call it a preference
    assert answer_distribution(samples * 3, survey=False)["sets"][0]["strong"] is True
    picked = {r["label"]: r["picked"] for r in st["rows"]}
    gold = {r["label"]: r["gold"] for r in st["rows"]}
    assert picked == {"A": 4, "B": 0, "C": 0}
    # gold option 2 shown at positions 2, 0, 1, 1
    assert gold == {"A": 1, "B": 2, "C": 1} and st["top_gold"] == 0.25
    assert answer_distribution(samples, survey=True)["sets"][0]["rows"][0]["gold"] is None
    # another label set is its own table, not pooled with A-C
    yes_no = {"mode": "letter", "targets": ["Yes", "No"], "prediction": 1, "gold": 1}
    two = answer_distribution([*samples, yes_no, yes_no], survey=False)
    assert [s["labels"] for s in two["sets"]] == [["A", "B", "C"], ["Yes", "No"]]
    assert two["sets"][0]["top_share"] == 1.0 and two["sets"][1]["top"] == "No"
    assert answer_distribution([{"mode": "generate", "prediction": "x"}], survey=False) is None


def test_survey_samples_show_the_human_reference_never_right_or_wrong(tmp_path: Path):
    from culturelens.distributions import js_distance

    run = fake_run(
        tmp_path / "op",
        "first",
        tasks=["opinions"],
        data_dir=str(Path(__file__).parent / "fixtures" / "opinions" / "global_opinions.csv"),
    )
    model = build_model([run])
    assert model["runs"][0]["tasks"]["opinions"]["survey"]
    cols = model["samples"]["columns"]
    rows = model["samples"]["rows"]
    assert rows and all(r[cols.index("outcome")] in (None, -1) for r in rows)
    shown = 0
    for r in rows:
        human = r[cols.index("human")]
        if human is None:
            continue
        shown += 1
        probs = r[cols.index("probs")]
        for ref in human["rows"]:
            assert ref["distance"] == pytest.approx(js_distance(probs, ref["dist"]), abs=1e-3)
        ds = [ref["distance"] for ref in human["rows"]]
        assert ds == sorted(ds)  # nearest first
    assert shown == len(rows)
    # a persona sample is set beside its own country's answers only
    ref = {"dist": {"Japan": [0.2, 0.8], "Kenya": [0.9, 0.1]}, "means": {}}
    own = human_reference({"probs": [0.5, 0.5], "country": "Kenya"}, ref)
    assert [r["country"] for r in own["rows"]] == ["Kenya"]
    means = human_reference({"probs": [0.0, 0.0, 1.0]}, {"dist": {}, "means": {"Japan": 0.25}})
    assert means["kind"] == "means" and means["model_mean"] == 1.0 and means["rows"][0]["distance"] == 0.75


def test_comparison_states_when_item_sets_differ(tmp_path: Path):
    a = fake_run(tmp_path / "a", "first", limit=60)
    b = fake_run(tmp_path / "b", "hash", limit=20)
    model = build_model([a, b])
    st = model["comparisons"][0]["item_sets"]["starter"]
    res = model["comparisons"][0]["result"]["tasks"]["starter"]["rows"][0]
    assert (st["a"], st["b"]) == (60, 20) and st["shared"] == res["n"] and st["same"] is False
    same = build_model([a, fake_run(tmp_path / "c", "hash", limit=60)])["comparisons"][0]["item_sets"]
    assert same["starter"]["same"] is True
    assert item_sets({"tasks": {}}, {"tasks": {}}, None) == {}


def test_country_blind_runs_and_tied_regions():
    from culturelens.report.data import country_blind

    same = [{"country": c, "prompt": f"Q{i}"} for c in ("Japan", "Kenya") for i in range(3)]
    assert country_blind(same) is True
    assert country_blind([*same, {"country": "Kenya", "prompt": "as a Kenyan: Q1"}]) is False
    assert country_blind([{"country": "Japan", "prompt": "Q"}]) is False

    def reg(name):
        return {"name": name, "n": 20, "metrics": {"acc": {"mean": 0.4, "lo": 0.2, "hi": 0.6, "n": 20}}}

    tied = region_gap([reg("Asia"), reg("Europe")], "acc")
    assert tied["best"] != tied["worst"] and tied["gap"] == 0 and tied["claim"] == "no_difference"


# --- improve, lict and cross-lingual sections ---------------------------------------------------------
def test_improve_folder_gives_before_after_section(tmp_path: Path):
    from report_fixtures import fake_improve

    from culturelens.report.data import build_model, is_improve_dir
    from culturelens.stats import SMALL_N

    s = fake_improve(tmp_path / "imp")
    assert is_improve_dir(tmp_path / "imp") and not is_improve_dir(Path(s["runs"]["before"]))
    model = build_model([tmp_path / "imp"])
    # the folder stands for its two runs: after first, so the comparison reads after − before
    assert [r["dir"] for r in model["runs"]] == [s["runs"]["after"], s["runs"]["before"]]
    assert model["comparisons"][0]["result"]["a"] == model["runs"][0]["label"]
    (iv,) = model["improve"]
    assert iv["training_variants"] == s["training_variants"] and len(iv["training_variants"]) == 2
    assert iv["verdicts"] == s["verdicts"] and iv["data_positions"] == s["data"]["positions"]["train"]
    for key in ("test", "heldout_country"):
        src, sp = s["splits"][key], iv["splits"][key]
        assert (
            sp["pooled"]["diff"] == src["pooled"]["diff"]
            and [sp["pooled"]["lo"], sp["pooled"]["hi"]] == src["pooled"]["ci"]
        )
        assert sp["robust"]["diff"] == src["robust"]["diff"]
        tp = src["training_presentation"]
        assert sp["training"]["train"]["diff"] == tp["gain_train"]["diff"]
        assert sp["training"]["other"]["diff"] == tp["gain_other"]["diff"]
        assert sp["training"]["other_variants"] == ["labels=numbers", "option_order=reversed,labels=numbers"]
        by = {c["country"]: c for c in src["countries"]}
        assert {c["name"] for c in sp["countries"]} == set(by)
        for c in sp["countries"]:
            assert c["diff"] == by[c["name"]]["diff"] and c["p_holm"] == by[c["name"]]["p_holm"]
            assert c["small"] == (c["n"] < SMALL_N) and c["iso2"]
        assert {r["variant"] for r in sp["per_variant"] if r["training"]} == set(iv["training_variants"])
        # the after model always answers the first option: the position check shows it
        pos = {r["variant"]: r for r in sp["positions"]}
        assert pos["default"]["after"][0] == 1.0 and pos["default"]["top_position"] == 0
    assert iv["transfer"]["tasks"][0]["rows"][0]["group"] == "all"
    assert iv["control"]["verdict"] == "worse (a cost)" and iv["control"]["diff"] < 0
    page = render_html(model)
    assert 'id="improve-blocks"' in page and 'data-section="improve"' in page
    # a plain run has no improve section; a folder with improve.json but no runs is one line
    assert build_model([Path(s["runs"]["before"])])["improve"] == []
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / "improve.json").write_text("{}", encoding="utf-8")
    with pytest.raises(Exception, match="not its before and after runs"):
        build_model([tmp_path / "bare"])


def test_lict_view_follows_the_tasks_paired_rows(tmp_path: Path, shared_datasets: Path):
    """A lict run on the real release with a scripted model: the page's rows are the task's McNemar and
    Holm numbers, with Wilson intervals of each accuracy and a change interval containing the change."""
    from report_fixtures import lict_run

    from culturelens.report.data import build_model
    from culturelens.stats import wilson_interval

    run = lict_run(tmp_path / "lict")
    paired = json.loads((run / "results.json").read_text())["tasks"]["lict"]["extra"]["paired"]
    lv = build_model([run])["runs"][0]["tasks"]["lict"]["lict"]
    assert set(lv["paired"]) == {"acc", "acc_lenient"}
    rows = {r["culture"]: r for r in lv["paired"]["acc"]}
    assert set(rows) == {"Pakistan", "Haiti", "Somalia"}
    for c, r in rows.items():
        src = paired["acc"][c]
        assert r["p"] == pytest.approx(src["p"], abs=1e-5) and r["p_holm"] == pytest.approx(
            src["p_holm"], abs=1e-5
        )
        assert r["original"]["mean"] == pytest.approx(src["original"], abs=1e-4)
        lo, hi = wilson_interval(round(src["culture"] * src["n"]), src["n"])
        assert (r["culture_acc"]["lo"], r["culture_acc"]["hi"]) == (
            pytest.approx(lo, abs=1e-4),
            pytest.approx(hi, abs=1e-4),
        )
        assert r["diff"]["mean"] == pytest.approx(src["diff"], abs=1e-4)
        assert r["diff"]["lo"] <= r["diff"]["mean"] <= r["diff"]["hi"]
        assert r["small"] == (src["n"] < 10)
    # the script: Haiti's versions all wrong, Pakistan's as the originals
    assert rows["Haiti"]["diff"]["mean"] < 0 and rows["Haiti"]["p_holm"] < 0.05
    assert rows["Pakistan"]["diff"]["mean"] == 0 and rows["Pakistan"]["diff"].get("flat")


def test_crosslingual_side_file_is_shown_per_region(tmp_path: Path):
    from test_crosslingual import build_scripted_run

    from culturelens import crosslingual as xl
    from culturelens.report.data import build_model

    run = build_scripted_run(tmp_path)
    assert build_model([run])["runs"][0]["crosslingual"] is None  # nothing written yet
    res = xl.analyze(run)
    (run / "crosslingual.json").write_text(json.dumps(res), encoding="utf-8")
    cl = build_model([run])["runs"][0]["crosslingual"]
    (row,) = cl["regions"]
    src = res["regions"]["Spain"] if "Spain" in res["regions"] else next(iter(res["regions"].values()))
    assert row["local"]["mean"] == pytest.approx(src["local"]["mean"], abs=1e-4)
    assert [row["english"]["lo"], row["english"]["hi"]] == [
        pytest.approx(x, abs=1e-4) for x in src["english"]["ci"]
    ]
    assert row["agreement"]["mean"] == pytest.approx(src["agreement"]["mean"], abs=1e-4)
    assert row["diff"]["mean"] == pytest.approx(src["diff"], abs=1e-4) and row["p_holm"] == pytest.approx(
        src["p_holm"]
    )
    assert row["iso2"] == "ES" and row["small"] == (row["n"] < 10)
    assert cl["all"]["n"] == res["all"]["questions"]


def test_a_tasks_own_verdict_is_stated_in_the_report(tmp_path: Path):
    """The nationality task's variation verdict (its own analysis, in extra) reaches the page as words
    with its figures, the same line the console prints."""
    from culturelens.console import extra_verdicts

    run = fake_run(
        tmp_path / "nat",
        "hash",
        tasks=["nationality"],
        limit=3,
        task_options={"nationality": {"nationalities": "Japan,Kenya,Brazil", "max_tokens": 8}},
        judges=["fake:hash"],
        judge_options={"generate_text": "[[No]]"},
        generate_text=None,
    )
    page = build_report([run], tmp_path / "r.html").read_text(encoding="utf-8")
    data = embedded(page, "report-data")
    task = data["runs"][0]["tasks"]["nationality"]
    extra = json.loads((run / "results.json").read_text())["tasks"]["nationality"]["extra"]
    assert task["extra_verdicts"] == extra_verdicts(extra)
    assert len(task["extra_verdicts"]) == 1 and "over 3 requests" in task["extra_verdicts"][0]
    assert "extra-verdict" in page
