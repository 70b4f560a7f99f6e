"""The run directory as a unit: one run at a time (a lock), never a mix of two runs, and a status
record that says whether its files are whole.

``run.json`` is written when a run starts (status ``started``) and rewritten when it ends
(``complete`` with the SHA-256 of ``samples.jsonl`` and ``results.json``, or ``interrupted`` /
``failed`` with the reason). A finished run is reused only if its record is ``complete`` for the
same requests and both files still hash to what was recorded, so a truncated or hand-edited file
is recomputed (from the response cache) instead of trusted.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from culturelens.runlog import (  # noqa: F401 - the status record lives with the run log
    FORMAT_VERSION,
    HASHED,
    STATUS_FILE,
    file_digest,
    is_complete,
    read_status,
    write_status,
)

LOCK_FILE = ".lock"
#: files a run produces; all are removed before a run is recomputed into the directory
RUN_FILES = (
    "samples.jsonl",
    "samples.jsonl.tmp",
    "judgements.jsonl",
    "judgements.jsonl.tmp",
    "items.jsonl",
    "references.json",
    "results.json",
    "timing.json",
    "robustness.json",
    "alignment.json",
    "crosslingual.json",
    "report.html",
    STATUS_FILE,
)


class RunDirError(ValueError):
    """The run directory cannot be used (a file, unwritable, or in use). One line, says what to do."""


def prepare(run_dir: Path) -> Path:
    """Create ``run_dir`` or check that it is a writable directory; a one-line error otherwise."""
    for parent in [run_dir, *run_dir.parents]:
        if parent.exists() and not parent.is_dir():
            where = "is a file" if parent == run_dir else f"lies under {parent}, which is a file"
            raise RunDirError(f"run directory {run_dir} {where}: choose another --out")
        if parent.exists():
            break
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise RunDirError(
            f"run directory {run_dir} is not writable ({exc.strerror or exc}): choose another --out"
        ) from None
    return run_dir


_HELD: dict[str, tuple[Any, int]] = {}


class RunLock:
    """An exclusive lock on a run directory for this process (re-entrant within it).

    Uses ``flock`` on ``run_dir/.lock``: the kernel drops it when the process dies, so a crashed run
    never leaves a stale lock. The file names the holder for the error message of a second process.
    """

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.key = str(run_dir.resolve())
        self.acquired = False

    def acquire(self) -> RunLock:
        if self.acquired:
            return self
        if self.key in _HELD:
            fh, n = _HELD[self.key]
            _HELD[self.key] = (fh, n + 1)
            self.acquired = True
            return self
        path = self.run_dir / LOCK_FILE
        fh = path.open("a+", encoding="utf-8")
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock, as before
            fcntl = None  # type: ignore[assignment]
        if fcntl is not None:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.seek(0)
                holder = fh.read().strip()
                fh.close()
                try:
                    info = json.loads(holder)
                    who = f"process {info.get('pid')} on {info.get('host')} ({info.get('command')})"
                except ValueError:
                    who = "another process"
                raise RunDirError(
                    f"run directory {self.run_dir} is in use by {who}: wait for it to finish or choose another --out"
                ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                    "command": " ".join(sys.argv[:6])[:200],
                }
            )
        )
        fh.flush()
        _HELD[self.key] = (fh, 1)
        self.acquired = True
        return self

    def release(self) -> None:
        if not self.acquired:
            return
        self.acquired = False
        fh, n = _HELD[self.key]
        if n > 1:
            _HELD[self.key] = (fh, n - 1)
            return
        del _HELD[self.key]
        with contextlib.suppress(OSError):
            fh.seek(0)
            fh.truncate()
        fh.close()  # closing the descriptor releases the flock

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def clear(run_dir: Path) -> list[str]:
    """Remove an earlier run's files (the response cache keeps every computed answer)."""
    removed = []
    for name in RUN_FILES:
        p = run_dir / name
        if p.exists():
            with contextlib.suppress(OSError):
                p.unlink()
                removed.append(name)
    return removed
