"""Hofstede's Values Survey Module 2013: which items make each index, and the index formulas (pure math)."""

from __future__ import annotations

from collections.abc import Mapping

#: index = sum of weight * (m[first] - m[second]) + C  (VSM 2013 Manual, section 6)
VSM_FORMULAS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "PDI": ((35, 7, 2), (25, 20, 23)),
    "IDV": ((35, 4, 1), (35, 9, 6)),
    "MAS": ((35, 5, 3), (35, 8, 10)),
    "UAI": ((40, 18, 15), (25, 21, 24)),
    "LTO": ((40, 13, 14), (25, 19, 22)),
    "IVR": ((35, 12, 11), (40, 17, 16)),
}
#: dimension -> the item numbers its formula uses
VSM_DIMENSIONS: dict[str, tuple[int, ...]] = {
    dim: tuple(sorted({t[1] for t in f} | {t[2] for t in f})) for dim, f in VSM_FORMULAS.items()
}


def vsm_indices(means: Mapping[int, float], constants: Mapping[str, float] | None = None) -> dict[str, float]:
    """The six VSM 2013 indices from item means (items 1..24 on their 1-5 codes).

    The constants C default to 0: they are arbitrary, so only differences between samples
    (countries) carry meaning.
    """
    out = {}
    for dim, terms in VSM_FORMULAS.items():
        missing = [n for t in terms for n in t[1:] if n not in means]
        if missing:
            raise ValueError(f"{dim} needs item(s) {sorted(set(missing))}")
        value = sum(w * (means[a] - means[b]) for w, a, b in terms)
        out[dim] = float(value + (constants or {}).get(dim, 0.0))
    return out
