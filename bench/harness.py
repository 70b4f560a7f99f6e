"""Harness overhead at scale: culturelens through the openai backend against a local server.

    .venv/bin/python bench/harness.py                 # zero-latency throughput + 200 ms scaling
    .venv/bin/python bench/harness.py --quick         # smaller runs (a smoke test of the bench)
    .venv/bin/python bench/harness.py --profile       # also a cProfile of the zero-latency client

A minimal OpenAI-compatible server (asyncio, HTTP/1.1 keep-alive, 127.0.0.1 only, its own process)
answers every ``/chat/completions`` label request with top log-probs for A-D (the ranking depends on
the request body, so answers differ per prompt), either at once or after ``--delay`` seconds. Each
measured culturelens run is a fresh process with a fresh response cache and run directory, so peak
RSS is per run. Figures:

* requests/s: computed requests / the runner's scoring time (cache lookups, HTTP, parsing, caching);
* culturelens CPU share: CPU seconds of the culturelens process / its wall seconds over the compute
  phase (1.0: the client is the bottleneck; the server's CPU share is shown beside it);
* memory flatness: RSS when the compute phase ends / RSS when a quarter of it is done;
* 200 ms server: requests/s at several concurrency levels vs the ideal concurrency / 0.2.

Results go to ``runs/bench/harness.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import time
import zlib
from itertools import permutations
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "runs" / "bench"
HERE = WORK / "harness"

# --- the server --------------------------------------------------------------------------------------


def _answers() -> list[bytes]:
    """One chat answer per ranking of A-D (24), as complete HTTP responses."""
    out = []
    for perm in permutations("ABCD"):
        lps = [-0.4, -1.6, -2.3, -3.1]
        top = [{"token": f" {t}", "logprob": v} for t, v in zip(perm, lps, strict=True)]
        top.append({"token": "The", "logprob": -4.0})
        body = json.dumps(
            {
                "id": "x",
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": perm[0]},
                        "logprobs": {
                            "content": [{"token": top[0]["token"], "logprob": -0.4, "top_logprobs": top}]
                        },
                        "finish_reason": "length",
                    }
                ],
                "usage": {"prompt_tokens": 50, "completion_tokens": 1},
            }
        ).encode()
        head = (
            f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: keep-alive\r\n\r\n"
        ).encode()
        out.append(head + body)
    return out


def serve(delay: float, port_file: Path) -> None:
    """Run the server until killed; writes its port to ``port_file``. ``GET /stats``: requests
    answered and the server's CPU seconds."""
    answers = _answers()
    stats = {"requests": 0, "by_port": 0}

    class Proto(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.t = transport
            self.buf = bytearray()

        def data_received(self, data: bytes) -> None:
            self.buf += data
            while True:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(self.buf[:end]).lower()
                i = head.find(b"content-length:")
                n = (
                    int(head[i + 15 : head.find(b"\r\n", i) if head.find(b"\r\n", i) > 0 else None])
                    if i >= 0
                    else 0
                )
                if len(self.buf) < end + 4 + n:
                    return
                body = bytes(self.buf[end + 4 : end + 4 + n])
                del self.buf[: end + 4 + n]
                if head.startswith(b"get /stats"):
                    cpu = resource.getrusage(resource.RUSAGE_SELF)
                    data_ = json.dumps({**stats, "cpu_s": cpu.ru_utime + cpu.ru_stime}).encode()
                    self.t.write(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                        + str(len(data_)).encode()
                        + b"\r\n\r\n"
                        + data_
                    )
                    continue
                stats["requests"] += 1
                resp = answers[zlib.crc32(body) % len(answers)]
                if delay > 0:
                    asyncio.get_running_loop().call_later(delay, self._write, resp)
                else:
                    self.t.write(resp)

        def _write(self, resp: bytes) -> None:
            if not self.t.is_closing():
                self.t.write(resp)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        srv = await loop.create_server(Proto, "127.0.0.1", 0, backlog=4096)
        port = srv.sockets[0].getsockname()[1]
        port_file.write_text(str(port))
        await srv.serve_forever()

    asyncio.run(main())


class Server:
    """The server in its own process (so its CPU never counts as culturelens')."""

    def __init__(self, delay: float = 0.0):
        HERE.mkdir(parents=True, exist_ok=True)
        port_file = HERE / f"port-{os.getpid()}-{delay}"
        port_file.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", "--delay", str(delay), "--port-file", str(port_file)]
        )
        t0 = time.time()
        while not port_file.exists() or not port_file.read_text():
            if time.time() - t0 > 30 or self.proc.poll() is not None:
                raise SystemExit("the bench server did not start")
            time.sleep(0.02)
        self.port = int(port_file.read_text())
        port_file.unlink()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.delay = delay

    def stats(self) -> dict[str, Any]:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats", timeout=10) as r:
            return json.loads(r.read())

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


# --- items and one measured run (a child process) ----------------------------------------------------

COUNTRIES = ["Japan", "France", "Brazil", "India", "Germany", "Nigeria", "Mexico", "Indonesia"]


def write_items(path: Path, n: int) -> Path:
    """``n`` synthetic starter-format multiple-choice rows (unique ids and questions)."""
    if path.exists() and sum(1 for _ in path.open()) == n:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            c = COUNTRIES[i % len(COUNTRIES)]
            row = {
                "id": f"s-{i}",
                "kind": "multiple_choice",
                "country": c,
                "topic": ["food", "holidays", "sport", "education"][i % 4],
                "question": f"In {c}, which of these is most usual in everyday situation number {i}?",
                "options": [f"Option {i}-a", f"Option {i}-b", f"Option {i}-c", f"Option {i}-d"],
                "answer": i % 4,
                "rationale": "synthetic",
            }
            fh.write(json.dumps(row) + "\n")
    return path


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _samples_digest(run_dir: Path) -> str:
    """What the run answered and scored, item by item (to show two runs are the same run)."""
    import hashlib

    h = hashlib.sha256()
    for line in (run_dir / "samples.jsonl").read_text().splitlines():
        r = json.loads(line)
        h.update(json.dumps([r["item_id"], r["variant"], r["response"], r["metrics"]]).encode())
    return h.hexdigest()


def client(args: argparse.Namespace) -> None:
    """One culturelens run (in this process); prints a JSON line of figures."""
    from culturelens.runlog import RunConfig
    from culturelens.runner import Runner

    name = f"c{args.concurrency}-d{args.delay}-n{args.items}-{args.executor.replace(':', '_')}{args.workers}"
    out, cache = HERE / "runs" / name, HERE / "runs" / f"{name}.sqlite"
    shutil.rmtree(out, ignore_errors=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{cache}{suffix}").unlink(missing_ok=True)
    cfg = RunConfig(
        model=f"openai:bench@{args.url}",
        tasks=["starter"],
        data_dir=str(write_items(HERE / f"items-{args.items}.jsonl", args.items)),
        mode="letter",
        out=str(out),
        cache=str(cache),
        n_boot=100,
        batch_size=args.batch_size,
        backend_options={"concurrency": args.concurrency, "logprobs": "require", "timeout": 60},
        executor=args.executor,
        workers=args.workers,
    )
    marks: dict[str, Any] = {}

    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    def progress(stage: str, done: int, total: int) -> None:
        if stage != "compute":
            return
        if "t0" not in marks:
            marks.update(t0=time.perf_counter(), cpu0=cpu(), rss0=_rss_mib())
        if "rss_q" not in marks and total and done >= total / 4:
            marks["rss_q"] = _rss_mib()
        if total and done >= total:
            marks.update(t1=time.perf_counter(), cpu1=cpu(), rss1=_rss_mib())

    prof = None
    if args.profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    t0 = time.perf_counter()
    res = Runner(cfg, progress=progress).run()
    wall = time.perf_counter() - t0
    if prof is not None:
        import io
        import pstats

        prof.disable()
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(35)
        pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats("culturelens", 40)
        (WORK / "harness-profile.txt").write_text(s.getvalue())
    tm = res.timing
    phase = marks.get("t1", t0) - marks.get("t0", t0)
    print(
        json.dumps(
            {
                "items": args.items,
                "concurrency": args.concurrency,
                "batch_size": args.batch_size,
                "delay_s": args.delay,
                "computed": tm["computed"],
                "scoring_s": tm["scoring_s"],
                "wall_s": wall,
                "req_per_s": tm["computed"] / max(tm["scoring_s"], 1e-9),
                "compute_phase_s": phase,
                "client_cpu_s": marks.get("cpu1", 0) - marks.get("cpu0", 0),
                "client_cpu_share": (marks.get("cpu1", 0) - marks.get("cpu0", 0)) / max(phase, 1e-9),
                "rss_quarter_mib": marks.get("rss_q"),
                "rss_end_mib": marks.get("rss1"),
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "metrics": res.results["tasks"]["starter"].get("metrics"),
                "samples_sha256": _samples_digest(out),
            }
        )
    )


def measure(
    server: Server | list[Server],
    items: int,
    concurrency: int,
    batch_size: int,
    profile: bool = False,
    executor: str = "local",
    workers: int = 1,
) -> dict:
    servers = server if isinstance(server, list) else [server]
    url = ",".join(s.url for s in servers)
    cmd = [sys.executable, __file__, "--client", "--url", url, "--items", str(items)]
    cmd += ["--concurrency", str(concurrency), "--batch-size", str(batch_size)]
    cmd += ["--delay", str(servers[0].delay)] + (["--profile"] if profile else [])
    cmd += ["--executor", executor, "--workers", str(workers)]
    before = [s.stats() for s in servers]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"bench client failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    after = [s.stats() for s in servers]
    out["server_requests"] = sum(a["requests"] - b["requests"] for a, b in zip(after, before, strict=True))
    out["server_cpu_s"] = sum(a["cpu_s"] - b["cpu_s"] for a, b in zip(after, before, strict=True))
    out["server_cpu_share"] = out["server_cpu_s"] / max(out["compute_phase_s"], 1e-9)
    return out


def ray_scale_out(rows: list[dict[str, Any]], quick: bool, bs: int) -> dict[str, Any]:
    """Two 200 ms endpoints: one process with both (512 in flight) vs ``--executor ray --workers 2``
    (each worker 256 in flight on its own endpoint); the same run either way (samples digest)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        rows.append(row("ray executor: 2 workers vs one process", "ray not installed", "-", None))
        return {}
    c, waves = 256, 4 if quick else 20
    servers = [Server(0.2), Server(0.2)]
    try:
        one = measure(servers, c * 2 * waves, 2 * c, bs)
        two = measure(servers, c * 2 * waves, c, bs, executor="ray", workers=2)
    finally:
        for s in servers:
            s.close()
    ideal = 2 * c / 0.2
    same = one["samples_sha256"] == two["samples_sha256"]
    for name, m in (("one process, both endpoints, 512 in flight", one), ("ray, 2 workers x 256", two)):
        print(f"200 ms x2 endpoints, {name}: {m['req_per_s']:.0f} req/s (ideal {ideal:.0f})", flush=True)
    rows.append(
        row(
            "ray executor, 2 workers, two 200 ms endpoints: results identical to one process",
            "identical" if same else "DIFFERENT",
            f"{one['computed']} requests",
            same,
        )
    )
    rows.append(
        row(
            "ray executor, 2 workers: req/s vs one process (both vs ideal)",
            f"{two['req_per_s']:,.0f} vs {one['req_per_s']:,.0f} req/s",
            f"{two['req_per_s'] / one['req_per_s']:.2f}x ({two['req_per_s'] / ideal:.2f} / {one['req_per_s'] / ideal:.2f} of {ideal:.0f})",
            None,
        )
    )
    return {"one_process": one, "ray_2_workers": two, "ideal_req_per_s": ideal, "identical": same}


# --- the report --------------------------------------------------------------------------------------


def row(target: str, measured: str, ratio: str, met: bool | None) -> dict[str, Any]:
    return {"target": target, "measured": measured, "ratio": ratio, "met": met}


def print_table(rows: list[dict[str, Any]]) -> None:
    w = [
        max(
            len(str(r[k]))
            for r in [*rows, {"target": "target", "measured": "measured", "ratio": "ratio / threshold"}]
        )
        for k in ("target", "measured", "ratio")
    ]
    print(f"{'target':<{w[0]}}  {'measured':<{w[1]}}  {'ratio / threshold':<{w[2]}}  met")
    for r in rows:
        met = "-" if r["met"] is None else ("met" if r["met"] else "NOT MET")
        print(f"{r['target']:<{w[0]}}  {r['measured']:<{w[1]}}  {r['ratio']:<{w[2]}}  {met}")


def finish(out: dict[str, Any], rows: list[dict[str, Any]], name: str) -> None:
    """Print the target table and the load after, and write ``out`` (with the rows) to ``WORK/name``."""
    out["rows"] = rows
    out["load_after"] = os.getloadavg()
    print()
    print_table(rows)
    print(f"load average after: {out['load_after'][0]:.2f}")
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / name).write_text(json.dumps(out, indent=1))
    print(f"-> {WORK / name}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port-file", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--delay", type=float, default=0.0, help=argparse.SUPPRESS)
    ap.add_argument("--items", type=int, default=20000, help="requests of the zero-latency run")
    ap.add_argument("--concurrency", type=int, default=256, help="requests in flight (zero latency)")
    ap.add_argument("--batch-size", type=int, default=0, help="runner batch size (0: the default, 16)")
    ap.add_argument(
        "--levels", default="16,64,256", help="concurrency levels against the 200 ms server ('': none)"
    )
    ap.add_argument(
        "--waves", type=int, default=10, help="requests per level against the 200 ms server, in waves"
    )
    ap.add_argument("--executor", default="local", help=argparse.SUPPRESS)
    ap.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--skip-ray", action="store_true", help="leave out the Ray executor figures")
    ap.add_argument("--quick", action="store_true", help="small runs: a smoke test of the bench")
    ap.add_argument("--profile", action="store_true", help="cProfile the zero-latency run")
    args = ap.parse_args()
    if args.serve:
        serve(args.delay, args.port_file)
        return
    if args.client:
        if args.batch_size <= 0:
            args.batch_size = 16
        client(args)
        return

    n = 2000 if args.quick else args.items
    bs = args.batch_size or 16
    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    load = os.getloadavg()
    print(
        f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs", flush=True
    )
    out: dict[str, Any] = {"load_before": load, "cpus": os.cpu_count(), "quick": args.quick}
    rows: list[dict[str, Any]] = []

    fast = Server(0.0)
    try:
        small = measure(fast, max(n // 4, 500), args.concurrency, bs)
        big = measure(fast, n, args.concurrency, bs, profile=args.profile)
    finally:
        fast.close()
    out["zero_latency"] = {"small": small, "big": big}
    print(f"zero latency, {n} requests, concurrency {args.concurrency}: {json.dumps(big)}", flush=True)
    rps = big["req_per_s"]
    rows.append(
        row("zero-latency req/s >= 2000", f"{rps:,.0f} req/s", f"{rps / 2000:.2f}x of 2000", rps >= 2000)
    )
    rows.append(
        row(
            "culturelens CPU share of wall (server share)",
            f"{big['client_cpu_share']:.0%} ({big['server_cpu_share']:.0%})",
            "-",
            None,
        )
    )
    flat = big["rss_end_mib"] / big["rss_quarter_mib"]
    rows.append(
        row(
            "memory flat during compute (end/quarter <= 1.2)",
            f"{big['rss_quarter_mib']:.0f} -> {big['rss_end_mib']:.0f} MiB",
            f"{flat:.2f} <= 1.2",
            flat <= 1.2,
        )
    )
    peak = big["peak_rss_mib"] / small["peak_rss_mib"]
    rows.append(
        row(
            f"peak RSS {small['items']} -> {n} requests (<= 1.2x)",
            f"{small['peak_rss_mib']:.0f} -> {big['peak_rss_mib']:.0f} MiB",
            f"{peak:.2f} <= 1.2",
            peak <= 1.2,
        )
    )

    slow = Server(0.2)
    scaling = []
    # every level for ``--waves`` waves of requests; the highest also for 40 waves, where the start of a
    # run (new connections, the first batch's synchronised wave) weighs less: the steady state
    plan = [(c, 4 if args.quick else args.waves) for c in levels]
    if levels and not args.quick and args.waves < 40:
        plan.append((max(levels), 40))
    try:
        for c, waves in plan:
            m = measure(slow, c * waves, c, bs)
            ideal = c / 0.2
            m["ideal_req_per_s"] = ideal
            m["waves"] = waves
            scaling.append(m)
            print(
                f"200 ms, concurrency {c}, {waves} waves: {m['req_per_s']:.0f} req/s (ideal {ideal:.0f})",
                flush=True,
            )
            r = m["req_per_s"] / ideal
            rows.append(
                row(
                    f"200 ms server, concurrency {c}, {c * waves} requests: req/s vs {ideal:.0f} ideal",
                    f"{m['req_per_s']:,.0f} req/s",
                    f"{r:.2f} >= 0.8",
                    r >= 0.8,
                )
            )
    finally:
        slow.close()
    out["delay_200ms"] = scaling
    if not args.skip_ray:
        out["ray"] = ray_scale_out(rows, args.quick, bs)
    finish(out, rows, "harness.json")


if __name__ == "__main__":
    main()
