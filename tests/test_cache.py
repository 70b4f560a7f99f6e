from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

from culturelens.cache import ResponseCache
from culturelens.schema import Request, Response


def test_roundtrip_and_hits(tmp_path: Path):
    c = ResponseCache(tmp_path / "c.sqlite")
    r = Request(kind="labels", text="hi", targets=["A", "B"])
    k = r.key({"backend": "x", "model": "m"})
    assert c.get_many([k]) == {}
    c.put_many([(k, "m", "labels", Response(logprobs=[-1.0, -2.0], meta={"a": 1}))])
    got = c.get_many([k])[k]
    assert got.logprobs == [-1.0, -2.0] and got.cached and got.meta == {"a": 1}
    assert c.stats()["hits"] == 1 and c.stats()["misses"] == 1


def test_key_covers_model_prompt_mode_and_decoding():
    ident = {"backend": "llamacpp", "sha256": "abc"}
    base = Request(kind="labels", text="p", targets=["A", "B"])
    keys = {
        base.key(ident),
        base.key({"backend": "llamacpp", "sha256": "abd"}),
        Request(kind="labels", text="p ", targets=["A", "B"]).key(ident),
        Request(kind="continuations", text="p", targets=["A", "B"]).key(ident),
        Request(kind="labels", text="p", targets=["1", "2"]).key(ident),
        Request(kind="labels", text="p", targets=["A", "B"], temperature=0.7).key(ident),
        Request(kind="labels", text="p", targets=["A", "B"], max_tokens=5).key(ident),
    }
    assert len(keys) == 7
    assert base.key(ident) == Request(kind="labels", text="p", targets=["A", "B"]).key(dict(ident))


def _writer(path: str, start: int, n: int) -> None:
    c = ResponseCache(path)
    for i in range(start, start + n, 10):
        c.put_many([(f"k{j}", "m", "generate", Response(text=f"t{j}")) for j in range(i, i + 10)])
    c.close()


def test_two_processes_share_one_cache(tmp_path: Path):
    path = str(tmp_path / "shared.sqlite")
    ResponseCache(path).close()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, s, 300)) for s in (0, 150)]  # overlapping keys
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    c = ResponseCache(path)
    assert c.count() == 450
    got = c.get_many([f"k{j}" for j in range(450)])
    assert all(got[f"k{j}"].text == f"t{j}" for j in range(450))
