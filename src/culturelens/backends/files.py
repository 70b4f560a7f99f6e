"""Model files: content hashes that identify a model in cache keys and ``config.json``."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a model file, memoised on (path, size, mtime) so multi-GB files hash once."""
    p = Path(path).resolve()
    st = p.stat()
    memo_path = (
        Path(os.environ.get("CULTURELENS_HOME", Path.home() / ".cache" / "culturelens")) / "file_hashes.json"
    )
    memo_key = f"{p}|{st.st_size}|{st.st_mtime_ns}"
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    if memo_key in memo:
        return memo[memo_key]
    h = hashlib.sha256()
    with p.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    digest = h.hexdigest()
    memo[memo_key] = digest
    try:
        memo_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(memo))
        os.replace(tmp, memo_path)
    except OSError:
        pass
    return digest
