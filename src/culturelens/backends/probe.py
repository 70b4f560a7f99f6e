"""Native-code safety: before llama.cpp first runs a model on a machine, a tiny decode runs in a
child process. A crash there (for example a build whose CPU kernels the machine cannot really run,
such as AMX tile instructions inside some VMs) is caught and remembered instead of taking the run
down with a segfault and no word.

The verdict is kept in ``$CULTURELENS_HOME/native_probe.json`` per (llama.cpp build, CPU, model
file). On a crash the probe tries again without llama.cpp's extra buffer types (weight repacking
for AMX and similar kernels); if that works the backend runs that way, with a one-line warning.
``CULTURELENS_NATIVE_PROBE=0`` skips the probe.

Run as ``python -m culturelens.backends.probe MODEL.gguf {1|0}`` it is the child itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

#: seconds a probe may take (loading a large model from a slow disk included)
TIMEOUT_S = float(os.environ.get("CULTURELENS_PROBE_TIMEOUT", "600"))
#: for tests: make the child crash for real (SIGSEGV) in "all" configurations or only "extra_bufts"
_CRASH_ENV = "CULTURELENS_PROBE_CRASH"

FIX = (
    "rebuild llama-cpp-python for a portable CPU baseline: `rm -rf .venv && make install` "
    "(builds with GGML_NATIVE=OFF, AVX2/FMA/F16C), or CMAKE_ARGS='-DGGML_NATIVE=OFF' "
    "pip install --no-cache-dir --force-reinstall llama-cpp-python"
)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    use_extra_bufts: bool = True
    detail: str = ""
    fresh: bool = False  # probed in this call (not from the remembered verdicts)


def _home() -> Path:
    return Path(os.environ.get("CULTURELENS_HOME", Path.home() / ".cache" / "culturelens"))


def _cpu_fingerprint() -> str:
    with contextlib.suppress(OSError):
        text = Path("/proc/cpuinfo").read_text()
        keep = [
            ln for ln in text.splitlines() if ln.startswith(("model name", "flags", "Features", "CPU part"))
        ]
        return hashlib.sha256("\n".join(sorted(set(keep))).encode()).hexdigest()[:16]
    import platform

    return platform.processor() or platform.machine()


def _build_fingerprint() -> str:
    """The llama.cpp build: the installed package's shared libraries (path, size, mtime)."""
    import importlib.util

    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or spec.origin is None:
        return "missing"
    root = Path(spec.origin).parent
    parts = []
    for lib in sorted(root.rglob("*.so*")) + sorted(root.rglob("*.dylib")) + sorted(root.rglob("*.dll")):
        with contextlib.suppress(OSError):
            st = lib.stat()
            parts.append(f"{lib.name}|{st.st_size}|{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts or [str(root)]).encode()).hexdigest()[:16]


def probe_key(model: Path) -> str:
    st = model.stat()
    return f"{_build_fingerprint()}|{_cpu_fingerprint()}|{model.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def _verdict_file() -> Path:
    return Path(os.environ.get("CULTURELENS_PROBE_FILE") or _home() / "native_probe.json")


def _load_verdicts() -> dict[str, dict]:
    try:
        data = json.loads(_verdict_file().read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _save_verdict(key: str, verdict: Verdict) -> None:
    data = _load_verdicts()
    data[key] = {
        "ok": verdict.ok,
        "use_extra_bufts": verdict.use_extra_bufts,
        "detail": verdict.detail,
        "when": time.time(),
    }
    path = _verdict_file()
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, path)


def _describe(rc: int) -> str:
    if rc < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-rc).name}"
        return f"killed by signal {-rc}"
    return f"exit code {rc}"


def _run_child(model: Path, extra_bufts: bool) -> tuple[bool, str]:
    cmd = [sys.executable, "-m", "culturelens.backends.probe", str(model), "1" if extra_bufts else "0"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return False, f"no answer within {TIMEOUT_S:.0f} s"
    if proc.returncode == 0 and proc.stdout.strip().endswith("ok"):
        return True, "ok"
    tail = " ".join((proc.stderr or "").strip().splitlines()[-1:])[:160]
    return False, _describe(proc.returncode) + (f": {tail}" if tail else "")


def check(model: Path) -> Verdict:
    """Whether llama.cpp can decode ``model`` on this machine, and with which buffer types."""
    if os.environ.get("CULTURELENS_NATIVE_PROBE", "1") == "0":
        return Verdict(True, True, "probe skipped (CULTURELENS_NATIVE_PROBE=0)")
    key = probe_key(model)
    known = _load_verdicts().get(key)
    if known is not None and os.environ.get(_CRASH_ENV) is None:
        return Verdict(
            bool(known.get("ok")), bool(known.get("use_extra_bufts", True)), str(known.get("detail", ""))
        )
    ok, detail = _run_child(model, extra_bufts=True)
    if ok:
        verdict = Verdict(True, True, "ok", fresh=True)
    else:
        ok2, detail2 = _run_child(model, extra_bufts=False)
        if ok2:
            verdict = Verdict(
                True,
                False,
                f"a test decode crashed ({detail}); it runs without extra buffer types",
                fresh=True,
            )
        else:
            verdict = Verdict(
                False,
                False,
                f"a test decode crashed ({detail}; without extra buffer types: {detail2})",
                fresh=True,
            )
    _save_verdict(key, verdict)
    return verdict


def _child(model: str, extra_bufts: bool) -> None:
    """Load the model as the backend does and run each of its decode paths once."""
    from culturelens.backends.llamacpp import LlamaCppBackend
    from culturelens.schema import Request

    backend = LlamaCppBackend(model, n_ctx=256, n_batch=64, use_extra_bufts=extra_bufts, probe=False)
    crash = os.environ.get(_CRASH_ENV)
    if crash == "all" or (crash == "extra_bufts" and extra_bufts):
        import ctypes

        ctypes.string_at(0)  # a real segmentation fault, as a broken native kernel gives
    text = "The capital of France is"
    backend.label_logprobs([Request(kind="labels", text=text, targets=["A", "B"])])
    backend.continuation_logprobs(
        [Request(kind="continuations", text=text, targets=[" Paris city", " Rome"])]
    )
    backend.generate([Request(kind="generate", text=text, max_tokens=4)])
    backend.close()
    print("ok", flush=True)


if __name__ == "__main__":  # the child process
    _child(sys.argv[1], sys.argv[2] == "1")
