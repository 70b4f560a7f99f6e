"""A stress set for BLEnD's soft match, built from the real release's annotations (read from
``../shared``, never stored here): for each language, answers against responses that contain them
inflected, partly, among other text, or not at all. Standard library only: the script that ran the
official ``lemma_check`` on it outside the repository imports this file too."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

#: country file -> BLEnD language name (as exact_match.py spells it) and culturelens code
LANGUAGES = {
    "Northern_Nigeria": ("Hausa", "ha"),
    "Indonesia": ("Indonesian", "id"),
    "Algeria": ("Arabic", "ar"),
    "China": ("Chinese", "zh"),
}
#: inflections that a stemmer or lemmatiser should undo (prefix, suffix) per language
_INFLECT = {
    "ha": [("", "n"), ("", "r"), ("", "-"), ("", " ne")],
    "id": [("di", ""), ("", "nya"), ("me", "kan"), ("", "-" + "an")],
    "ar": [("ال", ""), ("", "ات"), ("و", ""), ("", "ة")],
    "zh": [("", "的"), ("吃", ""), ("", "了"), ("", "")],
}


def stress_pairs(annotations: Path, per_language: int = 150) -> list[tuple[str, str, str]]:
    """``(language code, answer, response)`` triples, deterministic for a given release."""
    out: list[tuple[str, str, str]] = []
    for country, (_, code) in LANGUAGES.items():
        data = json.loads((annotations / f"{country}_data.json").read_text(encoding="utf-8"))
        answers: list[list[str]] = []
        for qid in sorted(data):
            local = [
                a for agg in data[qid].get("annotations", []) for a in agg.get("answers", []) if a.strip()
            ]
            if local:
                answers.append(local)
        pairs = []
        for i, group in enumerate(answers):
            h = int(hashlib.sha256(f"{code}:{i}".encode()).hexdigest()[:8], 16)
            ans = group[h % len(group)]
            other = answers[(i + 1 + h % 7) % len(answers)]
            pre, suf = _INFLECT[code][h % len(_INFLECT[code])]
            words = ans.split()
            kind = h % 7
            if kind == 0:  # every word inflected, in a sentence
                resp = " ".join(f"{pre}{w}{suf}" for w in words) + " " + other[0]
            elif kind == 1:  # another annotator's answer to the same question
                resp = group[(h // 5) % len(group)]
            elif kind == 2:  # only the first word, inflected
                resp = f"{other[0]} {pre}{words[0]}{suf}."
            elif kind == 3:  # another question's answer
                resp = " ".join(other)
            elif kind == 4:  # the answer's words reordered with punctuation between
                resp = ", ".join(reversed(words)) + "!"
            else:  # the answer inflected, the response in base form: only a lemmatiser can match
                infl = " ".join(f"{pre}{w}{suf}" for w in words)
                resp = f"{other[0]} {ans}" if kind == 5 else f"{ans}"
                pairs.append((code, infl, resp.lower()))
                continue
            pairs.append((code, ans, resp.lower()))
        out.extend(pairs[:per_language])
    return out
