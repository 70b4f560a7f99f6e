"""Alignment metrics against hand-computed values, and the run-level analysis on fixtures."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from culturelens import alignment as al
from culturelens.backends.fake import FakeBackend
from culturelens.runner import RunConfig, Runner
from culturelens.sweep import expand

FIX = Path(__file__).parent / "fixtures"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
HOFSTEDE = SHARED / "hofstede" / "6-dimensions-for-website-2015-08-16.csv"


# --- distances ------------------------------------------------------------------------------------------
def test_js_distance_hand_computed():
    # p = (1/2, 1/2), q = (1, 0): m = (3/4, 1/4)
    # KL(p||m) = 1/2 log2(2/3) + 1/2 log2(2) = 0.2075187; KL(q||m) = log2(4/3) = 0.4150375
    # JSD = (0.2075187 + 0.4150375) / 2 = 0.3112781; distance = sqrt = 0.5579230
    assert al.js_distance([0.5, 0.5], [1.0, 0.0]) == pytest.approx(0.5579230, abs=1e-6)
    assert al.js_distance([1, 0], [0, 1]) == pytest.approx(1.0)  # disjoint supports: the maximum with base 2
    assert al.js_distance([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == pytest.approx(0.0, abs=1e-12)
    p, q = [0.2, 0.3, 0.5], [0.5, 0.3, 0.2]
    assert al.js_distance(p, q) == pytest.approx(al.js_distance(q, p))
    assert al.js_distance(p, q) == pytest.approx(jensenshannon(p, q, base=2), abs=1e-9)
    # unnormalised shares (survey rows summing to 0.99) are rescaled first
    assert al.js_distance([0.495, 0.495], [0.99, 0.0]) == pytest.approx(0.5579230, abs=1e-6)
    assert al.similarity("jsd", [0.5, 0.5], [1.0, 0.0]) == pytest.approx(1 - 0.5579230, abs=1e-6)


def test_wasserstein_on_ordinal_scale_hand_computed():
    # three-point scale mapped to positions 0, 0.5, 1
    assert al.wasserstein1([1, 0, 0], [0, 0, 1]) == pytest.approx(1.0)
    assert al.wasserstein1([1, 0, 0], [0, 1, 0]) == pytest.approx(0.5)
    # CDFs (0.5, 1.0) vs (0.0, 0.5): |diff| 0.5 + 0.5, times step 0.5 = 0.5
    assert al.wasserstein1([0.5, 0.5, 0], [0, 0.5, 0.5]) == pytest.approx(0.5)
    # four-point scale, steps 1/3: CDFs (.4,.7,.9) vs (.1,.3,.6): (.3+.4+.3)/3
    assert al.wasserstein1([0.4, 0.3, 0.2, 0.1], [0.1, 0.2, 0.3, 0.4]) == pytest.approx(1.0 / 3)
    pos = np.linspace(0, 1, 4)
    ref = wasserstein_distance(pos, pos, [0.4, 0.3, 0.2, 0.1], [0.1, 0.2, 0.3, 0.4])
    assert al.wasserstein1([0.4, 0.3, 0.2, 0.1], [0.1, 0.2, 0.3, 0.4]) == pytest.approx(ref)
    with pytest.raises(ValueError):
        al.wasserstein1([0.5, 0.5], [0.2, 0.3, 0.5])


def test_mean_abs_error_on_0_1_scale():
    # mean position of (0.2, 0.3, 0.5) on (0, .5, 1) = 0.15 + 0.5 = 0.65; |0.65 - 0.4| = 0.25
    assert al.expected_position([0.2, 0.3, 0.5]) == pytest.approx(0.65)
    assert al.similarity("mae", [0.2, 0.3, 0.5], ref_mean=0.4) == pytest.approx(0.75)
    assert al.similarity("mae", [0.2, 0.3, 0.5], ref_dist=[0, 1, 0]) == pytest.approx(1 - 0.15)


def test_baselines_and_normalised_score():
    ref = al.Reference(
        k=2,
        ordered=False,
        dists={"A": np.array([0.8, 0.2]), "B": np.array([0.4, 0.6]), "C": np.array([0.6, 0.4])},
    )
    b = ref.baselines("jsd", "A")
    assert b["uniform"] == pytest.approx(1 - jensenshannon([0.5, 0.5], [0.8, 0.2], base=2))
    # pooled over all three countries = (0.6, 0.4): majority answer is option 0
    assert b["majority"] == pytest.approx(1 - jensenshannon([1, 0], [0.8, 0.2], base=2))
    # leave-one-out: mean of B and C = (0.5, 0.5)
    assert b["pooled"] == pytest.approx(1 - jensenshannon([0.5, 0.5], [0.8, 0.2], base=2))
    means = al.Reference(k=3, ordered=True, means={"A": 0.9, "B": 0.3, "C": 0.3})
    mb = means.baselines("mae", "A")
    assert mb["uniform"] == pytest.approx(1 - 0.4)  # uniform answers average 0.5
    assert mb["majority"] == pytest.approx(1 - abs(0.5 - 0.9))  # pooled mean 0.5 -> nearest scale point 0.5
    assert mb["pooled"] == pytest.approx(1 - 0.6)  # others average 0.3
    assert al.normalised(0.9, 0.6) == pytest.approx(0.75)
    assert al.normalised(0.6, 0.6) == pytest.approx(0.0)
    assert math.isnan(al.normalised(0.9, 1.0))


def test_country_table_ranks_and_nearest():
    sims = np.array([[0.9, 0.5, 0.7], [0.8, 0.6, np.nan], [0.95, 0.4, 0.6], [0.85, 0.5, 0.65]])
    rows = al.country_table(sims, ["X", "Y", "Z"], n_boot=300, seed=1)
    assert [r["country"] for r in rows] == ["X", "Z", "Y"]
    x, z = rows[0], rows[1]
    assert x["sim"] == pytest.approx(0.875) and x["n"] == 4
    assert z["n"] == 3 and z["sim"] == pytest.approx((0.7 + 0.6 + 0.65) / 3)
    assert x["p_nearest"] == pytest.approx(1.0)
    assert x["ci"][0] <= x["sim"] <= x["ci"][1]
    assert x["rank_ci"] == [1, 1]


# --- VSM 2013 -------------------------------------------------------------------------------------------
def _answer_sheet() -> dict[int, list[int]]:
    """Four respondents; every item answered 3 unless listed."""
    sheet = {n: [3, 3, 3, 3] for n in range(1, 25)}
    sheet.update(
        {
            2: [2, 2, 1, 3],
            7: [4, 4, 3, 5],
            20: [3, 4, 3, 4],
            23: [2, 3, 2, 3],  # PDI
            4: [1, 1, 2, 2],
            9: [5, 4, 5, 4],
            6: [2, 2, 2, 2],  # IDV (01 stays 3)
            18: [2, 2, 2, 2],
            21: [1, 2, 1, 2],
            24: [4, 4, 4, 4],  # UAI (15 stays 3)
            13: [2, 2, 2, 2],
            14: [1, 1, 1, 1],
            19: [1, 1, 1, 1],
            22: [2, 2, 2, 2],  # LTO
            11: [1, 1, 1, 1],
            17: [4, 4, 4, 4],
            16: [2, 2, 2, 2],  # IVR (12 stays 3)
        }
    )
    return sheet


def test_vsm_formulas_on_constructed_answer_sheet():
    means = {n: sum(v) / len(v) for n, v in _answer_sheet().items()}
    idx = al.vsm_indices(means)
    assert idx["PDI"] == pytest.approx(35 * (4.0 - 2.0) + 25 * (3.5 - 2.5))  # 95
    assert idx["PDI"] == pytest.approx(95.0)
    assert idx["IDV"] == pytest.approx(35 * (1.5 - 3.0) + 35 * (4.5 - 2.0))  # 35
    assert idx["MAS"] == pytest.approx(0.0)
    assert idx["UAI"] == pytest.approx(40 * (2.0 - 3.0) + 25 * (1.5 - 4.0))  # -102.5
    assert idx["LTO"] == pytest.approx(40 * (2.0 - 1.0) + 25 * (1.0 - 2.0))  # 15
    assert idx["IVR"] == pytest.approx(35 * (3.0 - 1.0) + 40 * (4.0 - 2.0))  # 150
    with_c = al.vsm_indices(means, {"PDI": 20.0})
    assert with_c["PDI"] == pytest.approx(115.0) and with_c["IDV"] == pytest.approx(35.0)
    del means[23]
    with pytest.raises(ValueError, match="23"):
        al.vsm_indices(means)


def test_vsm_dimensions_cover_all_24_items_once():
    items = sorted(n for ns in al.VSM_DIMENSIONS.values() for n in ns)
    assert items == list(range(1, 25))


def test_compare_with_hofstede_is_invariant_to_constants():
    hof = {"A": {"PDI": 10, "IDV": 80}, "B": {"PDI": 50, "IDV": 20}, "C": {"PDI": 90, "IDV": 50}}
    # model = 0.3 * score + arbitrary constant: perfect agreement across countries
    model = {c: {d: 0.3 * v + 123 for d, v in s.items()} for c, s in hof.items()}
    res = al.compare_with_hofstede(model, hof, n_boot=100)
    assert res["dimensions"]["PDI"]["spearman"] == pytest.approx(1.0)
    assert res["dimensions"]["PDI"]["pearson"] == pytest.approx(1.0)
    assert res["dimensions"]["IDV"]["pair_agreement"] == pytest.approx(1.0)
    assert res["overall"]["pearson"] == pytest.approx(1.0)
    assert res["dimensions"]["MAS"]["n"] == 0
    flipped = {c: {"PDI": -v["PDI"], "IDV": v["IDV"]} for c, v in hof.items()}
    res2 = al.compare_with_hofstede(flipped, hof, n_boot=100)
    assert res2["dimensions"]["PDI"]["spearman"] == pytest.approx(-1.0)
    assert res2["dimensions"]["PDI"]["pair_agreement"] == pytest.approx(0.0)
    assert res2["dimensions"]["PDI"]["p_spearman"] == pytest.approx(
        2 / 6
    )  # 2 of the 3! orders reach |rho| = 1


def test_extrapolability_detects_a_dimension_the_model_gets_backwards():
    rng = np.random.default_rng(3)
    dims = list(al.VSM_FORMULAS)
    hof = {f"C{i}": {d: float(rng.uniform(0, 100)) for d in dims} for i in range(6)}
    model = {c: {d: (-v if d == "UAI" else v) for d, v in s.items()} for c, s in hof.items()}
    res = al.extrapolability(model, hof)
    assert res["pairs"] == 15
    assert res["held_out"]["UAI"]["agreement"] == pytest.approx(0.0)
    assert res["held_out"]["PDI"]["agreement"] == pytest.approx(1.0)
    # predictor (agreement on the other five) is 0.8 for every pair when PDI is held out: no spread, no r
    assert res["held_out"]["PDI"]["r"] is None
    assert res["held_out"]["PDI"]["agreement_if_others_agree"] == pytest.approx(1.0)


@pytest.mark.skipif(not HOFSTEDE.exists(), reason="shared Hofstede data not available")
def test_load_hofstede_real_file():
    hof = al.load_hofstede(HOFSTEDE)
    assert hof["United States"] == {"PDI": 40, "IDV": 91, "MAS": 62, "UAI": 46, "LTO": 26, "IVR": 68}
    assert hof["Japan"] == {"PDI": 54, "IDV": 46, "MAS": 95, "UAI": 92, "LTO": 88, "IVR": 42}
    assert hof["China"]["PDI"] == 80 and hof["United Kingdom"]["IDV"] == 89
    assert "Albania" in hof and "PDI" not in hof["Albania"] and hof["Albania"]["LTO"] == 61  # #NULL! dropped
    assert not {"Africa East", "Africa West", "Arab countries"} & set(hof)  # regional rows are not countries
    assert "South Africa" in hof  # the national row; "South Africa white" (sub-national) is dropped
    assert sum(1 for s in hof.values() if len(s) == 6) >= 60


# --- run-level analysis -----------------------------------------------------------------------------------
def _run(tmp_path: Path, policy: str, vary: list[str], **kw) -> Path:
    cfg = RunConfig(
        model=f"fake:{policy}",
        tasks=["opinions"],
        variants=expand(vary),
        out=str(tmp_path / "run"),
        cache=str(tmp_path / "c.sqlite"),
        n_boot=200,
        data_dir=str(FIX / "opinions" / "global_opinions.csv"),
        **kw,
    )
    return Runner(cfg, backend=FakeBackend(policy)).run().run_dir


def test_analyze_alignment_debiases_position_bias(tmp_path):
    run_dir = _run(tmp_path, "first", ["option_order=identity,reversed"])
    res = al.analyze_alignment(run_dir)
    assert json.loads((run_dir / "alignment.json").read_text()) == res
    t = res["tasks"]["opinions"]
    assert t["metric"] == "jsd" and t["presentations"] == ["default", "option_order=reversed"]
    # "first" always prefers the first displayed option: averaging identity and reversed leaves
    # both ends of each scale; the bias that was removed is reported
    bias = t["bias_removed"]["unsteered"]
    assert bias["first_position_excess"] > 0.3 and bias["last_position_excess"] < -0.3
    assert bias["variants"]["default"]["tv"] == pytest.approx(bias["variants"]["option_order=reversed"]["tv"])
    table = t["by_condition"]["unsteered"]["countries"]["jsd"]
    # Kenya's fixture answers are split between the two ends: the debiased model is nearest to it
    assert table[0]["country"] == "Kenya" and t["by_condition"]["unsteered"]["nearest"][0] == "Kenya"
    assert {r["country"] for r in table} == {
        "Kenya",
        "United Kingdom",
        "Brazil",
        "Japan",
    }  # Britain normalised
    for r in table:
        assert 0 <= r["ci"][0] <= r["sim"] <= r["ci"][1] <= 1
        assert r["uniform"] is not None and r["majority"] is not None and r["pooled"] is not None
    kenya = table[0]
    # recompute Kenya's similarity by hand from samples.jsonl
    recs = [json.loads(x) for x in (run_dir / "samples.jsonl").read_text().splitlines()]
    from culturelens.tasks.opinions import read_goqa

    items = {it.id: it for it in read_goqa(FIX / "opinions" / "global_opinions.csv")}
    sims = []
    for iid, it in items.items():
        probs = [np.asarray(r["probs"]) for r in recs if r["item_id"] == iid]
        d = np.mean(probs, axis=0)
        if "Kenya" in it.reference:
            sims.append(1 - jensenshannon(d, it.reference["Kenya"], base=2))
    assert kenya["sim"] == pytest.approx(float(np.mean(sims)), abs=1e-9)
    assert kenya["n"] == 6


def test_analyze_alignment_single_variant_has_no_bias_section(tmp_path):
    run_dir = _run(tmp_path, "hash", [])
    t = al.analyze_alignment(run_dir)["tasks"]["opinions"]
    assert t["bias_removed"] == {}
    assert t["by_condition"]["unsteered"]["questions"] == 6


def test_analyze_alignment_skips_non_survey_runs(tmp_path):
    cfg = RunConfig(
        model="fake:first",
        tasks=["starter"],
        limit=4,
        out=str(tmp_path / "run"),
        cache=str(tmp_path / "c.sqlite"),
    )
    run_dir = Runner(cfg, backend=FakeBackend("first")).run().run_dir
    assert al.analyze_alignment(run_dir) == {"run": str(run_dir), "tasks": {}}
    assert not (run_dir / "alignment.json").exists()
