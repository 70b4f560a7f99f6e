"""Stage 5: the persistent response cache (SQLite in WAL mode).

The key (see :meth:`Request.key`) covers the backend, the model identity, decoding parameters,
the fully formatted prompt and the request kind (which encodes the scoring mode). Every batch is
committed as soon as it is computed, so a crash loses at most the batch in flight; several
processes may share one file (SQLite locking plus a busy timeout).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from culturelens.schema import Response

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    kind TEXT NOT NULL,
    response TEXT NOT NULL,
    created REAL NOT NULL
)
"""


class CacheError(ValueError):
    """The cache file cannot be used. One line naming the file and what to do."""


def _damaged(path: Path, exc: BaseException | str) -> CacheError:
    return CacheError(
        f"response cache {path} is damaged ({exc}): move it aside (mv {path} {path}.bad) "
        "and re-run; answers in it will be computed again"
    )


class ResponseCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        if self.path.is_dir():
            raise CacheError(f"response cache {self.path} is a directory: give --cache a file path")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheError(
                f"cannot create the folder of response cache {self.path} ({exc.strerror or exc}): "
                "give --cache a writable path"
            ) from None
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, timeout=60.0, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA busy_timeout=60000")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
            cols = [r[1] for r in self._db.execute("PRAGMA table_info(responses)")]
            if cols[:4] != ["key", "model", "kind", "response"]:
                raise sqlite3.DatabaseError(f"table 'responses' has columns {cols}, not a culturelens cache")
            self._db.execute("SELECT key, response FROM responses LIMIT 1").fetchall()
        except sqlite3.OperationalError as exc:
            if "readonly" in str(exc) or "unable to open" in str(exc) or "read-only" in str(exc):
                raise CacheError(
                    f"cannot write response cache {self.path} ({exc}): give --cache a writable file"
                ) from None
            raise _damaged(self.path, exc) from None
        except sqlite3.DatabaseError as exc:
            raise _damaged(self.path, exc) from None
        self.hits = 0
        self.misses = 0

    def _guard(self, exc: sqlite3.Error) -> CacheError:
        if isinstance(exc, sqlite3.OperationalError) and "readonly" in str(exc):
            return CacheError(
                f"cannot write response cache {self.path} ({exc}): give --cache a writable file"
            )
        return _damaged(self.path, exc)

    def get_many(self, keys: Sequence[str]) -> dict[str, Response]:
        found: dict[str, Response] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                marks = ",".join("?" * len(chunk))
                try:
                    rows = self._db.execute(
                        f"SELECT key, response FROM responses WHERE key IN ({marks})", chunk
                    ).fetchall()
                except sqlite3.Error as exc:
                    raise self._guard(exc) from None
                for key, payload in rows:
                    try:
                        resp = Response.model_validate_json(payload)
                    except ValueError as exc:
                        raise _damaged(self.path, f"entry {key[:12]} is not a response: {exc}") from None
                    resp.cached = True
                    found[key] = resp
        self.hits += len(found)
        self.misses += len(set(keys)) - len(found)
        return found

    def missing(self, keys: Sequence[str]) -> set[str]:
        """The keys that have no stored response (reads keys only; counts no hits or misses)."""
        present: set[str] = set()
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                marks = ",".join("?" * len(chunk))
                try:
                    rows = self._db.execute(f"SELECT key FROM responses WHERE key IN ({marks})", chunk)
                    present.update(k for (k,) in rows)
                except sqlite3.Error as exc:
                    raise self._guard(exc) from None
        return set(keys) - present

    def put_many(self, entries: Iterable[tuple[str, str, str, Response]]) -> None:
        """Insert (key, model label, kind, response) rows in one transaction."""
        rows = [
            (key, model, kind, resp.model_dump_json(exclude={"cached"}), time.time())
            for key, model, kind, resp in entries
        ]
        if not rows:
            return
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._guard(exc) from None
            try:
                self._db.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?)", rows)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise self._guard(exc) from None
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def stats(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "entries": self.count()}

    def close(self) -> None:
        with self._lock:
            self._db.close()


def model_label(identity: dict) -> str:
    return json.dumps(identity, sort_keys=True)[:500]
