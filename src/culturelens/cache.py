"""Stage 5: the persistent response cache (SQLite in WAL mode).

The key (see :meth:`Request.key`) covers the backend, the model identity, decoding parameters,
the fully formatted prompt and the request kind (which encodes the scoring mode). Every batch is
committed as soon as it is computed, so a crash loses at most the batch in flight; several
processes may share one file (SQLite locking plus a busy timeout).
"""

from __future__ import annotations

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


class ResponseCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=60.0, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=60000")
        self._db.execute(_SCHEMA)
        self.hits = 0
        self.misses = 0

    def get_many(self, keys: Sequence[str]) -> dict[str, Response]:
        found: dict[str, Response] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(f"SELECT key, response FROM responses WHERE key IN ({marks})", chunk)
                for key, payload in rows:
                    resp = Response.model_validate_json(payload)
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
                rows = self._db.execute(f"SELECT key FROM responses WHERE key IN ({marks})", chunk)
                present.update(k for (k,) in rows)
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
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?)", rows)
                self._db.execute("COMMIT")
            except BaseException:
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
