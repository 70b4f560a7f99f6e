"""A general control set: did fine-tuning on cultural pairs cost general ability?

The control is the log-likelihood per byte that a model gives the reference solutions of GSM8K test
problems (grade-school maths word problems with worked solutions, no cultural content), each asked as
one user turn through the model's chat template and scored through culturelens's ``hf`` backend
(:meth:`~culturelens.backends.hf.HFBackend.continuation_logprobs`). A language model that was damaged
by fine-tuning finds fluent general text less likely. Tiny models solve almost none of these problems
when generating, so accuracy would be at the floor before and after; the likelihood of the reference
text moves with general language ability at any size.

GSM8K's ``test.jsonl`` is looked for in ``$CULTURELENS_DATA`` and ``../shared/datasets`` (the copy
inside the Lost-in-Cultural-Translation release), or given as a path.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from culturelens.errors import BackendError

GSM8K_PARTS = ("lost_in_cultural_translation", "gsm8k", "grade_school_math", "data", "test.jsonl")
GSM8K_NAME = "GSM8K test (reference solutions): log-likelihood per byte"


def find_gsm8k(data_root: str | Path | None = None) -> Path | None:
    roots = [data_root, os.environ.get("CULTURELENS_DATA"), Path.cwd().parent / "shared" / "datasets"]
    for root in roots:
        if not root:
            continue
        p = Path(root)
        for cand in (p, p / "test.jsonl", p.joinpath(*GSM8K_PARTS), p.joinpath(*GSM8K_PARTS[1:])):
            if cand.is_file():
                return cand
    return None


def load_control(path: Path, limit: int) -> list[dict[str, str]]:
    """The first ``limit`` problems of a GSM8K-style JSONL file (``question``, ``answer``)."""
    rows = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                raise ValueError(f"{path}, line {lineno}: not valid JSON") from None
            for key in ("question", "answer"):
                if not isinstance(rec.get(key), str) or not rec[key].strip():
                    raise ValueError(f"{path}, line {lineno}: field {key} missing or empty")
            rows.append({"id": f"gsm8k-{lineno}", "question": rec["question"], "answer": rec["answer"]})
            if len(rows) >= limit:
                break
    return rows


def score_control(model: str, rows: list[dict[str, str]], threads: int = 2) -> dict[str, float]:
    """Problem id -> log-likelihood per byte of its reference solution under ``model`` (an hf spec)."""
    from culturelens.backends.hf import HFBackend
    from culturelens.schema import Message, Request

    spec = model.partition(":")[2] if model.startswith("hf:") else "embedded"
    try:
        backend = HFBackend(spec, dtype="float32", n_threads=threads, batch_size=4)
    except BackendError as exc:
        raise ValueError(str(exc)) from None
    try:
        reqs = [
            Request(
                kind="continuations",
                text=backend.format([Message(role="user", content=r["question"])]),
                targets=[r["answer"]],
            )
            for r in rows
        ]
        out: dict[str, float] = {}
        for i in range(0, len(reqs), 8):
            for r, resp in zip(rows[i : i + 8], backend.continuation_logprobs(reqs[i : i + 8]), strict=True):
                lp: Any = (resp.logprobs or [float("nan")])[0]
                out[r["id"]] = float(lp) / max(1, len(r["answer"].encode("utf-8")))
        return out
    finally:
        backend.close()
