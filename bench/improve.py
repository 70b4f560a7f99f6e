"""The whole `culturelens improve` loop, timed: before sweep, data, LoRA fine-tuning, after sweep,
transfer benchmark and control set, on the embedded SmolLM2 through the hf backend.

    .venv/bin/python bench/improve.py                         # starter, DPO, 60 steps, the full sweep
    .venv/bin/python bench/improve.py --steps 12 --countries Japan,Brazil,Kenya,India --holdout Kenya
    .venv/bin/python bench/improve.py --quick                 # what `make bench` runs: a few minutes

Runs the command line in a fresh process (offline: HF_HUB_OFFLINE=1) with its own response cache
unless --cache is given, then prints the wall time of the loop and of each stage, the training loss,
and the verdicts from ``improve.json``. Everything lands in ``runs/bench/improve/``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="starter")
    ap.add_argument("--method", default="dpo", choices=["dpo", "orpo", "sft"])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--countries", default=None, help="comma-separated countries to keep (smaller, faster)")
    ap.add_argument("--holdout", default="3", help="held-out countries: a number or a comma-separated list")
    ap.add_argument("--vary", nargs="+", default=["option_order=rotate", "labels=letters,numbers"])
    ap.add_argument("--transfer", default="culturalbench_easy")
    ap.add_argument("--transfer-limit", type=int, default=60)
    ap.add_argument("--control-limit", type=int, default=60)
    ap.add_argument("--source-run", default=None)
    ap.add_argument(
        "--cache", default=None, help="response cache (default: a fresh one in the output folder)"
    )
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench" / "improve"))
    ap.add_argument(
        "--quick",
        action="store_true",
        help="4 countries (1 held out), 4 steps, transfer and control limits of 10 (for make bench)",
    )
    args = ap.parse_args()
    if args.quick:
        args.steps, args.countries, args.holdout = 4, "Japan,Brazil,Kenya,India", "Kenya"
        args.transfer_limit, args.control_limit = 10, 10

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cmd = [
        str(BIN / "culturelens"),
        "improve",
        "--task",
        args.task,
        "--method",
        args.method,
        "--steps",
        str(args.steps),
        "--batch-size",
        str(args.batch_size),
        "--holdout-countries",
        args.holdout,
        "--transfer",
        args.transfer,
        "--transfer-limit",
        str(args.transfer_limit),
        "--control-limit",
        str(args.control_limit),
        "--out",
        str(out),
        "--cache",
        args.cache or str(out / "cache.sqlite"),
        "--vary",
        *args.vary,
    ]
    if args.countries:
        cmd += ["--countries", args.countries]
    if args.source_run:
        cmd += ["--source-run", args.source_run]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRL_EXPERIMENTAL_SILENCE": "1"}
    print("$ " + " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    rc = subprocess.run(cmd, env=env, cwd=ROOT).returncode
    wall = time.perf_counter() - t0
    print(f"improve loop: exit {rc}, wall {wall:.0f} s", flush=True)
    summary_path = out / "improve.json"
    if rc != 0 or not summary_path.exists():
        return rc or 1
    s = json.loads(summary_path.read_text(encoding="utf-8"))
    tr = s["training"]
    print(
        f"training: {tr['method']} {tr['steps']} steps on {tr['examples']} rows, {tr['seconds']:.0f} s, "
        f"loss {tr['first_loss']:.3f} -> {tr['last_loss']:.3f} ({tr['device']})"
    )
    print("stages: " + ", ".join(f"{k} {v:.0f} s" for k, v in s["timing"].items()))
    pos = (s["data"].get("positions") or {}).get("train") or {}
    for key in ("chosen", "rejected"):
        if pos.get(key):
            print(f"training pairs, {key} answer by displayed position: {pos[key]}")
    for v in s["verdicts"]:
        print(f"- {v}")
    (out / "bench.json").write_text(
        json.dumps(
            {"wall_s": round(wall, 1), "command": cmd, "timing": s["timing"], "positions": pos}, indent=1
        ),
        encoding="utf-8",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
