"""opinions' paper protocol on the Randomness, Not Representation steerability tables agrees with the
official code (ariba-k/llm-cultural-alignment-evaluation @ 7593904).

The fixtures were made outside the repository by running the official, unmodified functions
(``run_steerability.process_question`` with the AlKhamissi prompt its ``run_experiment`` builds, then
``analyze_steerability.process_results`` and ``calculate_distances``) on scripted replies for the
17 countries x 180 questions. They carry the inputs (reply patterns and which reply each prompt got)
and the official outputs: a digest of every prompt per country, the letter read from every reply, the
0-1 value of every answer, and the distance ratio. ``*_in_range`` has replies whose letter is always an
option; ``*_quirks`` adds letters past the last option (the official value then exceeds 1), lower case,
brackets, empty replies and non-Latin letters.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from culturelens.api import steer
from culturelens.backends.fake import FakeBackend
from culturelens.countries import normalize_country
from culturelens.schema import Mode, Request, Response, Variant
from culturelens.tasks.base import get_task
from culturelens.tasks.opinions import rnr_letter

FIXTURES = Path(__file__).parent / "fixtures" / "official"


def _fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"rnr_steerability_{name}.json").read_text(encoding="utf-8"))


def _reply(fx: dict, country: str, k: int) -> str:
    return fx["patterns"][fx["responses"][country][k]]


@pytest.fixture(scope="module")
def rnr_task():
    from tests.conftest import SHARED

    if not SHARED.exists():
        pytest.skip("../shared/datasets not present")
    return get_task("opinions", data_dir=str(SHARED / "randomness_not_representation"))


@pytest.mark.parametrize("name", ["in_range", "quirks"])
def test_prompts_letters_and_values_equal_the_official_code(rnr_task, name):
    fx = _fixture(name)
    items = {it.metadata["column"]: it for it in rnr_task.items()}
    value_diff = letter_diff = n = 0
    for country in fx["countries"]:
        variant = Variant(persona=f"alkhamissi:{normalize_country(country).name}")
        digests, letters = [], []
        for k, col in enumerate(fx["columns"]):
            item = items[col]
            prompt = rnr_task.render(item, variant, Mode.LETTER)
            assert prompt.mode is Mode.GENERATE and [m.role for m in prompt.messages] == ["user"]
            digests.append(hashlib.sha256(prompt.messages[0].content.encode()).hexdigest())
            score = rnr_task.score(item, prompt, Response(text=_reply(fx, country, k)))
            letters.append(rnr_letter(_reply(fx, country, k))[0])
            value_diff += abs(score.metrics["rnr_value"] - fx["official_values"][country][k]) > 1e-9
            n += 1
        assert hashlib.sha256("".join(digests).encode()).hexdigest() == fx["prompt_sha256"][country], country
        letter_diff += "".join(letters) != fx["official_letters"][country]
    assert n == 17 * 180
    assert (value_diff, letter_diff) == (0, 0)


class _Scripted(FakeBackend):
    """Answers each prompt with the reply the fixture gave it (unknown prompts: 'A')."""

    def __init__(self, replies: dict[str, str]):
        super().__init__("first")
        self.replies = replies

    def identity(self):
        return {"backend": "fake", "model": "rnr-scripted"}

    def generate(self, batch: list[Request]) -> list[Response]:
        return [Response(text=self.replies.get(r.text, "A")) for r in batch]


def _scripted_backend(task, fx: dict, countries: list[str]) -> _Scripted:
    items = {it.metadata["column"]: it for it in task.items()}
    backend = _Scripted({})
    for country in countries:
        variant = Variant(persona=f"alkhamissi:{normalize_country(country).name}")
        for k, col in enumerate(fx["columns"]):
            prompt = task.render(items[col], variant, Mode.LETTER)
            backend.replies[backend.format(prompt.messages, prompt.assistant_prefix)] = _reply(fx, country, k)
    return backend


def test_distance_ratio_equals_the_official_code(rnr_task, tmp_path):
    """The steering report's spread ratio (mean pairwise distance of the steered answer vectors over
    the countries' own) through the whole pipeline: runner, run log, alignment analysis."""
    fx = _fixture("in_range")
    main = fx["countries"][:14]
    backend = _scripted_backend(rnr_task, fx, main)
    done, _ = steer(
        "opinions",
        main,
        styles=("alkhamissi",),
        vary=(),
        backend=backend,
        data_dir=str(rnr_task.data_dir),
        out=str(tmp_path / "run"),
        cache=str(tmp_path / "cache.sqlite"),
        report=False,
        n_boot=50,
    )
    split = done.alignment["tasks"]["opinions"]["steering"]["styles"]["alkhamissi"]["splits"]["all"]
    assert split["questions"] == 180
    assert split["spread_ratio"] == pytest.approx(fx["official_ratio_main14"], abs=1e-9)
    # with the held-out countries the official statistic is NaN (China and Kenya lack answers); ours
    # is then computed on the questions every target has
    assert fx["official_ratio_all17"] is None


def test_out_of_range_letters_are_counted_not_placed(rnr_task):
    """A letter past the last option: the official value (above 1) is kept as rnr_value, but the
    answer has no place on the scale, so it is invalid for the distribution analyses and counted."""
    item = next(it for it in rnr_task.items() if len(it.options) == 2)
    prompt = rnr_task.render(item, Variant(), Mode.LETTER)
    s = rnr_task.score(item, prompt, Response(text="D"))
    assert not s.valid and s.metrics["rnr_out_of_range"] == 1.0 and s.metrics["rnr_value"] == 3.0
    s = rnr_task.score(item, prompt, Response(text="(B)"))
    assert s.valid and s.prediction == 0 and s.metrics["rnr_fallback_a"] == 1.0
    s = rnr_task.score(item, prompt, Response(text="  B, because"))
    assert s.valid and s.prediction == 1 and s.metrics["expected"] == 1.0


def test_distribution_protocol_is_still_available(rnr_task):
    task = get_task("opinions", data_dir=str(rnr_task.data_dir), protocol="distribution")
    item = task.items()[0]
    prompt = task.render(item, Variant(), Mode.LETTER)
    assert prompt.mode is Mode.LETTER and "If I had to select one of the options" in prompt.assistant_prefix
