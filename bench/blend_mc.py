"""Build 4-option multiple-choice items from the BLEnD short-answer annotations (for the benchmark).

For one (question, region) pair the gold option is the region's top annotator answer (English form);
the three distractors are other regions' top answers to the same question that none of this region's
annotators gave. Pairs the BLEnD authors skip (too many "no answer"/"idk") or that lack three such
distractors are left out. Items are written in the starter-suite JSONL format
(``culturelens.tasks.starter.read_jsonl_items``), so ``culturelens run --task starter --data-dir FILE``
evaluates them. Stdlib only: the lm-eval venv and the main venv can both import it.

    python bench/blend_mc.py --out items.jsonl [--items N] [--data ../shared/datasets/blend]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
from collections.abc import Iterator
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "blend"

#: file stem -> country name understood by culturelens.countries.normalize_country
REGIONS = {
    "Algeria": "Algeria", "Assam": "Assam", "Azerbaijan": "Azerbaijan", "China": "China",
    "Ethiopia": "Ethiopia", "Greece": "Greece", "Indonesia": "Indonesia", "Iran": "Iran",
    "Mexico": "Mexico", "North_Korea": "North Korea", "Northern_Nigeria": "Northern Nigeria",
    "South_Korea": "South Korea", "Spain": "Spain", "UK": "UK", "US": "US", "West_Java": "West Java",
}  # fmt: skip


def _norm(text: str) -> str:
    return " ".join(text.casefold().replace("-", " ").split())


def _rng(*parts: str) -> random.Random:
    digest = hashlib.sha256("\x00".join(parts).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _skipped(entry: dict) -> bool:
    """The BLEnD authors' rule: too many unanswerable votes, or no annotation at all."""
    idks = entry.get("idks") or {}
    unanswerable = idks.get("no-answer", 0) + idks.get("not-applicable", 0)
    return not entry.get("annotations") or unanswerable >= 3 or idks.get("idk", 0) >= 5


def _top_answer(entry: dict) -> str | None:
    """English form of the most-voted answer cluster (the first listed wins ties)."""
    best = max(entry["annotations"], key=lambda a: a.get("count", 0))  # max keeps the first on ties
    texts = [t.strip() for t in best.get("en_answers") or best.get("answers") or [] if t.strip()]
    return texts[0] if texts else None


def _all_answers(entry: dict) -> set[str]:
    return {
        _norm(t) for a in entry["annotations"] for t in (a.get("en_answers") or []) + (a.get("answers") or [])
    }


def load_regions(root: Path) -> dict[str, tuple[dict, dict[str, str]]]:
    """stem -> (annotations keyed by question id, question id -> topic)."""
    out = {}
    for stem in REGIONS:
        ann_path = root / "data" / "annotations" / f"{stem}_data.json"
        if not ann_path.exists():
            continue
        data = json.loads(ann_path.read_text(encoding="utf-8"))
        topics: dict[str, str] = {}
        q_path = root / "data" / "questions" / f"{stem}_questions.csv"
        if q_path.exists():
            with q_path.open(encoding="utf-8", newline="") as fh:
                topics = {row["ID"]: row["Topic"] for row in csv.DictReader(fh) if row.get("ID")}
        out[stem] = (data, topics)
    if not out:
        raise FileNotFoundError(f"no BLEnD annotation files under {root / 'data' / 'annotations'}")
    return out


def build_items(
    root: Path = DEFAULT_DATA, limit: int | None = None, seed: str = "blend-mc"
) -> Iterator[dict]:
    """Yield items round-robin across regions (each region's questions in a seeded order), so any
    prefix of the stream covers every region and mixes questions."""
    regions = load_regions(root)
    tops: dict[str, dict[str, str]] = {}  # question id -> region -> top answer
    for stem, (data, _) in regions.items():
        for qid, entry in data.items():
            if not _skipped(entry) and (top := _top_answer(entry)):
                tops.setdefault(qid, {})[stem] = top

    def region_items(stem: str) -> Iterator[dict]:
        data, topics = regions[stem]
        qids = sorted(data)
        _rng(seed, stem).shuffle(qids)
        for qid in qids:
            entry = data[qid]
            gold = tops.get(qid, {}).get(stem)
            if gold is None:
                continue
            own = _all_answers(entry) | {_norm(gold)}
            pool: dict[str, str] = {}
            for other, answer in sorted(tops[qid].items()):
                if other != stem and _norm(answer) not in own:
                    pool.setdefault(_norm(answer), answer)
            if len(pool) < 3:
                continue
            rng = _rng(seed, stem, qid)
            options = [gold, *rng.sample(sorted(pool.values()), 3)]
            rng.shuffle(options)
            yield {
                "id": f"{stem}/{qid}",
                "kind": "multiple_choice",
                "country": REGIONS[stem],
                "topic": topics.get(qid, "unknown"),
                "question": entry.get("en_question") or entry.get("question"),
                "options": options,
                "answer": options.index(gold),
                "language": "en",
            }

    streams = [region_items(stem) for stem in regions]
    made = 0
    while streams and (limit is None or made < limit):
        for stream in list(streams):
            item = next(stream, None)
            if item is None:
                streams.remove(stream)
                continue
            yield item
            made += 1
            if limit is not None and made >= limit:
                return


def write_items(path: Path, root: Path = DEFAULT_DATA, limit: int | None = None) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        for item in build_items(root, limit):
            fh.write(json.dumps(item, ensure_ascii=False) + "\n")
            n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--items", type=int, default=None, help="at most N items (default: all)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = ap.parse_args()
    n = write_items(args.out, args.data, args.items)
    print(f"{n} items -> {args.out}")


if __name__ == "__main__":
    main()
