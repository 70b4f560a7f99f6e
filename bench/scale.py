"""Large runs: a finished 50,000-item run is recognised at once, and memory stays flat with size.

    .venv/bin/python bench/scale.py                  # 1,000 and 50,000 items
    .venv/bin/python bench/scale.py --sizes 1000,5000  # a quick look

With the fake backend (``fake:hash``: no model, so what is measured is culturelens itself) on
synthetic starter-format items (``bench/harness.py``'s), each size is run twice, each time in a
fresh process: first into a fresh run directory and response cache (peak RSS, wall), then again
into the same directory (the run must be recognised as finished and reused, in < 2 s of runner time).
Results go to ``runs/bench/scale.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "runs" / "bench"
HERE = WORK / "scale"
sys.path.insert(0, str(ROOT / "bench"))

from harness import finish, row, write_items  # noqa: E402


def child(items: int, fresh: bool) -> None:
    """One run in this process; prints a JSON line of figures."""
    t_start = time.perf_counter()
    from culturelens.runlog import RunConfig
    from culturelens.runner import Runner

    out, cache = HERE / f"run-{items}", HERE / f"run-{items}.sqlite"
    if fresh:
        shutil.rmtree(out, ignore_errors=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{cache}{suffix}").unlink(missing_ok=True)
    cfg = RunConfig(
        model="fake:hash",
        tasks=["starter"],
        data_dir=str(write_items(HERE / f"items-{items}.jsonl", items)),
        mode="letter",
        out=str(out),
        cache=str(cache),
        n_boot=200,
    )
    t0 = time.perf_counter()
    res = Runner(cfg).run()
    t1 = time.perf_counter()
    print(
        json.dumps(
            {
                "items": items,
                "fresh": fresh,
                "reused": bool(res.timing.get("reused")),
                "reused_by_key": bool(res.timing.get("reused_by_key")),
                "runner_s": t1 - t0,
                "imports_s": t0 - t_start,
                "timing": {k: v for k, v in res.timing.items() if isinstance(v, int | float)},
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def measure(items: int, fresh: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", str(items), *(["--fresh"] if fresh else [])],
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"run of {items} items failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_wall_s"] = wall
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--fresh", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--sizes", default="1000,50000", help="item counts, smallest first")
    args = ap.parse_args()
    if args.child:
        child(args.child, args.fresh)
        return
    sizes = [int(x) for x in args.sizes.split(",")]
    load = os.getloadavg()
    print(
        f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs", flush=True
    )
    out: dict[str, Any] = {"load_before": load, "cpus": os.cpu_count(), "sizes": {}}
    rows = []
    for n in sizes:
        first = measure(n, fresh=True)
        again = measure(n, fresh=False)
        out["sizes"][n] = {"first": first, "again": again}
        print(
            f"{n} items: first run {first['runner_s']:.1f} s, peak RSS {first['peak_rss_mib']:.0f} MiB; "
            f"re-run {'reused' if again['reused'] else 'NOT reused'}"
            f"{' (by its reuse key)' if again['reused_by_key'] else ' (request by request)'} in {again['runner_s']:.2f} s "
            f"(process {again['process_wall_s']:.2f} s), peak RSS {again['peak_rss_mib']:.0f} MiB",
            flush=True,
        )
        ok = again["reused"] and again["runner_s"] < 2.0
        rows.append(
            row(
                f"re-run of a finished {n:,}-item run recognised < 2 s",
                f"{again['runner_s']:.2f} s ({'reused' if again['reused'] else 'recomputed'})",
                f"{again['runner_s'] / 2.0:.2f} of 2 s",
                ok,
            )
        )
    lo, hi = out["sizes"][sizes[0]]["first"], out["sizes"][sizes[-1]]["first"]
    ratio = hi["peak_rss_mib"] / lo["peak_rss_mib"]
    rows.append(
        row(
            f"peak RSS flat {sizes[0]:,} -> {sizes[-1]:,} items (<= 1.2x)",
            f"{lo['peak_rss_mib']:.0f} -> {hi['peak_rss_mib']:.0f} MiB",
            f"{ratio:.2f} <= 1.2",
            ratio <= 1.2,
        )
    )
    finish(out, rows, "scale.json")


if __name__ == "__main__":
    main()
