"""GPU benchmark: the hf backend in bf16 with large batches against the raw forward pass, and vLLM offline.

    bench/gpu/run.sh                         # a machine with an NVIDIA GPU: everything, in under 8 minutes
    bench/gpu/run.sh --cpu-smoke             # tiny, on CPU: the hf parts end to end, vLLM not measured
    bench/gpu/run.sh --model hf:Qwen/Qwen2.5-1.5B-Instruct --items 2000   # a larger model

Without a CUDA device (the main venv's torch sees none) it says so, runs the CPU-capable parts tiny on
the CPU (as ``--cpu-smoke``), marks every GPU figure "not measured" and exits 0.

Steps, each in a fresh process (so GPU memory is freed between them), on the same 4-option BLEnD
items (``bench/blend_mc.py``; the shipped starter suite where the BLEnD data is missing):

1. ``culturelens run`` in letter, cloze and generate mode with ``--model-opt device=cuda dtype=bfloat16
   batch_size=B max_batch_tokens=M`` (and runner ``--batch-size B``), fresh cache and run directory;
2. ``bench/gpu/raw_hf.py``: the bare model on the same prompts, tokens and micro-batches (letter: last
   position only; cloze: every context + option row, no prefix sharing; generate: ``model.generate``)
   -> tokens/s, and culturelens's tokens/s over the same tokens in its scoring time;
3. ``bench/gpu/vllm_worker.py`` in the vLLM venv (``.venv-vllm``, :data:`VLLM_PIN`; created on first
   use, outside the time budget, or ``--vllm-python``): greedy generation of the same prompts compared
   with culturelens's hf generate, and ``prompt_logprobs`` of the cloze options with prefix caching on
   (contexts cached first, then asked twice) and off, which must agree within ``--tol``.

Every step runs under one deadline (``--budget``, 450 s): a step that would not fit is skipped and
reported "not measured (time budget)". Prints measured / target / met and writes
``runs/bench/gpu.json`` (details and logs under ``runs/bench/gpu/``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
DEFAULT_WORK = ROOT / "runs" / "bench" / "gpu"
DEFAULT_OUT = ROOT / "runs" / "bench" / "gpu.json"

#: vLLM for the offline comparison, in its own venv (it brings its own CUDA torch); bump and delete .venv-vllm
VLLM_PIN = "vllm==0.34.0"
VLLM_VENV = ROOT / ".venv-vllm"
TARGET_WALL_S = 480.0  # the target: the whole bench in under 8 minutes
DEFAULT_BUDGET_S = 450.0  # the deadline every step runs under (leaves time to write the results)
NO_VLLM = "not measured (no GPU / vLLM not installed)"
NOT_GPU = "not measured (no GPU)"

GPU_DEFAULTS = {
    "items": 1000,
    "batch_size": 256,
    "max_batch_tokens": 131072,
    "dtype": "bfloat16",
    "device": "cuda",
}
CPU_DEFAULTS = {"items": 4, "batch_size": 8, "max_batch_tokens": 8192, "dtype": "float32", "device": "cpu"}
MODES = ("letter", "cloze", "generate")


# --- arguments and settings ---------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="hf:embedded", help="hf:ID_OR_PATH[#file.gguf] (default hf:embedded)")
    ap.add_argument("--cpu-smoke", action="store_true", help="everything tiny on the CPU (vLLM not measured)")
    ap.add_argument("--items", type=int, help="items per mode (GPU 1000, CPU smoke 4)")
    ap.add_argument("--batch-size", type=int, help="runner and hf micro-batch size (GPU 256, CPU 8)")
    ap.add_argument(
        "--max-batch-tokens", type=int, help="padded tokens per hf micro-batch (GPU 131072, CPU 8192)"
    )
    ap.add_argument("--dtype", help="GPU bfloat16, CPU float32")
    ap.add_argument("--budget", type=float, default=DEFAULT_BUDGET_S, help="seconds every step must fit in")
    ap.add_argument(
        "--tol", type=float, default=0.05, help="max abs diff (nats per token), caching on vs off"
    )
    ap.add_argument("--skip-vllm", action="store_true")
    ap.add_argument(
        "--vllm-python", help="a python that imports vllm (default: .venv-vllm, created if missing)"
    )
    ap.add_argument("--no-install", action="store_true", help="never create .venv-vllm")
    ap.add_argument("--wheels", help="a folder of wheels for installing vLLM offline (pip --find-links)")
    ap.add_argument("--gpu-memory-utilization", type=float, default=0.5)
    ap.add_argument("--enforce-eager", action="store_true", help="vLLM without CUDA graphs (faster start)")
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK, help="run directories, caches and logs")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    for name in ("items", "batch_size", "max_batch_tokens"):
        value = getattr(args, name)
        if value is not None and value < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    if not args.model.startswith("hf:"):
        ap.error(
            f"--model {args.model!r}: give an hf: spec (hf:ID_OR_PATH[#file.gguf]), the same for every part"
        )
    if args.budget <= 0 or args.tol < 0:
        ap.error("--budget must be positive and --tol not negative")
    return args


def settings(args: argparse.Namespace, cuda: bool) -> dict[str, Any]:
    """What this run uses: the GPU defaults with a CUDA device, the tiny CPU ones otherwise or with
    ``--cpu-smoke``; explicit options win either way."""
    smoke = bool(args.cpu_smoke or not cuda)
    out = dict(CPU_DEFAULTS if smoke else GPU_DEFAULTS)
    for key in ("items", "batch_size", "max_batch_tokens", "dtype"):
        if getattr(args, key) is not None:
            out[key] = getattr(args, key)
    out.update(smoke=smoke, model=args.model, tol=args.tol, budget_s=args.budget)
    return out


# --- time budget and steps ----------------------------------------------------------------------------
class Budget:
    """One deadline for every step."""

    def __init__(self, total_s: float, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.start = clock()
        self.total = total_s

    def elapsed(self) -> float:
        return self.clock() - self.start

    def remaining(self) -> float:
        return self.total - self.elapsed()

    def allows(self, need_s: float) -> bool:
        return self.remaining() >= need_s


def run_step(
    name: str,
    cmd: list[str],
    budget: Budget,
    logs: Path,
    need_s: float = 5.0,
    env: dict[str, str] | None = None,
) -> str | None:
    """Run ``cmd`` (output to ``logs/name.log``) within the budget; None when it succeeded, else why not."""
    if not budget.allows(need_s):
        return f"not measured (time budget: {budget.remaining():.0f} s left, needs ~{need_s:.0f} s)"
    log = logs / f"{name}.log"
    print(f"[{budget.elapsed():6.1f}s] {name} ...", flush=True)
    try:
        with log.open("w") as fh:
            proc = subprocess.run(
                cmd,
                stdout=fh,
                stderr=subprocess.STDOUT,
                timeout=max(1.0, budget.remaining()),
                env={**os.environ, **(env or {})},
            )
    except subprocess.TimeoutExpired:
        return "not measured (stopped at the time budget)"
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        print(f"  {name} failed (exit {proc.returncode}); last lines of {log}:\n{tail}", flush=True)
        return f"failed (exit {proc.returncode}, see {log})"
    return None


def probe_cuda(python: str) -> dict[str, Any]:
    """Whether ``python``'s torch sees a CUDA device (in a child: this process never imports torch)."""
    code = (
        "import json, torch; ok = torch.cuda.is_available(); print(json.dumps({'cuda': ok, 'torch': torch.__version__,"
        " 'name': torch.cuda.get_device_name(0) if ok else None}))"
    )
    try:
        proc = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=180)
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, IndexError, ValueError, OSError) as exc:
        return {"cuda": False, "error": str(exc)}


def vllm_version(python: str | Path) -> str | None:
    try:
        proc = subprocess.run(
            [str(python), "-c", "import vllm; print(vllm.__version__)"],
            capture_output=True,
            text=True,
            timeout=300,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip().splitlines()[-1] if proc.returncode == 0 and proc.stdout.strip() else None


def find_vllm(args: argparse.Namespace, cuda: bool) -> tuple[str | None, str, float]:
    """(python that imports vllm, its version, seconds spent installing) or (None, why vLLM is not
    measured, seconds). Creates ``.venv-vllm`` with :data:`VLLM_PIN` on a CUDA machine unless
    ``--no-install``; installing is not counted in the time budget or the wall time."""
    if args.skip_vllm:
        return None, "not measured (--skip-vllm)", 0.0
    if not cuda:
        return None, NO_VLLM, 0.0
    py = Path(args.vllm_python) if args.vllm_python else VLLM_VENV / "bin" / "python"
    if py.exists() and (version := vllm_version(py)):
        return str(py), version, 0.0
    if args.vllm_python or args.no_install:
        return None, f"{NO_VLLM}: {py} cannot import vllm", 0.0
    print(f"installing {VLLM_PIN} into {VLLM_VENV} (once; not counted in the time budget) ...", flush=True)
    t0 = time.monotonic()
    try:
        if not py.exists():
            subprocess.run([sys.executable, "-m", "venv", str(VLLM_VENV)], check=True)
        pip = [str(py), "-m", "pip", "install", "-q", *(["--find-links", args.wheels] if args.wheels else [])]
        subprocess.run([*pip, VLLM_PIN], check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        why = f"{NO_VLLM}: installing {VLLM_PIN} failed ({exc}); offline, pass --wheels DIR or --vllm-python"
        return None, why, time.monotonic() - t0
    version = vllm_version(py)
    spent = time.monotonic() - t0
    return (str(py), version, spent) if version else (None, f"{NO_VLLM}: {py} cannot import vllm", spent)


# --- comparisons (pure) -------------------------------------------------------------------------------
def diff_stats(a: dict[str, list[float | None]], b: dict[str, list[float | None]]) -> dict[str, Any]:
    """Per-token comparison of two sets of log-prob rows (same keys, same lengths). ``missing`` counts the
    tokens either side lacks (None, a missing row, a length mismatch): any is a failure, whatever the
    values."""
    diffs: list[float] = []
    missing = 0
    for key in a.keys() | b.keys():
        ra, rb = a.get(key), b.get(key)
        if ra is None or rb is None or len(ra) != len(rb):
            missing += max(len(ra or []), len(rb or []), 1)
            continue
        for x, y in zip(ra, rb, strict=True):
            if x is None or y is None or not (math.isfinite(x) and math.isfinite(y)):
                missing += 1
            else:
                diffs.append(abs(x - y))
    return {
        "tokens": len(diffs),
        "missing": missing,
        "max_abs": max(diffs, default=0.0),
        "mean_abs": sum(diffs) / len(diffs) if diffs else 0.0,
    }


def within(stats: dict[str, Any], tol: float) -> bool:
    return stats["missing"] == 0 and stats["tokens"] > 0 and stats["max_abs"] <= tol


def option_sums(values: dict[str, list[float | None]]) -> dict[str, list[float | None]]:
    """``"item\\toption"`` -> token log-probs, to item -> per-option sums (None where a token is missing)."""
    out: dict[str, dict[int, float | None]] = {}
    for key, row in values.items():
        item, _, j = key.rpartition("\t")
        out.setdefault(item, {})[int(j)] = (
            None if any(v is None for v in row) else sum(v for v in row if v is not None)
        )
    return {k: [v[j] for j in sorted(v)] for k, v in out.items()}


def choice_agreement(
    a: dict[str, Sequence[float | None]], b: dict[str, Sequence[float | None]]
) -> dict[str, Any]:
    """Share of shared items whose argmax option agrees, and the largest per-option difference."""
    same = n = 0
    worst = 0.0
    for key in a.keys() & b.keys():
        x, y = list(a[key]), list(b[key])
        if len(x) != len(y) or not x or any(v is None for v in (*x, *y)):
            continue
        n += 1
        same += max(range(len(x)), key=lambda i: x[i]) == max(range(len(y)), key=lambda i: y[i])  # type: ignore[arg-type,return-value]
        worst = max(worst, max(abs(p - q) for p, q in zip(x, y, strict=True)))  # type: ignore[operator]
    return {"items": n, "agree": same / n if n else None, "max_abs": worst}


def sequence_agreement(
    a: dict[str, Sequence[Any] | None], b: dict[str, Sequence[Any] | None]
) -> dict[str, Any]:
    """Exact-match share of two item -> sequence (text or token ids) maps over their shared items, and
    the mean share of the common prefix (of the longer sequence)."""
    keys = sorted(a.keys() & b.keys())
    same, prefix = 0, 0.0
    for k in keys:
        x, y = list(a[k] or []), list(b[k] or [])
        same += x == y
        common = next((i for i, (p, q) in enumerate(zip(x, y, strict=False)) if p != q), min(len(x), len(y)))
        prefix += common / max(len(x), len(y), 1)
    return {
        "items": len(keys),
        "identical": same / len(keys) if keys else None,
        "prefix": prefix / len(keys) if keys else None,
    }


def verdict(value: float | None, target: str) -> bool | None:
    """``">= 0.8"`` / ``"<= 480"`` against a value; None for no target or no value."""
    if value is None or not target:
        return None
    op, _, num = target.partition(" ")
    bound = float(num.split()[0])
    if op == ">=":
        return value >= bound
    if op == "<=":
        return value <= bound
    raise ValueError(f"unknown target {target!r}")


def row(
    what: str, value: float | None, target: str = "", note: str = "", missing: str = "", fmt: str = "{:.2f}"
) -> dict[str, Any]:
    """A table row; ``missing`` (why there is no value) is shown in place of the value and verdict."""
    met = verdict(value, target)
    if value is None:
        shown, status = missing or "not measured", "-"
    else:
        shown, status = fmt.format(value), "-" if met is None else ("met" if met else "NOT MET")
    return {
        "what": what,
        "measured": shown,
        "value": value,
        "target": target or "-",
        "met": status,
        "note": note,
    }


def render(rows: Sequence[dict[str, Any]]) -> str:
    cols = ("what", "measured", "target", "met", "note")
    heads = {"what": "figure", "measured": "measured", "target": "target", "met": "met", "note": "note"}
    width = {c: max(len(str(r[c])) for r in [*rows, heads]) for c in cols}
    lines = ["  ".join(f"{heads[c]:<{width[c]}}" for c in cols).rstrip()]
    lines.append("  ".join("-" * width[c] for c in cols))
    lines += ["  ".join(f"{str(r[c]):<{width[c]}}" for c in cols).rstrip() for r in rows]
    return "\n".join(lines)


# --- culturelens runs ---------------------------------------------------------------------------------
def write_items(path: Path, n: int) -> bool:
    """BLEnD multiple-choice items (``bench/blend_mc.py``); False when the BLEnD data is missing."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("blend_mc", ROOT / "bench" / "blend_mc.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    try:
        return mod.write_items(path, limit=n) > 0
    except FileNotFoundError:
        return False


def culturelens_cmd(mode: str, cfg: dict[str, Any], items: Path | None, work: Path) -> list[str]:
    out, cache = work / mode, work / f"{mode}.sqlite"
    shutil.rmtree(out, ignore_errors=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{cache}{suffix}").unlink(missing_ok=True)
    data = ["--data-dir", str(items)] if items else ["--limit", str(cfg["items"])]
    opts = [
        f"device={cfg['device']}",
        f"dtype={cfg['dtype']}",
        f"batch_size={cfg['batch_size']}",
        f"max_batch_tokens={cfg['max_batch_tokens']}",
    ]
    return [
        str(Path(sys.executable).parent / "culturelens"),
        "run",
        "--task",
        "starter",
        *data,
        "--mode",
        mode,
        "--model",
        cfg["model"],
        "--cache",
        str(cache),
        "--out",
        str(out),
        "--no-report",
        "-q",
        "--batch-size",
        str(cfg["batch_size"]),
        *(x for o in opts for x in ("--model-opt", o)),
    ]


def read_run(run_dir: Path) -> dict[str, Any]:
    timing = json.loads((run_dir / "timing.json").read_text())
    samples = [json.loads(x) for x in (run_dir / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
    return {
        "wall_s": timing["wall_s"],
        "load_s": timing["model_load_s"],
        "scoring_s": timing["scoring_s"],
        "samples": timing["samples"],
        "computed": timing["computed"],
        "generated_tokens": sum(
            sum(s["response"].get("n_tokens") or [0]) for s in samples if s["mode"] == "generate"
        ),
        "acc": sum(s["metrics"].get("acc", 0.0) for s in samples) / max(len(samples), 1),
        "ids": sorted(s["item_id"] for s in samples),
    }


# --- the bench ----------------------------------------------------------------------------------------
def build_rows(res: dict[str, Any], cfg: dict[str, Any]) -> list[dict[str, Any]]:
    smoke = cfg["smoke"]
    where = "CPU smoke" if smoke else "GPU"
    note_cpu = "CPU figure, not the GPU one" if smoke else ""
    cl, raw, vl = res.get("culturelens", {}), res.get("raw", {}), res.get("vllm", {})
    rows = []
    for mode in ("letter", "cloze"):
        c, r = cl.get(mode), raw.get(mode)
        ratio = (r["tokens"] / c["scoring_s"]) / r["tok_per_s"] if c and r and c["scoring_s"] > 0 else None
        note = (
            f"raw {r['tok_per_s']:.0f} tok/s, culturelens {r['tokens'] / c['scoring_s']:.0f}" if ratio else ""
        )
        rows.append(
            row(
                f"{mode}: culturelens hf tok/s / raw forward tok/s ({where})",
                ratio,
                ">= 0.8",
                "; ".join(x for x in (note, note_cpu) if x),
                res.get("why", {}).get(mode, ""),
            )
        )
    c, r = cl.get("generate"), raw.get("generate")
    ratio = None
    if c and r and c["scoring_s"] > 0 and r["tok_per_s"] > 0:
        ratio = (c["generated_tokens"] / c["scoring_s"]) / r["tok_per_s"]
    note = (
        f"raw {r['tok_per_s']:.0f} tok/s, culturelens {c['generated_tokens'] / c['scoring_s']:.0f}"
        if ratio
        else ""
    )
    rows.append(
        row(
            f"generate: culturelens hf generated tok/s / raw generate tok/s ({where})",
            ratio,
            ">= 0.8",
            "; ".join(x for x in (note, note_cpu) if x),
            res.get("why", {}).get("generate", ""),
        )
    )
    rows.append(
        row(
            "cloze: culturelens option log-probs vs plain forward pass, max abs diff",
            raw.get("cloze", {}).get("max_abs_diff_vs_culturelens"),
            "",
            "prefix-shared KV vs whole rows",
            res.get("why", {}).get("raw", ""),
            fmt="{:.4f}",
        )
    )
    rows.append(
        row(
            "generate: culturelens text = raw model.generate text (share)",
            raw.get("generate", {}).get("identical_to_culturelens"),
            "",
            "",
            res.get("why", {}).get("raw", ""),
        )
    )

    why = vl.get("why", NO_VLLM)
    gen = vl.get("generate")
    c = cl.get("generate")
    speed = None
    if gen and c and c["scoring_s"] > 0 and c["generated_tokens"]:
        speed = gen["tok_per_s"] / (c["generated_tokens"] / c["scoring_s"])
    rows.append(
        row(
            "vLLM generate tok/s / culturelens hf generate tok/s",
            speed,
            "",
            f"vLLM {gen['tok_per_s']:.0f} tok/s" if gen else "",
            why,
        )
    )
    toks, texts = vl.get("token_agreement", {}), vl.get("text_agreement", {})
    note = ""
    if toks.get("prefix") is not None:
        note = f"mean common prefix {toks['prefix']:.2f}; texts identical {texts.get('identical') or 0:.2f}"
    rows.append(
        row("vLLM greedy tokens = culturelens hf greedy tokens (share)", toks.get("identical"), "", note, why)
    )
    for key, label in (("cache_cold", "contexts cached"), ("cache_warm", "whole rows cached")):
        st = vl.get(key)
        value = None if st is None else (st["max_abs"] if st["missing"] == 0 and st["tokens"] else math.inf)
        note = f"{st['tokens']} tokens, {st['missing']} missing, mean {st['mean_abs']:.2e}" if st else ""
        rows.append(
            row(
                f"vLLM prompt log-probs, prefix caching on ({label}) vs off: max abs diff",
                value,
                f"<= {cfg['tol']}",
                note,
                vl.get("cache_why", why),
                fmt="{:.2e}",
            )
        )
    ch = vl.get("cloze_vs_culturelens")
    rows.append(
        row(
            "vLLM cloze choice = culturelens hf cloze choice (share)",
            ch.get("agree") if ch else None,
            "",
            f"max abs diff per option {ch['max_abs']:.3f}" if ch else "",
            why,
        )
    )
    rows.append(
        row(
            f"whole bench wall, s ({where})",
            res.get("wall_s"),
            f"<= {TARGET_WALL_S:.0f}",
            note_cpu,
            fmt="{:.0f}",
        )
    )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    t_start = time.monotonic()
    work: Path = args.work
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    probe = {"cuda": False, "skipped": "--cpu-smoke"} if args.cpu_smoke else probe_cuda(sys.executable)
    cuda = bool(probe.get("cuda"))
    cfg = settings(args, cuda)
    cfg["device"] = "cpu" if cfg["smoke"] else "cuda"
    if not cuda and not args.cpu_smoke:
        print(
            f"no CUDA device visible to {sys.executable}'s torch ({probe.get('torch') or probe.get('error')}): running the "
            "CPU-capable parts tiny on the CPU; the GPU figures are still to be measured (on a GPU machine: "
            "`make install-gpu`, then bench/gpu/run.sh)",
            flush=True,
        )
    vllm_py, vllm_info, install_s = find_vllm(args, cuda and not cfg["smoke"])
    budget = Budget(args.budget)
    res: dict[str, Any] = {
        "settings": cfg,
        "device": probe,
        "gpu_measured": False,
        "vllm_pin": VLLM_PIN,
        "vllm_install_s": install_s,
        "why": {},
        "culturelens": {},
        "raw": {},
        "vllm": {},
    }
    print(
        f"bench/gpu: {cfg['model']} on {cfg['device']} ({probe.get('name') or 'CPU'}), {cfg['dtype']}, "
        f"{cfg['items']} items, batch {cfg['batch_size']}, budget {args.budget:.0f} s",
        flush=True,
    )

    items: Path | None = work / f"blend_mc_{cfg['items']}.jsonl"
    if not write_items(items, cfg["items"]):  # type: ignore[arg-type]
        print("BLEnD data not found: using the shipped starter suite", flush=True)
        items = None
    res["items_source"] = "blend_mc" if items else "starter"
    failed = False
    for mode in MODES:
        why = run_step(
            f"culturelens-{mode}", culturelens_cmd(mode, cfg, items, work), budget, logs, need_s=10
        )
        if why is None:
            res["culturelens"][mode] = read_run(work / mode)
        else:
            res["why"][mode] = why
            failed = failed or why.startswith("failed")
    cl = res["culturelens"]
    if len({tuple(v.pop("ids")) for v in cl.values()}) > 1:
        print("warning: the three modes scored different items", flush=True)

    if all(m in cl for m in MODES):
        raw_out, tokens = work / "raw.json", work / "tokens.json"
        cmd = [
            sys.executable,
            str(HERE / "raw_hf.py"),
            "--model",
            cfg["model"],
            "--device",
            cfg["device"],
            "--dtype",
            cfg["dtype"],
        ]
        cmd += ["--batch-size", str(cfg["batch_size"]), "--max-batch-tokens", str(cfg["max_batch_tokens"])]
        cmd += ["--runs", str(work), "--out", str(raw_out), "--tokens", str(tokens)]
        why = run_step("raw-hf", cmd, budget, logs, need_s=10)
        if why is None:
            res["raw"] = json.loads(raw_out.read_text())
        else:
            res["why"].update(raw=why, letter=why, cloze=why, generate=why)
            failed = failed or why.startswith("failed")
    else:
        res["why"].setdefault("raw", "not measured (a culturelens run is missing)")

    if vllm_py is None:
        res["vllm"] = {"why": vllm_info}
    elif not res["raw"]:
        res["vllm"] = {"why": "not measured (no token ids: the raw step did not run)"}
    else:
        res["vllm"] = run_vllm(vllm_py, vllm_info, cfg, args, work, logs, budget)
    res["gpu_measured"] = not cfg["smoke"]
    res["wall_s"] = time.monotonic() - t_start - install_s  # the one command, less a first vLLM install
    rows = build_rows(res, cfg)
    res["rows"] = rows
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1, default=str))

    title = "GPU" if not cfg["smoke"] else "CPU smoke (GPU figures still to be measured)"
    print(
        f"\nbench/gpu, {title}: {cfg['model']}, {cfg['items']} items, {cfg['dtype']}, batch {cfg['batch_size']}"
    )
    print(render(rows))
    extra = f" (+ {install_s:.0f} s installing vLLM)" if install_s else ""
    print(f"\nwall {res['wall_s']:.0f} s{extra}; details: {args.out}; logs: {logs}")
    if cfg["smoke"]:
        print("GPU figures: still to be measured (run bench/gpu/run.sh on a machine with an NVIDIA GPU)")
    return 1 if failed else 0


def run_vllm(
    py: str,
    version: str,
    cfg: dict[str, Any],
    args: argparse.Namespace,
    work: Path,
    logs: Path,
    budget: Budget,
) -> dict[str, Any]:
    """The two vLLM engines (prefix caching on: generation and log-probs twice; off: log-probs) and the
    comparisons."""
    tokens = work / "tokens.json"
    data = json.loads(tokens.read_text())
    out: dict[str, Any] = {"version": version, "model_path": data["model_path"]}
    base = [
        py,
        str(HERE / "vllm_worker.py"),
        "--model",
        data["model_path"],
        "--tokens",
        str(tokens),
        "--dtype",
        cfg["dtype"],
    ]
    base += ["--gpu-memory-utilization", str(args.gpu_memory_utilization)]
    if args.enforce_eager:
        base.append("--enforce-eager")
    env = {"TOKENIZERS_PARALLELISM": "false"}
    on, off = work / "vllm_on.json", work / "vllm_off.json"
    cmd = [
        *base,
        "--out",
        str(on),
        "--prefix-caching",
        "on",
        "--generate",
        "--logprobs",
        "--warm-cache",
        "--passes",
        "2",
    ]
    why = run_step("vllm-prefix-caching-on", cmd, budget, logs, need_s=60, env=env)
    if why is not None:
        return {**out, "why": why}
    r_on = json.loads(on.read_text())
    out.update(init_s_on=r_on["init_s"], generate=r_on.get("generate"))
    gen = r_on["generate"]
    out["token_agreement"] = sequence_agreement(
        {g["id"]: g["hf_ids"] for g in data["generate"]}, gen["token_ids"]
    )
    out["text_agreement"] = sequence_agreement(
        {g["id"]: g["hf_text"] for g in data["generate"]}, gen["texts"]
    )
    # the texts and token ids stay in vllm_on.json
    out["generate"] = {k: v for k, v in gen.items() if k not in ("texts", "token_ids")}
    hf_cloze = {c["id"]: c["hf_logprobs"] for c in data["cloze"]}
    if "logprobs" in r_on:
        out["cloze_vs_culturelens_caching_on"] = choice_agreement(
            hf_cloze, option_sums(r_on["logprobs"][0]["values"])
        )
    else:  # the engine refused: that is the finding, reported in place of the two figures
        out["cache_why"] = f"not measured (vLLM {version} with prefix caching: {r_on.get('logprobs_error')})"
    why = run_step(
        "vllm-prefix-caching-off",
        [*base, "--out", str(off), "--prefix-caching", "off", "--logprobs"],
        budget,
        logs,
        need_s=45,
        env=env,
    )
    if why is not None:
        return {**out, "why": why}
    r_off = json.loads(off.read_text())
    if "logprobs" not in r_off:
        return {**out, "why": f"not measured (vLLM prompt_logprobs failed: {r_off.get('logprobs_error')})"}
    ref = r_off["logprobs"][0]["values"]
    out.update(
        init_s_off=r_off["init_s"],
        logprobs_s_off=r_off["logprobs"][0]["seconds"],
        cloze_vs_culturelens=choice_agreement(hf_cloze, option_sums(ref)),
    )
    if "logprobs" in r_on:
        out.update(
            logprobs_s_on=[p["seconds"] for p in r_on["logprobs"]],
            cache_cold=diff_stats(r_on["logprobs"][0]["values"], ref),
            cache_warm=diff_stats(r_on["logprobs"][1]["values"], ref),
        )
        out["prefix_caching_equal"] = within(out["cache_cold"], cfg["tol"]) and within(
            out["cache_warm"], cfg["tol"]
        )
    return out


if __name__ == "__main__":
    sys.exit(main())
