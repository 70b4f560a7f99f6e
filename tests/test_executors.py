"""``--executor ray``: a run's backend calls spread over Ray workers, on a local Ray cluster.

The run must be the same run as in one process (same responses, samples and results), with the same
cache semantics (the driver's cache; cached requests never reach a worker; a run started under Ray
finishes locally and the other way round), keep every answer a failing worker did return, and refuse
workers that load another model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")

from faultserver import FaultServer  # noqa: E402

from culturelens import executors  # noqa: E402
from culturelens.backends.base import BackendError, load_backend  # noqa: E402
from culturelens.executors import RayPool, parse_executor, replica_specs  # noqa: E402
from culturelens.runner import RunConfig, Runner  # noqa: E402
from culturelens.schema import Variant  # noqa: E402

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def cluster():
    """One local Ray cluster for the module (a pool joins a running cluster and leaves it running)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def _cfg(tmp_path: Path, name: str, cache: str = "cache.sqlite", **kw: Any) -> RunConfig:
    kw.setdefault("model", "fake:hash")
    kw.setdefault("tasks", ["starter"])
    kw.setdefault("limit", 30)
    kw.setdefault("variants", [Variant(), Variant(option_order="reversed")])
    return RunConfig(out=str(tmp_path / name), cache=str(tmp_path / cache), batch_size=4, **kw)


def _samples(run_dir: Path) -> list[tuple]:
    rows = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    return [(r["task"], r["item_id"], r["variant"], r["response"], r["metrics"]) for r in rows]


def test_executor_and_replica_specs_parse():
    assert parse_executor("local") == ("local", None)
    assert parse_executor("ray") == ("ray", None)
    assert parse_executor("ray:auto") == ("ray", "auto")
    assert parse_executor("ray:ray://head:10001") == ("ray", "ray://head:10001")
    for bad in ("dask", "ray:", "local:x"):
        with pytest.raises(ValueError, match="executor"):
            parse_executor(bad)
    assert replica_specs("fake:hash", 3) == ["fake:hash"] * 3
    assert replica_specs("openai:m@http://a/v1", 2) == ["openai:m@http://a/v1"] * 2
    # a pool of endpoints is dealt out; credentials and an '@' in the model name survive
    urls = ["http://u:p@a:1/v1", "http://b:2/v1", "http://c:3/v1"]
    assert replica_specs(f"openai:org@m@{','.join(urls)}", 2) == [
        f"openai:org@m@{urls[0]},{urls[2]}",
        f"openai:org@m@{urls[1]}",
    ]
    assert replica_specs("openai:m@http://a/v1?x=1,2, http://b/v1", 2) == [
        "openai:m@http://a/v1?x=1,2",
        "openai:m@http://b/v1",
    ]
    assert replica_specs(f"openai:m@{urls[1]},{urls[2]}", 3) == [
        f"openai:m@{urls[1]}",
        f"openai:m@{urls[2]}",
        f"openai:m@{urls[1]}",
    ]


def test_workers_without_ray_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="need --executor ray"):
        Runner(_cfg(tmp_path, "x", workers=2)).run()
    with pytest.raises(ValueError, match="executor 'dask'"):
        Runner(_cfg(tmp_path, "y", executor="dask")).run()


# before the module cluster starts
def test_the_pool_starts_and_stops_its_own_cluster(tmp_path):
    assert not ray.is_initialized()
    res = Runner(_cfg(tmp_path, "own", executor="ray", workers=1, limit=4)).run()
    assert res.timing["computed"] == 8
    assert not ray.is_initialized()


def test_a_ray_run_is_the_local_run(cluster, tmp_path):
    local = Runner(_cfg(tmp_path, "local", cache="local.sqlite")).run()
    spread = Runner(_cfg(tmp_path, "ray", cache="ray.sqlite", executor="ray", workers=2)).run()
    assert spread.timing["computed"] == local.timing["computed"] == 60
    assert _samples(spread.run_dir) == _samples(local.run_dir)
    assert spread.results == local.results
    # the executor is not part of what the run is: same run id, same reuse key
    cfg = _cfg(tmp_path, "x", executor="ray", workers=2)
    assert cfg.run_id({"m": 1}) == _cfg(tmp_path, "x").run_id({"m": 1})


def test_the_cache_is_the_drivers(cluster, tmp_path, monkeypatch):
    first = Runner(_cfg(tmp_path, "a", executor="ray", workers=2)).run()
    assert first.timing["computed"] == 60
    # finished locally from the cache Ray filled: nothing computed
    again = Runner(_cfg(tmp_path, "b", limit=40)).run()
    assert again.timing["computed"] == 20 and again.timing["cache_hits"] == 60
    # and the other way round: a Ray run whose answers are all cached starts no worker
    started: list[int] = []
    monkeypatch.setattr(RayPool, "_ensure", lambda self: started.append(1))
    cached = Runner(_cfg(tmp_path, "c", limit=40, executor="ray", workers=2)).run()
    assert cached.timing["computed"] == 0 and not started
    assert _samples(cached.run_dir) == _samples(again.run_dir)


def test_a_failing_worker_loses_no_answer(cluster, tmp_path):
    # the first item's requests fail on whichever worker gets them; the other worker's answers and the
    # failing worker's earlier batches are cached before the run stops
    cfg = _cfg(tmp_path, "fail", executor="ray", workers=2, backend_options={"fail_on": "Japan"})
    with pytest.raises(BackendError, match="fail on 'Japan'"):
        Runner(cfg).run()
    done = Runner(_cfg(tmp_path, "redo")).run()
    kept = done.timing["cache_hits"]
    assert 0 < kept < 60 and done.timing["computed"] == 60 - kept
    clean = Runner(_cfg(tmp_path, "clean", cache="clean.sqlite")).run()
    assert _samples(done.run_dir) == _samples(clean.run_dir)


def test_a_worker_with_another_model_is_refused(cluster):
    pool = RayPool(load_backend("fake:first"), "fake:last", {}, workers=2, batch_size=4)
    try:
        with pytest.raises(BackendError, match="worker 0 loaded another model"):
            pool._ensure()
    finally:
        pool.close()
    bad = RayPool(load_backend("fake:first"), "fake:first", {"no_such": 1}, workers=1, batch_size=4)
    with pytest.raises(BackendError, match="could not load the model.*no_such"):
        bad._ensure()


def test_an_endpoint_pool_is_shared_out_over_workers(cluster, tmp_path):
    with FaultServer() as a, FaultServer() as b, FaultServer() as c:
        model = f"openai:tiny-model@{a.url},{b.url}"
        spread = Runner(
            _cfg(tmp_path, "spread", cache="s.sqlite", model=model, executor="ray", workers=2)
        ).run()
        assert a.requests and b.requests and len(a.requests) + len(b.requests) == 60
        one = Runner(_cfg(tmp_path, "one", cache="o.sqlite", model=f"openai:tiny-model@{c.url}")).run()
    # the same answers from any endpoint; the cache keys name both endpoints, as in one process
    assert [s[1:] for s in _samples(spread.run_dir)] == [s[1:] for s in _samples(one.run_dir)]
    header = json.loads((spread.run_dir / "config.json").read_text())
    assert header["backend"]["identity"]["base_url"] == ",".join(sorted([a.url, b.url]))


def test_the_embedded_model_under_ray_gives_the_local_answers(tmp_path, cluster):
    """Two llama.cpp replicas of the embedded model, each in its own worker process."""
    kw: dict[str, Any] = {"model": "default", "limit": 12, "variants": [Variant()]}
    local = Runner(_cfg(tmp_path, "local", cache="l.sqlite", **kw)).run()
    spread = Runner(_cfg(tmp_path, "ray", cache="r.sqlite", executor="ray", workers=2, **kw)).run()
    assert spread.timing["computed"] == 12
    assert _samples(spread.run_dir) == _samples(local.run_dir)
    assert spread.results == local.results


def test_cli_executor_errors(tmp_path):
    from typer.testing import CliRunner

    from culturelens.cli import app

    r = CliRunner().invoke(
        app, ["run", "--model", "fake:hash", "--workers", "2", "--out", str(tmp_path / "r")]
    )
    assert r.exit_code == 2 and "need --executor ray" in r.output
    r = CliRunner().invoke(app, ["run", "--model", "fake:hash", "--executor", "spark"])
    assert r.exit_code == 2 and "--executor" in r.output
    assert not (tmp_path / "r").exists()
    assert executors.wrap(load_backend("fake:hash"), "local", "fake:hash", {}, 1, 4).name == "fake"
