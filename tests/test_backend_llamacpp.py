"""llama.cpp backend on the embedded SmolLM2 model: the three request kinds, KV-cache prefix reuse,
and context overflow."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("llama_cpp")

from culturelens.backends.base import BackendError, load_backend  # noqa: E402
from culturelens.countries import normalize_country  # noqa: E402
from culturelens.render import render  # noqa: E402
from culturelens.runner import build_request  # noqa: E402
from culturelens.schema import Item, ItemKind, Mode, Request, Variant  # noqa: E402

pytestmark = pytest.mark.slow

# a few everyday-culture items written for this test (starter format, not from any benchmark)
ROWS = [
    (
        "Japan",
        "food",
        "Which soup made from fermented soybean paste is commonly served with a Japanese breakfast?",
        ["Miso soup", "Borscht", "Gazpacho", "Minestrone"],
        0,
    ),
    (
        "Mexico",
        "holidays",
        "Which Mexican celebration in early November honours deceased relatives with altars and marigolds?",
        ["Carnival", "Day of the Dead", "Holi", "Hanukkah"],
        1,
    ),
    (
        "Germany",
        "etiquette",
        "In Germany, what do guests usually say to each other before starting a meal together?",
        ["Salud", "Itadakimasu", "Guten Appetit", "Bon voyage"],
        2,
    ),
    (
        "India",
        "family",
        "At a traditional Hindu wedding in India, the couple walks around which of these together?",
        ["A sacred fire", "A fountain", "A Christmas tree", "A maypole"],
        0,
    ),
    (
        "Brazil",
        "sport",
        "Which sport is by far the most popular to watch and play in Brazil?",
        ["Cricket", "Ice hockey", "Football (soccer)", "Baseball"],
        2,
    ),
]


def _items() -> list[Item]:
    return [
        Item(
            id=f"llamacpp-test-{i}",
            task="test",
            kind=ItemKind.MULTIPLE_CHOICE,
            question=q,
            options=opts,
            correct=[ans],
            country=normalize_country(country),
            topic=topic,
        )
        for i, (country, topic, q, opts, ans) in enumerate(ROWS)
    ]


@pytest.fixture(scope="module")
def llama():
    backend = load_backend("llamacpp:embedded", n_ctx=1024)
    yield backend
    backend.close()


def _requests(backend, mode: Mode) -> list[Request]:
    return [build_request(render(item, Variant(), mode), backend) for item in _items()]


def _log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max()
    return x - (m + np.log(np.exp(x - m).sum()))


def _scratch_continuation(backend, context: str, continuation: str) -> float:
    """Score context + continuation with an empty KV cache: no prefix reuse at all."""
    ctx = backend.tokenize(context)
    cont = backend.tokenize(continuation, add_bos=False)
    backend.llm._ctx.kv_cache_seq_rm(-1, 0, -1)
    backend.llm.n_tokens = 0
    toks = ctx + cont
    positions = list(range(len(ctx) - 1, len(toks) - 1))
    logits = backend._decode(toks, positions)
    return float(sum(_log_softmax(logits[p])[toks[p + 1]] for p in positions))


def test_letter_mode(llama):
    reqs = _requests(llama, Mode.LETTER)
    assert all(r.kind == "labels" and r.targets == ["A", "B", "C", "D"] for r in reqs)
    assert reqs[0].text.startswith("<|im_start|>") and reqs[0].text.endswith("<|im_start|>assistant\nAnswer:")
    resps = llama.run(reqs)
    for resp in resps:
        assert len(resp.logprobs) == 4
        assert all(v <= 0 for v in resp.logprobs)
        assert sum(math.exp(v) for v in resp.logprobs) <= 1.0 + 1e-6
        assert len(set(resp.logprobs)) == 4  # the labels really are distinct tokens
    # same answers when the requests come in another order (KV prefix reuse must not leak state)
    again = llama.run(reqs[::-1])[::-1]
    for a, b in zip(resps, again, strict=True):
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)


def test_cloze_prefix_sharing_equals_scratch(llama):
    reqs = _requests(llama, Mode.CLOZE)
    assert reqs[0].kind == "continuations" and reqs[0].targets[0] == " Miso soup"
    resps = llama.run(reqs)
    worst = 0.0
    for req, resp in zip(reqs, resps, strict=True):
        assert resp.n_tokens == [len(llama.tokenize(t, add_bos=False)) for t in req.targets]
        assert max(resp.n_tokens) > 1  # multi-token options exercise the shared-prefix path
        for target, lp in zip(req.targets, resp.logprobs, strict=True):
            worst = max(worst, abs(lp - _scratch_continuation(llama, req.text, target)))
    assert worst < 1e-3


def test_generate(llama):
    reqs = [r.model_copy(update={"max_tokens": 12}) for r in _requests(llama, Mode.GENERATE)[:3]]
    resps = llama.run(reqs)
    for resp in resps:
        assert isinstance(resp.text, str) and resp.text.strip()
        assert 0 < resp.n_tokens[0] <= 12
    assert [r.text for r in llama.run(reqs)] == [r.text for r in resps]  # greedy is deterministic


def test_mixed_batch_keeps_order(llama):
    reqs = _requests(llama, Mode.LETTER)[:2] + _requests(llama, Mode.CLOZE)[:2]
    mixed = [reqs[0], reqs[2], reqs[1], reqs[3]]
    resps = llama.run(mixed)
    assert [len(r.logprobs) for r in resps] == [4, 4, 4, 4]
    assert resps[1].n_tokens is not None and resps[0].n_tokens is None


def test_overflow_raises_and_backend_recovers(llama):
    long_text = "tea and rice " * 600  # ~1800 tokens > n_ctx=1024
    with pytest.raises(BackendError, match="n_ctx"):
        llama.label_logprobs([Request(kind="labels", text=long_text, targets=["A", "B"])])
    # the context fits but one continuation pushes it past n_ctx
    ctx = "tea and rice " * 320
    assert len(llama.tokenize(ctx)) < 1024
    with pytest.raises(BackendError, match="n_ctx"):
        llama.continuation_logprobs(
            [Request(kind="continuations", text=ctx, targets=[" short", " and" * 200])]
        )
    [resp] = llama.run(_requests(llama, Mode.LETTER)[:1])
    assert len(resp.logprobs) == 4
