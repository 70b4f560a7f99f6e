"""Fetch and cache official dataset releases.

Shared by the benchmark tasks: a task first looks for a local copy (``--data-dir``, its environment
variable or ``$CULTURELENS_DATA``: :meth:`culturelens.tasks.base.Task.locate`) and only when there is
none downloads the official release with
:func:`fetch_hf_file` (Hugging Face hub) or :func:`fetch_url` (plain HTTPS, e.g. GitHub raw files).
Downloads land under ``~/.cache/culturelens/datasets/`` (``CULTURELENS_DATA_CACHE`` overrides) and
are reused; failures (offline, optional package missing, 404) raise a one-line
:class:`~culturelens.tasks.base.DatasetError` telling the user to pass ``--data-dir``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from culturelens.errors import DatasetError


def cache_root() -> Path:
    env = os.environ.get("CULTURELENS_DATA_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "culturelens" / "datasets"


def _offline() -> bool:
    return os.environ.get("CULTURELENS_OFFLINE", "") not in ("", "0") or os.environ.get(
        "HF_HUB_OFFLINE", ""
    ) not in (
        "",
        "0",
    )


def _hint(what: str) -> str:
    return f"could not download {what}; pass --data-dir DIR pointing at a local copy of the release"


def fetch_hf_file(repo_id: str, filename: str, revision: str | None = None) -> Path:
    """One file of a Hugging Face *dataset* repo, cached locally; returns its path.

    A file already in the cache is used without network access.
    """
    what = f"{filename} from HF dataset {repo_id}" + (f"@{revision}" if revision else "")
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as exc:
        raise DatasetError(
            f"hf://datasets/{repo_id}/{filename}",
            _hint(what) + " (or install huggingface_hub: pip install 'culturelens[datasets]')",
        ) from exc
    target = cache_root() / "hf" / repo_id.replace("/", "__")

    def download(**extra: Any) -> Path:
        return Path(
            hf_hub_download(
                repo_id=repo_id, filename=filename, repo_type="dataset", revision=revision, **extra
            )
        )

    try:  # cached copy first, so a warm cache works offline
        return download(cache_dir=str(target), local_files_only=True)
    except Exception:  # noqa: BLE001 - not cached yet (the hub raises several types)
        pass
    if _offline():
        raise DatasetError(f"hf://datasets/{repo_id}/{filename}", _hint(what) + " (offline mode)")
    try:
        return download(cache_dir=str(target))
    except Exception as exc:  # noqa: BLE001 - network, auth, 404: all mean "not available"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatasetError(f"hf://datasets/{repo_id}/{filename}", f"{_hint(what)} ({reason[:160]})") from exc


def _safe_name(name: str) -> str:
    parts = [re.sub(r"[^A-Za-z0-9._-]+", "_", p) for p in Path(name).parts if p not in ("", ".", "..", "/")]
    if not parts:
        raise ValueError(f"bad cache name {name!r}")
    return str(Path(*parts))


def fetch_url(url: str, dest_name: str, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``<cache>/url/<dest_name>`` once (atomic write) and return the path.

    ``dest_name`` may contain folders (``"blend/data/prompts/US_prompts.csv"``) so a task can
    rebuild the release's layout in the cache.
    """
    dest = cache_root() / "url" / _safe_name(dest_name)
    if dest.exists() and dest.stat().st_size > 0:
        return dest
    if _offline():
        raise DatasetError(url, _hint(url) + " (offline mode)")
    try:
        import httpx
    except ImportError as exc:
        raise DatasetError(url, _hint(url) + " (or install httpx)") from exc
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    try:
        with httpx.stream("GET", url, follow_redirects=True, timeout=timeout) as resp:
            if resp.status_code != 200:
                raise DatasetError(url, _hint(url) + f" (HTTP {resp.status_code})")
            with tmp.open("wb") as fh:
                for chunk in resp.iter_bytes():
                    fh.write(chunk)
    except httpx.HTTPError as exc:
        tmp.unlink(missing_ok=True)
        raise DatasetError(url, f"{_hint(url)} ({type(exc).__name__}: {str(exc)[:120]})") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, dest)
    return dest
