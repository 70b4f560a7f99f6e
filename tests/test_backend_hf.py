"""transformers backend on the embedded SmolLM2 GGUF (dequantised by transformers), checked against
itself (padding, batching, prefix sharing, the dequantised cache) and against llama.cpp."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gguf")

from culturelens.backends.base import BackendError, load_backend  # noqa: E402
from culturelens.backends.hf import dequantised_dir  # noqa: E402
from culturelens.render import render  # noqa: E402
from culturelens.runner import build_request  # noqa: E402
from culturelens.schema import Message, Mode, Request, Variant  # noqa: E402
from culturelens.tasks.base import get_task  # noqa: E402

pytestmark = pytest.mark.slow

N_ITEMS = 20


@pytest.fixture(scope="module")
def hf():
    backend = load_backend("hf:embedded")
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def llama():
    pytest.importorskip("llama_cpp")
    backend = load_backend("llamacpp:embedded", n_ctx=2048)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def items():
    return get_task("starter").items(limit=N_ITEMS)


def _reqs(backend, items, mode: Mode) -> list[Request]:
    return [build_request(render(it, Variant(), mode), backend) for it in items]


def test_identity_and_template(hf, llama):
    ident = hf.identity()
    assert ident["backend"] == "hf" and ident["dtype"] == "float32"
    assert ident["sha256"] == llama.identity()["sha256"]  # the same GGUF file
    assert hf.chat_template_source == "tokenizer.chat_template"
    msgs = [Message(role="system", content="Be brief."), Message(role="user", content="Name a spice.")]
    assert hf.format(msgs, "Answer:") == llama.format(msgs, "Answer:")
    text = hf.format(msgs, "Answer:")
    assert hf.encode(text) == llama.tokenize(text)


def test_dequantised_cache_reloads_identically(hf):
    cached = dequantised_dir(hf.identity()["sha256"])
    assert (cached / "culturelens.json").exists() and (cached / "config.json").exists()
    again = load_backend("hf:embedded")
    try:
        assert again.loaded_from == str(cached)
        assert again.identity() == hf.identity()
        # the weights are what the cache keeps: bit-identical
        mine, theirs = hf.model.state_dict(), again.model.state_dict()
        assert mine.keys() == theirs.keys()
        assert all(torch.equal(mine[k], theirs[k]) for k in mine)
        # the forward pass: fp32 sums are split across threads as the machine's load allows, so two
        # passes over the same weights may differ in the last digits (6.6e-5 seen under a busy CPU)
        req = Request(
            kind="labels", text=hf.format([Message(role="user", content="Pick A or B.")]), targets=["A", "B"]
        )
        assert again.label_logprobs([req])[0].logprobs == pytest.approx(
            hf.label_logprobs([req])[0].logprobs, abs=1e-3
        )
    finally:
        again.close()


def test_padding_sides_and_batching_agree(hf, items):
    reqs = _reqs(hf, items[:6], Mode.LETTER) + [Request(kind="labels", text="Short.", targets=["A", "B"])]
    alone = [hf.label_logprobs([r])[0].logprobs for r in reqs]
    for side in ("right", "left"):
        hf.padding_side = side
        try:
            batched = [r.logprobs for r in hf.label_logprobs(reqs)]
        finally:
            hf.padding_side = "right"
        for a, b in zip(alone, batched, strict=True):
            assert a == pytest.approx(b, abs=1e-4), side


def test_shared_prefix_equals_separate_forward(hf, items):
    """Letter mode runs a batch's common prefix (system prompt, instructions) once; the answer
    distribution must be the one a full forward of each prompt gives."""
    reqs = _reqs(hf, items[:8], Mode.LETTER)
    encs = [hf.encode(r.text) for r in reqs]
    assert hf._shared_len(encs) >= hf.min_shared_tokens  # the chat template's system turn at least
    hf._prefix_memo = None
    shared = [r.logprobs for r in hf.label_logprobs(reqs)]
    assert hf._prefix_memo is not None  # the shared path ran
    hf.share_prefix = False
    try:
        separate = [r.logprobs for r in hf.label_logprobs(reqs)]
    finally:
        hf.share_prefix = True
    for a, b in zip(shared, separate, strict=True):
        assert a == pytest.approx(b, abs=1e-4)


def test_cloze_prefix_sharing_equals_full_forward(hf, items):
    reqs = _reqs(hf, items[:4], Mode.CLOZE)
    resps = hf.continuation_logprobs(reqs)
    worst = 0.0
    for req, resp in zip(reqs, resps, strict=True):
        ctx = hf.encode(req.text)
        for target, lp, n in zip(req.targets, resp.logprobs, resp.n_tokens, strict=True):
            cont = hf.tok(target, add_special_tokens=False)["input_ids"]
            assert n == len(cont)
            with torch.inference_mode():
                logits = hf.model(input_ids=torch.tensor([ctx + cont])).logits[0].float()
            logp = torch.log_softmax(logits, dim=-1)
            full = sum(float(logp[len(ctx) - 1 + k, cont[k]]) for k in range(len(cont)))
            worst = max(worst, abs(full - lp))
    assert any(n > 1 for r in resps for n in r.n_tokens)
    assert worst < 1e-3


def test_generate_batched_matches_single(hf, items):
    reqs = [r.model_copy(update={"max_tokens": 10}) for r in _reqs(hf, items[:3], Mode.GENERATE)]
    reqs.append(
        Request(kind="generate", text=hf.format([Message(role="user", content="Say hi.")]), max_tokens=4)
    )
    batched = hf.generate(reqs)
    single = [hf.generate([r])[0] for r in reqs]
    assert [r.text for r in batched] == [r.text for r in single]
    for req, resp in zip(reqs, batched, strict=True):
        assert resp.text and "<|im_end|>" not in resp.text
        assert 0 < resp.n_tokens[0] <= req.max_tokens


def test_overflow_raises(hf):
    saved = hf.max_length
    hf.max_length = 64
    try:
        with pytest.raises(BackendError, match="exceeds"):
            hf.label_logprobs([Request(kind="labels", text="tea and rice " * 40, targets=["A"])])
        with pytest.raises(BackendError, match="exceeds"):
            hf.continuation_logprobs([Request(kind="continuations", text="tea " * 50, targets=[" and" * 30])])
    finally:
        hf.max_length = saved


def test_missing_gguf_is_a_backend_error(tmp_path):
    with pytest.raises(BackendError, match="not found"):
        load_backend(f"hf:{tmp_path}#nope.gguf")


def test_agrees_with_llamacpp_letter_mode(hf, llama, items):
    """Q4_1 weights dequantised to fp32 (transformers) vs llama.cpp's quantised kernels: the same
    items should mostly get the same top option; the label log-probs differ by a little."""
    reqs_hf = _reqs(hf, items, Mode.LETTER)
    reqs_ll = _reqs(llama, items, Mode.LETTER)
    assert [r.text for r in reqs_hf] == [r.text for r in reqs_ll]
    a = hf.label_logprobs(reqs_hf)
    b = llama.label_logprobs(reqs_ll)
    agree = sum(
        max(range(len(x.logprobs)), key=x.logprobs.__getitem__)
        == max(range(len(y.logprobs)), key=y.logprobs.__getitem__)
        for x, y in zip(a, b, strict=True)
    ) / len(a)
    diff = max(
        abs(u - v) for x, y in zip(a, b, strict=True) for u, v in zip(x.logprobs, y.logprobs, strict=True)
    )
    print(f"\nhf vs llama.cpp: argmax agreement {agree:.0%} over {len(a)} items, max |dlogprob| {diff:.3f}")
    assert agree >= 0.8
    assert diff < 0.5  # observed ~0.1-0.2 (see report); a template or tokenizer mismatch gives several nats
    assert all(math.isfinite(v) for x in a for v in x.logprobs)


@pytest.mark.parametrize("model", ["default", "hf:embedded"])
def test_a_normal_run_prints_no_third_party_warnings(tmp_path, model):
    """stderr of a normal run carries nothing: no deprecation notices, no library log lines."""
    import os
    import subprocess
    import sys

    for mode in ("letter", "cloze", "generate"):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "culturelens.cli",
                "run",
                "--model",
                model,
                "--limit",
                "2",
                "--mode",
                mode,
                "--cache",
                str(tmp_path / "c.sqlite"),
                "--out",
                str(tmp_path / mode),
                "--no-report",
                "-q",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            env=dict(os.environ),
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stderr.strip() == "", proc.stderr[-2000:]


def test_two_fine_tunes_of_one_model_never_share_an_identity(tmp_path, monkeypatch):
    """Same config, weight files of the same size, different weights (two fine-tunes): the identity,
    which keys the response cache, must differ; the same content in another folder keeps it."""
    from culturelens.backends.hf import local_dir_hash

    monkeypatch.setenv("CULTURELENS_HOME", str(tmp_path / "home"))
    folders = {}
    for name, weights in (("a", b"\x01" * 4096), ("b", b"\x02" * 4096), ("c", b"\x01" * 4096)):
        d = tmp_path / name / "merged"
        d.mkdir(parents=True)
        (d / "config.json").write_text('{"model_type": "llama"}')
        (d / "model.safetensors").write_bytes(weights)
        (d / "tokenizer.json").write_text("{}")
        folders[name] = local_dir_hash(d)
    assert folders["a"] != folders["b"]
    assert folders["a"] == folders["c"]
    # a changed tokenizer is another model too
    (tmp_path / "c" / "merged" / "tokenizer.json").write_text('{"added": 1}')
    assert local_dir_hash(tmp_path / "c" / "merged") != folders["a"]
