"""Synthetic WVS Wave 7 answers for WorldValuesBench's real probe design (read from ``../shared``),
and scripted SCORE strings for every probe row. Nothing here is real survey data: the raw WVS file
is not redistributable, so the official ``data_preparation.py`` and ``evaluate.py`` were run outside
the repository on this file instead. Standard library only; that script imports this module too.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from pathlib import Path

#: SCORE strings a model might put in "answer as a score": in scale, out of scale, decimals,
#: exponents, blanks and signs, words, empty, not-a-number, non-ASCII digits, a thousands comma
SCORE_POOL = (
    "{lo}", "{hi}", "{mid}", "{mid}", "{lo1}",
    "{hi1}", "0", "99", "-1", "-2",
    "3.7", "2.0", "1e0", " 4 ", "+3",
    ".5", "abc", "", "nan", "\u0663",
    "1,5", "4.", "  ", "2 of 4", "0x3",
)  # fmt: skip
#: share of non-probed cells left missing (negative WVS codes)
MISSING = 0.05


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def probe(root: Path) -> list[dict[str, str]]:
    return _rows(root / "WorldValuesBench" / "probe" / "samples.tsv")


def write_raw(root: Path, out: Path, seed: int = 7) -> str:
    """Write a raw WVS-7-like CSV (every variable of ``question_metadata.json``, one row per probed
    respondent) and return its SHA-256. Probed cells always hold an in-scale answer (the release
    probed only respondents who answered); other value cells are missing now and then."""
    meta = json.loads((root / "dataset_construction" / "question_metadata.json").read_text(encoding="utf-8"))
    adjust = json.loads(
        (root / "dataset_construction" / "answer_adjustment.json").read_text(encoding="utf-8")
    )
    codebook = json.loads((root / "dataset_construction" / "codebook.json").read_text(encoding="utf-8"))
    rows = probe(root)
    asked: dict[str, set[str]] = {}
    for r in rows:
        asked.setdefault(r["D_INTERVIEW"], set()).add(r["Question"])
    rng = random.Random(seed)
    cols = list(meta)
    with out.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(cols)
        for rid in sorted(asked, key=int):
            row = []
            for q in cols:
                info = meta[q]
                if q == "D_INTERVIEW":
                    row.append(rid)
                elif q == "B_COUNTRY":
                    row.append(str(int(rid) // 1_000_000))
                elif info.get("answer_data_type") == "ordinal" and info.get("answer_scale_min") != "":
                    lo, hi = int(info["answer_scale_min"]), int(info["answer_scale_max"])
                    keys = [k for k, v in (adjust.get(q) or {}).items() if v != "" and lo <= int(v) <= hi]
                    if q not in asked[rid] and rng.random() < MISSING:
                        row.append(str(rng.choice((-1, -2, -4, -5))))
                    elif keys:
                        row.append(rng.choice(keys))
                    else:
                        row.append(str(rng.randint(lo, hi)))
                else:
                    choices = [
                        k for k in ((codebook.get(q) or {}).get("choices") or {}) if not k.startswith("-")
                    ]
                    row.append(rng.choice(choices) if choices else str(rng.randint(1, 9)))
            w.writerow(row)
    return hashlib.sha256(out.read_bytes()).hexdigest()


def scores(root: Path, seed: int = 11) -> list[tuple[str, str, str]]:
    """``(question id, respondent id, SCORE string)`` for every probe row, in the probe's order."""
    meta = json.loads((root / "dataset_construction" / "question_metadata.json").read_text(encoding="utf-8"))
    rng = random.Random(seed)
    out = []
    for r in probe(root):
        q = r["Question"]
        lo, hi = int(meta[q]["answer_scale_min"]), int(meta[q]["answer_scale_max"])
        said = rng.choice(SCORE_POOL).format(lo=lo, hi=hi, mid=(lo + hi) // 2, lo1=lo - 1, hi1=hi + 1)
        out.append((q, r["D_INTERVIEW"], said))
    return out
