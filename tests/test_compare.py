"""Paired comparison of two runs with a known difference."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from culturelens.backends.fake import FakeBackend
from culturelens.cli import app
from culturelens.compare import compare_group, compare_runs
from culturelens.runner import RunConfig, Runner
from culturelens.sweep import expand

FIXTURES = Path(__file__).resolve().parent / "fixtures"
# sweep_mc: answers at original positions 0,0 | 0,1 | 0,2 | 1,3 for Japan | Kenya | Brazil | Germany
MC = FIXTURES / "sweep_mc"


def _run(tmp: Path, policy: str, name: str, vary: list[str] | None = None) -> Path:
    cfg = RunConfig(
        model=f"fake:{policy}",
        tasks=["starter"],
        variants=expand(vary or []),
        data_dir=str(MC),
        out=str(tmp / name),
        cache=str(tmp / "c.sqlite"),
        n_boot=100,
    )
    return Runner(cfg, backend=FakeBackend(policy)).run().run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("cmp")
    return _run(tmp, "first", "first"), _run(tmp, "last", "last")


def test_first_vs_last_known_difference(runs: tuple[Path, Path]) -> None:
    """'first' is right on the 4 items answered by option 0, 'last' on the 1 answered by option 3."""
    res = compare_runs(*runs)
    assert (res["a"], res["b"]) == ("fake-first", "fake-last")
    t = res["tasks"]["starter"]
    assert t["metric"] == "acc" and t["pairing"] == "item"
    rows = {r["group"]: r for r in t["rows"]}
    assert list(rows)[0] == "all" and set(rows) == {"all", "Brazil", "Germany", "Japan", "Kenya"}
    al = rows["all"]
    assert (al["n"], al["a"], al["b"]) == (8, 0.5, 0.125)
    assert al["diff"] == pytest.approx(0.375)
    assert al["ci"][0] <= 0.375 <= al["ci"][1]
    # discordant pairs: b=4 (first only), c=1 (last only): exact p = 2 * P(X <= 1 | 5, 1/2) = 12/32
    assert al["test"].startswith("McNemar exact (b=4, c=1)")
    assert al["p"] == pytest.approx(12 / 32)
    assert "too small" in al["note"] and "underpowered" in al["note"]
    assert rows["Japan"]["diff"] == 1.0 and rows["Germany"]["diff"] == -0.5
    assert all(r["p_holm"] >= r["p"] for r in t["rows"])


def test_compare_group_large_sample_detects_difference() -> None:
    a = [1.0] * 60 + [0.0] * 40
    b = [1.0] * 30 + [0.0] * 70
    row = compare_group(a, b, [str(i) for i in range(100)], n_items=100)
    assert row["diff"] == pytest.approx(0.3) and row["p"] < 1e-6 and row["test"].startswith("McNemar chi2")
    assert row["note"] == ""
    # continuous metric, clustered rows: permutation test
    row = compare_group([0.9, 0.8, 0.7, 0.9], [0.1, 0.2, 0.3, 0.1], ["q1", "q1", "q2", "q2"], n_items=2)
    assert row["test"] == "paired permutation (clustered)" and row["p"] == pytest.approx(0.5)


def test_compare_pairs_presentations_of_one_model(tmp_path: Path) -> None:
    """Two runs without a shared variant are paired on items under each run's primary variant."""
    a = _run(tmp_path, "first", "ident")
    b = _run(tmp_path, "first", "rot1", ["option_order=rotate:1"])
    t = compare_runs(a, b)["tasks"]["starter"]
    assert t["pairing"].startswith("item (A: default, B: option_order=rotate:1)")
    assert t["rows"][0]["a"] == 0.5 and t["rows"][0]["b"] == 0.25


def test_compare_pools_shared_variants(tmp_path: Path) -> None:
    a = _run(tmp_path, "first", "fa", ["option_order=rotate"])
    b = _run(tmp_path, "last", "lb", ["option_order=rotate"])
    t = compare_runs(a, b)["tasks"]["starter"]
    al = t["rows"][0]
    assert t["pairing"] == "item x shared variant" and al["pairs"] == 32 and al["n"] == 8
    # under rotation both policies are right on every item exactly once: no difference on average
    assert al["a"] == al["b"] == 0.25 and al["test"] == "paired permutation (clustered)" and al["p"] == 1.0


def test_cli_compare(runs: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "cmp.json"
    res = CliRunner().invoke(app, ["compare", str(runs[0]), str(runs[1]), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "fake-first" in res.output and "+0.375" in res.output
    assert json.loads(out.read_text())["tasks"]["starter"]["rows"][0]["n"] == 8
    bad = CliRunner().invoke(app, ["compare", str(runs[0]), str(tmp_path / "nope")])
    assert bad.exit_code == 2 and "not found" in bad.output


@pytest.mark.slow
def test_compare_two_real_models(tmp_path: Path) -> None:
    """Two real runs of the embedded model (letter vs number labels) on a starter slice."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed")
    from culturelens.backends.base import BackendError

    cfg = RunConfig(
        model="default",
        tasks=["starter"],
        limit=8,
        out=str(tmp_path / "a"),
        cache=str(tmp_path / "c.sqlite"),
        n_boot=100,
    )
    a = Runner(cfg).run().run_dir
    try:
        b = (
            Runner(
                cfg.model_copy(
                    update={
                        "model": "default",
                        "out": str(tmp_path / "b"),
                        "variants": expand(["labels=numbers"]),
                    }
                )
            )
            .run()
            .run_dir
        )
    except BackendError as exc:  # pragma: no cover
        pytest.skip(str(exc))
    res = compare_runs(a, b)
    al = res["tasks"]["starter"]["rows"][0]
    assert al["n"] == 8 and al["ci"][0] <= al["diff"] <= al["ci"][1] and 0.0 <= al["p"] <= 1.0
    assert al["diff"] == pytest.approx(al["a"] - al["b"])


def test_group_p_values_are_adjusted_and_power_stays_in_range(runs):
    res = compare_runs(*runs)
    for t in res["tasks"].values():
        for r in t["rows"][1:]:
            assert r["p"] <= r["p_bh"] <= r["p_holm"] + 1e-12 <= 1 + 1e-12
            assert r["mde"] is None or 0 < r["mde"] <= 1
            assert "detectable" not in r["note"] or "|diff| >= 1." not in r["note"]
