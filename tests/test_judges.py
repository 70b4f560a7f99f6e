"""The judge stage with scripted judges: verdict parsing, invalid verdicts counted, agreement maths against
values computed by hand, swap consistency, wording spread, human correlation, the cache, crash and resume."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import culturelens as cl
from culturelens.agreement import (
    alpha_coincidence,
    alpha_verdict,
    krippendorff_alpha,
    spearman,
    weighted_kappa,
)
from culturelens.backends.base import Backend
from culturelens.backends.registry import register_backend
from culturelens.backends.templates import plain_format
from culturelens.judging import JudgeAsk, parse_preference, parse_rating, parse_verdict, parse_yesno
from culturelens.schema import Message, Request, Response

FIX = Path(__file__).parent / "fixtures"
#: the scripted judge raises once it has answered this many requests (None: never); set by the resume test
FAIL_AFTER: list[int | None] = [None]
CALLS: list[int] = [0]


def _h(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


@register_backend("scripted", usage="scripted:RULE", hidden=True)
class ScriptedJudge(Backend):
    """Judges by rule: ``a`` / ``c`` rate by one hash of the prompt, ``b`` by another, ``first`` always prefers
    answer A, ``tie`` always ties, ``garbage`` never gives a readable verdict, ``yes`` says yes."""

    chat_template_source = "plain"

    def __init__(self, spec: str = "a"):
        self.rule = spec

    def identity(self) -> dict[str, Any]:
        return {"backend": "scripted", "model": self.rule}

    def format(self, messages: Sequence[Message], assistant_prefix: str = "") -> str:
        return plain_format(messages, assistant_prefix)

    def label_logprobs(self, batch: Sequence[Request]) -> list[Response]:
        raise NotImplementedError

    continuation_logprobs = label_logprobs

    def _reply(self, text: str) -> str:
        if self.rule in ("a", "c"):
            return f"Rating: [[{_h(text) % 10 + 1}]]"
        if self.rule == "b":
            return f"Rating: [[{_h(text + 'b') % 10 + 1}]]"
        if self.rule == "one":
            return "Rating: [[1]]"
        return {"first": "[[A]]", "tie": "[[C]]", "yes": "[[Yes]]"}.get(self.rule, "I think it is fine.")

    def generate(self, batch: Sequence[Request]) -> list[Response]:
        out = []
        for r in batch:
            if FAIL_AFTER[0] is not None and CALLS[0] >= FAIL_AFTER[0]:
                raise RuntimeError("scripted judge crashed")
            CALLS[0] += 1
            # the prefix (e.g. "Rating: [[" of the brief wording) is part of the verdict already
            reply = self._reply(r.text)
            if r.text.endswith("Rating: [[") and reply.startswith("Rating: [["):
                reply = reply[len("Rating: [[") :]
            elif r.text.endswith("[[") and reply.startswith("[["):
                reply = reply[2:]
            out.append(Response(text=reply))
        return out


@pytest.fixture(autouse=True)
def _reset():
    FAIL_AFTER[0] = None
    CALLS[0] = 0
    yield
    FAIL_AFTER[0] = None


def _run(tmp_path: Path, task: str, judges: list[str], name: str = "run", **kw: Any) -> cl.api.Finished:
    opts = kw.pop("task_options", {})
    return cl.run(
        model="fake:hash",
        tasks=[task],
        data_dir=str(FIX / task),
        judges=judges,
        out=str(tmp_path / name),
        cache=str(kw.pop("cache", tmp_path / "c.sqlite")),
        report=False,
        batch_size=kw.pop("batch_size", 4),
        task_options={task: opts} if opts else {},
        **kw,
    )


# --- parsing ------------------------------------------------------------------------------------------
def test_verdicts_are_read_from_their_fixed_formats_and_nothing_else():
    assert parse_rating("The answer is thin. Rating: [[7]]") == 7.0
    assert parse_rating("Rating: [[8/10]]") == 8.0
    assert parse_rating("rating: 3") == 3.0
    assert parse_rating("Rating: [[6] because") == 6.0  # a single closing bracket: MT-Bench's [n] fallback
    assert parse_rating("Rating: [[1-2]]") is None
    assert parse_rating("Rating: [[11]]") is None  # outside 1-10
    assert parse_rating("Rating: [[0]]") is None
    assert parse_rating("seven out of ten") is None
    assert parse_rating("[[4]]", scale=(1, 5)) == 4.0
    assert parse_preference("Both fine, but [[B]] is better") == "B"
    assert parse_preference("A) is better") == "A"
    assert parse_preference("Neither") is None
    assert parse_yesno("Explanation... [[No]]") is False
    assert parse_yesno("Yes, it refuses.") is True
    assert parse_yesno("maybe") is None
    ask = JudgeAsk("p", "pairwise", (), swapped=(Message(role="user", content="x"),))
    # the judged response is A in order AB and B in order BA
    assert parse_verdict(ask, "AB", "[[A]]") == 1.0 and parse_verdict(ask, "BA", "[[A]]") == 0.0
    assert parse_verdict(ask, "BA", "[[B]]") == 1.0 and parse_verdict(ask, "AB", "[[C]]") == 0.5
    assert parse_verdict(ask, "AB", "no idea") is None
    yn = JudgeAsk("r", "yesno", ())
    assert parse_verdict(yn, "-", "Answer: No") == 0.0 and parse_verdict(yn, "-", "[[Yes]]") == 1.0


# --- agreement maths, against values computed by hand ---------------------------------------------------------
def test_krippendorff_alpha_equals_hand_computed_values():
    # nominal, 2 raters x 4 units: coincidences o11=2, o12=o21=1, o22=4; n1=3, n2=5, n=8
    # alpha = 1 - (n-1) * (o12+o21) / (2 n1 n2) = 1 - 7*2/30 = 0.5333
    nominal = [[1, 1, 2, 2], [1, 2, 2, 2]]
    # interval, units (1,1) (2,2) (3,4): D_o = 2; D_e = 82/5 = 16.4; alpha = 1 - 2/16.4 = 0.87805
    interval = [[1, 2, 3, None], [1, 2, 4, 5]]  # the last unit has one value: not pairable, ignored
    for fn in (alpha_coincidence, krippendorff_alpha):
        assert fn(nominal, "nominal") == pytest.approx(1 - 14 / 30)
        assert fn(interval, "interval") == pytest.approx(1 - 2 / 16.4)
        assert fn([[3, 3], [3, 3]], "interval") is None  # no spread: undefined
    # ordinal on {0, 0.5, 1}, units (0,0) (0.5,1) (1,1): n = [2, 1, 3], n = 6; squared ordinal distances
    # d(0,.5) = (2+1 - 1.5)^2 = 2.25, d(.5,1) = (1+3 - 2)^2 = 4, d(0,1) = (2+1+3 - 2.5)^2 = 12.25
    # D_o = 2 * 4 = 8; D_e = 2 * (2*1*2.25 + 1*3*4 + 2*3*12.25) / 5 = 2 * 90 / 5 = 36; alpha = 1 - 8/36
    ordinal = [[0, 0.5, 1], [0, 1, 1]]
    ours = alpha_coincidence(ordinal, "ordinal")
    assert ours == pytest.approx(1 - 8 / 36)
    try:
        import krippendorff
    except ImportError:
        pytest.skip("krippendorff not installed: only the hand-computed cases are checked")
    lib = krippendorff.alpha(reliability_data=[[0, 0.5, 1], [0, 1, 1]], level_of_measurement="ordinal")
    assert ours == pytest.approx(lib)


def test_weighted_kappa_and_spearman_equal_hand_computed_values():
    # observed weighted disagreement 1/12, expected 1/4 (quadratic weights on 3 categories): 1 - 1/3
    assert weighted_kappa([1, 2, 3], [1, 2, 2], [1, 2, 3]) == pytest.approx(2 / 3)
    assert weighted_kappa([1, 2], [1, 2], [1, 2, 3]) == pytest.approx(1.0)
    # sum of squared rank differences 2: rho = 1 - 6*2 / (4*15) = 0.8
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert spearman([1, 2], [2, 1]) is None


def test_alpha_verdict_follows_krippendorffs_thresholds():
    assert "too low to support the score" in alpha_verdict(0.5)
    assert "tentative" in alpha_verdict(0.7)
    assert "sufficient" in alpha_verdict(0.85)
    assert "not measurable" in alpha_verdict(None)


# --- the stage in a run -----------------------------------------------------------------------------------------
def test_unreadable_verdicts_are_counted_never_dropped(tmp_path: Path):
    done = _run(tmp_path, "care", ["scripted:garbage"])
    entry = done.results["tasks"]["care"]
    judge = entry["judge"]
    n = entry["n"]
    assert judge["verdicts"] == n and judge["invalid"] == n and judge["invalid_rate"] == 1.0
    assert "rating" not in entry["metrics"]  # no readable verdict: no rating, and it says why
    assert entry["metrics"]["judge_invalid"]["mean"] == 1.0 and entry["metrics"]["judge_invalid"]["n"] == n
    assert "unreadable" in judge["verdict"]
    log = cl.read_run(done.run_dir)
    rows = log.judgements("care")
    assert len(rows) == n and not any(r.valid for r in rows) and all(r.verdict is None for r in rows)
    assert {r.reply for r in rows} == {"I think it is fine."}
    assert log.header.model_extra and log.header.model_extra["judges"][0]["identity"]["model"] == "garbage"


def _matrix(rows: list[Any], key: str = "judge") -> dict[Any, dict[str, float]]:
    out: dict[Any, dict[str, float]] = defaultdict(dict)
    for r in rows:
        if r.verdict is not None:
            out[getattr(r, key)][f"{r.variant}|{r.item_id}"] = r.verdict
    return out


def test_panel_agreement_is_alpha_over_the_logged_verdicts(tmp_path: Path):
    done = _run(tmp_path, "care", ["scripted:a", "scripted:b"])
    rows = cl.read_run(done.run_dir).judgements("care")
    by = _matrix(rows)
    units = sorted({u for d in by.values() for u in d})
    expected = krippendorff_alpha([[by[j].get(u) for u in units] for j in (0, 1)], "interval")
    ask = done.results["tasks"]["care"]["judge"]["asks"]["rating"]
    assert ask["judge_alpha"] == pytest.approx(expected)
    assert ask["judge_weighted_kappa"] is not None
    # the per-sample rating is the mean of the two judges
    samples = {s.item_id: s for s in cl.read_run(done.run_dir).samples}
    for u in units:
        item = u.split("|", 1)[1]
        assert samples[item].metrics["rating"] == pytest.approx((by[0][u] + by[1][u]) / 2)
    verdict = done.results["tasks"]["care"]["judge"]["verdict"]
    assert ("too low" in verdict) == (expected is None or expected < 0.667)
    # two judges that follow one rule agree perfectly
    same = _run(tmp_path, "care", ["scripted:a", "scripted:c"], name="same")
    assert same.results["tasks"]["care"]["judge"]["asks"]["rating"]["judge_alpha"] == pytest.approx(1.0)
    assert "too low" not in same.results["tasks"]["care"]["judge"]["verdict"]


def test_pairwise_is_asked_in_both_orders_and_swap_consistency_measured(tmp_path: Path):
    biased = _run(tmp_path, "calmqa", ["scripted:first"], name="first")
    entry = biased.results["tasks"]["calmqa"]
    ask = entry["judge"]["asks"]["vs_human"]
    rows = cl.read_run(biased.run_dir).judgements("calmqa")
    with_human = 4  # fixture items that have a human answer
    assert len(rows) == 2 * with_human and {r.order for r in rows} == {"AB", "BA"}
    assert ask["swap_pairs"] == with_human
    assert ask["swap_consistency"] == 0.0 and ask["first_position_rate"] == 1.0
    assert "position-swap consistency 0.00" in entry["judge"]["verdict"]
    assert entry["metrics"]["vs_human"]["mean"] == 0.5  # wins in one order, loses in the other
    fair = _run(tmp_path, "calmqa", ["scripted:tie"], name="tie").results["tasks"]["calmqa"]
    assert fair["judge"]["asks"]["vs_human"]["swap_consistency"] == 1.0
    assert "depends on the order" not in fair["judge"]["verdict"]


def test_the_spread_over_judge_wordings_is_reported(tmp_path: Path):
    done = _run(tmp_path, "care", ["scripted:a"], task_options={"judge_templates": "paper,brief"})
    judge = done.results["tasks"]["care"]["judge"]
    rows = cl.read_run(done.run_dir).judgements("care")
    assert {r.wording for r in rows} == {"paper", "brief"}
    means = {}
    for w in ("paper", "brief"):
        vals = [r.verdict for r in rows if r.wording == w and r.verdict is not None]
        means[w] = sum(vals) / len(vals)
    ask = judge["asks"]["rating"]
    assert ask["wording_spread"] == pytest.approx(abs(means["paper"] - means["brief"]))
    by = _matrix(rows, "wording")
    units = sorted(by["paper"])
    assert ask["wording_alpha"] == pytest.approx(
        krippendorff_alpha([[by[w].get(u) for u in units] for w in ("paper", "brief")], "interval")
    )


def test_correlation_with_human_ratings_where_items_carry_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from culturelens.tasks.care import Care

    original = Care._file_items
    human = {"Japanese/0": 9.0, "Japanese/1": 2.0, "Japanese/2": 5.0, "Japanese/3": 7.0}

    def with_human(self: Care, path: Any, stem: str) -> list[Any]:
        items = original(self, path, stem)
        for it in items:
            if it.id in human:
                it.metadata["human_ratings"] = {"rating": human[it.id]}
        return items

    monkeypatch.setattr(Care, "_file_items", with_human)
    done = _run(tmp_path, "care", ["scripted:a"])
    samples = {s.item_id: s.metrics["rating"] for s in cl.read_run(done.run_dir).samples}
    ids = sorted(human)
    got = done.results["tasks"]["care"]["judge"]["asks"]["rating"]["human"]
    assert got["n"] == 4
    assert got["spearman"] == pytest.approx(spearman([samples[i] for i in ids], [human[i] for i in ids]))


def test_verdicts_come_from_the_cache_on_a_rerun_and_a_new_judge_is_not_reused(tmp_path: Path):
    first = _run(tmp_path, "care", ["scripted:a"])
    n = first.timing["judge_computed"]
    assert n == first.results["tasks"]["care"]["judge"]["verdicts"] > 0
    calls = CALLS[0]
    # the same command on a fresh run directory: every verdict from the cache, none computed
    again = _run(tmp_path, "care", ["scripted:a"], name="again")
    assert CALLS[0] == calls and again.timing["judge_computed"] == 0 and again.timing["judge_cache_hits"] == n
    assert again.results["tasks"]["care"]["metrics"] == first.results["tasks"]["care"]["metrics"]
    # the finished run itself is reused as it is
    assert _run(tmp_path, "care", ["scripted:a"]).timing.get("reused")
    # another judge in the same directory is a different run: recomputed, not reused
    other = _run(tmp_path, "care", ["scripted:b"])
    assert not other.timing.get("reused") and other.timing["judge_computed"] == n


def test_a_crash_mid_judging_resumes_with_the_same_results(tmp_path: Path):
    clean = _run(
        tmp_path, "care", ["scripted:a"], name="clean", cache=tmp_path / "clean.sqlite", batch_size=1
    )
    total = int(clean.timing["judge_computed"])
    CALLS[0] = 0
    FAIL_AFTER[0] = total // 2
    with pytest.raises(RuntimeError, match="scripted judge crashed"):
        _run(tmp_path, "care", ["scripted:a"], name="crash", batch_size=1)
    assert CALLS[0] == total // 2  # every verdict before the crash was committed
    FAIL_AFTER[0] = None
    resumed = _run(tmp_path, "care", ["scripted:a"], name="crash", batch_size=1)
    assert resumed.timing["judge_computed"] == total - total // 2
    assert resumed.timing["judge_cache_hits"] == total // 2
    strip = ("judges",)
    a = {k: v for k, v in clean.results["tasks"]["care"].items() if k not in strip}
    b = {k: v for k, v in resumed.results["tasks"]["care"].items() if k not in strip}
    assert a == b
    verdicts = lambda d: [(r.item_id, r.verdict) for r in cl.read_run(d).judgements()]  # noqa: E731
    assert verdicts(clean.run_dir) == verdicts(resumed.run_dir)


def test_a_bad_judge_spec_is_one_line_and_exit_2(tmp_path: Path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "culturelens.cli",
            "run",
            "--task",
            "care",
            "--data-dir",
            str(FIX / "care"),
            "--model",
            "fake:hash",
            "--judge",
            "nosuch:x",
            "--out",
            str(tmp_path / "r"),
            "--cache",
            str(tmp_path / "c.sqlite"),
            "--no-report",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "nosuch:x" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_bad_judge_wording_is_one_line_and_exit_2(tmp_path: Path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "culturelens.cli",
            "run",
            "--task",
            "care",
            "--data-dir",
            str(FIX / "care"),
            "--model",
            "fake:hash",
            "--opt",
            "judge_templates=fancy",
            "--out",
            str(tmp_path / "r"),
            "--cache",
            str(tmp_path / "c.sqlite"),
            "--no-report",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "judge_templates='fancy'" in lines[0], proc.stderr


def test_results_json_names_the_judge_and_is_json(tmp_path: Path):
    done = _run(tmp_path, "civics", ["scripted:yes"])
    data = json.loads((done.run_dir / "results.json").read_text())
    judge = data["tasks"]["civics"]["judge"]
    assert judge["judges"][0]["identity"] == {"backend": "scripted", "model": "yes"}
    assert judge["asks"]["refusal"]["kind"] == "yesno"
    assert data["tasks"]["civics"]["metrics"]["refusal"]["mean"] == 1.0
    assert "one judge and one wording" in judge["verdict"]


def test_sigkill_mid_judging_then_resume_matches_an_uninterrupted_run(tmp_path: Path):
    import os
    import signal
    import sqlite3
    import time

    def cmd(cache: Path, out: Path) -> list[str]:
        return [
            sys.executable, "-m", "culturelens.cli", "run", "--task", "care", "--data-dir", str(FIX / "care"),
            "--model", "fake:hash", "--judge", "fake:hash", "--judge-opt", "generate_text=Rating: [[6]]",
            "--judge-opt", "delay=0.4", "--batch-size", "1", "--cache", str(cache), "--out", str(out),
            "--no-report", "-q",
        ]  # fmt: skip

    env = {**os.environ, "CULTURELENS_NATIVE_PROBE": "0"}
    cache = tmp_path / "crash.sqlite"
    proc = subprocess.Popen(cmd(cache, tmp_path / "crash"), env=env)
    n_items, killed_at = 7, None
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
        try:
            n = sqlite3.connect(cache, timeout=1).execute("SELECT COUNT(*) FROM responses").fetchone()[0]
        except sqlite3.Error:
            continue
        if n >= n_items + 2:  # every answer and at least two verdicts committed
            proc.send_signal(signal.SIGKILL)
            killed_at = n
            break
    proc.wait(30)
    assert killed_at is not None, "the run finished before it could be killed"
    kept = sqlite3.connect(cache).execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    assert n_items + 2 <= kept < 2 * n_items  # killed mid-judging, verdicts so far kept
    subprocess.run(cmd(cache, tmp_path / "crash"), env=env, check=True, timeout=120)
    subprocess.run(cmd(tmp_path / "clean.sqlite", tmp_path / "clean"), env=env, check=True, timeout=120)
    crash, clean = cl.read_run(tmp_path / "crash"), cl.read_run(tmp_path / "clean")
    assert crash.complete and crash.is_whole()
    assert crash.timing["judge_cache_hits"] == kept - n_items  # the verdicts before the kill were reused
    assert crash.timing["judge_computed"] == 2 * n_items - kept
    assert crash.results["tasks"]["care"] == clean.results["tasks"]["care"]
    assert [(j.item_id, j.verdict) for j in crash.judgements()] == [
        (j.item_id, j.verdict) for j in clean.judgements()
    ]


def test_a_rating_interval_stays_on_the_rating_scale(tmp_path: Path):
    """A judge that always says 1 on a 1-10 scale: the interval starts at 1 and reaches up the scale; it
    is never a proportion's interval (all values 1 once read as 'all correct' gave [0.34, 1.00])."""
    done = _run(tmp_path, "care", ["scripted:one"])
    m = done.results["tasks"]["care"]["metrics"]["rating"]
    assert m["mean"] == 1.0 and m["ci"][0] == pytest.approx(1.0) and m["ci"][1] > 1.5
    assert m["ci_method"].endswith("on [1, 10]")
    for entry in done.results["tasks"]["care"]["by"]["language"].values():
        assert entry["metrics"]["rating"]["ci"][0] >= 1.0


def test_the_judge_wording_is_a_sweep_factor_like_any_other(tmp_path: Path):
    """``--vary judge_template=paper,brief``: the model answers once (its prompts do not change), each
    variant's responses are judged in its wording, the reliability measures compare the two wordings on
    the same responses, and the robustness engine reports the judge wording as a factor."""
    from culturelens.sweep import expand

    variants = expand(["judge_template=paper,brief"])
    assert [v.id for v in variants] == ["judge_template=paper", "judge_template=brief"]
    swept = _run(tmp_path, "care", ["scripted:a"], name="swept", variants=variants)
    entry = swept.results["tasks"]["care"]
    assert swept.timing["computed"] == entry["n"] + 2 * entry["n"]  # answers once; a verdict per wording
    rows = cl.read_run(swept.run_dir).judgements("care")
    assert {(r.variant, r.wording) for r in rows} == {
        ("judge_template=paper", "paper"),
        ("judge_template=brief", "brief"),
    }
    ask = entry["judge"]["asks"]["rating"]
    assert entry["judge"]["wordings"] == ["paper", "brief"]
    # the same numbers as asking both wordings of every response through the task option
    both = _run(
        tmp_path, "care", ["scripted:a"], name="both", task_options={"judge_templates": "paper,brief"}
    )
    ask_both = both.results["tasks"]["care"]["judge"]["asks"]["rating"]
    assert ask["wording_alpha"] == pytest.approx(ask_both["wording_alpha"])
    assert ask["wording_spread"] == pytest.approx(ask_both["wording_spread"])
    per_variant = entry["variants"]
    means = {vid: per_variant[vid]["metrics"]["rating"]["mean"] for vid in per_variant}
    assert means["judge_template=paper"] == pytest.approx(ask["by_wording"]["paper"]["mean"])
    robust = json.loads((swept.run_dir / "robustness.json").read_text())
    assert "judge_template" in json.dumps(robust["tasks"]["care"])


def test_sweeping_the_judge_of_an_unjudged_task_is_an_error(tmp_path: Path):
    from culturelens.sweep import expand

    with pytest.raises(Exception, match="judge_template sweeps the judge of a judged task"):
        cl.run(
            model="fake:hash",
            tasks=["kalahi"],
            data_dir=str(FIX / "kalahi"),
            variants=expand(["judge_template=paper,brief"]),
            out=str(tmp_path / "r"),
            cache=str(tmp_path / "c.sqlite"),
            report=False,
        )
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "culturelens"), "run", "--task", "care", "--data-dir", str(FIX / "care"),
         "--model", "fake:hash", "--vary", "judge_template=long", "--out", str(tmp_path / "x"), "-q"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2 and "judge_template level 'long'" in proc.stderr.strip().splitlines()[-1]
