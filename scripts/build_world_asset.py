"""Build ``src/culturelens/report/assets/world.json``: simplified, pre-projected country outlines.

Source: the npm package ``world-atlas`` 2.0.2 (TopoJSON of Natural Earth 1:110m and 1:50m admin-0
countries; Natural Earth is public domain, world-atlas is ISC-licensed). Run at build time only::

    python scripts/build_world_asset.py            # runs `npm pack world-atlas@2.0.2` in a temp dir
    python scripts/build_world_asset.py PATH       # an unpacked package dir or the .tgz

The output holds one SVG path per country (Equal Earth projection, keyed by ISO 3166-1 alpha-2)
and a marker point for countries too small to see (or absent) at 1:110m, taken from the 1:50m file.
The report embeds it as is, so opening a report never needs the network.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pycountry

VERSION = "2.0.2"
OUT = Path(__file__).resolve().parents[1] / "src" / "culturelens" / "report" / "assets" / "world.json"
WIDTH = 960.0
SIMPLIFY_PX = 0.35  # Douglas-Peucker tolerance in output pixels
MIN_RING_PX2 = 1.5  # drop islands smaller than this (unless a country has nothing else)
SMALL_PX2 = 30.0  # countries smaller than this also get a marker point
# Natural Earth features without an ISO numeric code: shaded with the country they belong to
NO_ID = {
    "Kosovo": "XK",
    "N. Cyprus": "CY",
    "Somaliland": "SO",
    "Indian Ocean Ter.": None,
    "Siachen Glacier": None,
}

# Equal Earth projection (Šavrič, Patterson & Jenny 2018)
A1, A2, A3, A4 = 1.340264, -0.081106, 0.000893, 0.003796
M = math.sqrt(3) / 2


def equal_earth(lon: float, lat: float) -> tuple[float, float]:
    lam, phi = math.radians(lon), math.radians(lat)
    theta = math.asin(M * math.sin(phi))
    t2 = theta * theta
    t6 = t2 * t2 * t2
    x = lam * math.cos(theta) / (M * (A1 + 3 * A2 * t2 + t6 * (7 * A3 + 9 * A4 * t2)))
    y = theta * (A1 + A2 * t2 + t6 * (A3 + A4 * t2))
    return x, y


X_MAX = equal_earth(180, 0)[0]
SCALE = WIDTH / (2 * X_MAX)


def project(lon: float, lat: float) -> tuple[float, float]:
    x, y = equal_earth(lon, lat)
    return (x + X_MAX) * SCALE, -y * SCALE  # y shifted to the top later


def decode_arcs(topo: dict) -> list[list[tuple[float, float]]]:
    sx, sy = topo["transform"]["scale"]
    tx, ty = topo["transform"]["translate"]
    arcs = []
    for arc in topo["arcs"]:
        x = y = 0
        pts = []
        for dx, dy in arc:
            x += dx
            y += dy
            pts.append((x * sx + tx, y * sy + ty))
        arcs.append(pts)
    return arcs


def ring_coords(indices: list[int], arcs: list[list[tuple[float, float]]]) -> list[tuple[float, float]]:
    pts: list[tuple[float, float]] = []
    for i in indices:
        arc = arcs[i] if i >= 0 else arcs[~i][::-1]
        pts.extend(arc if not pts else arc[1:])
    return pts


def _clip(ring: list[tuple[float, float]], inside, cross) -> list[tuple[float, float]]:
    """Sutherland-Hodgman against one meridian."""
    out: list[tuple[float, float]] = []
    for i, cur in enumerate(ring):
        prev = ring[i - 1]
        if inside(cur):
            if not inside(prev):
                out.append(cross(prev, cur))
            out.append(cur)
        elif inside(prev):
            out.append(cross(prev, cur))
    return out


def _at_lon(lon: float):
    def cross(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
        t = (lon - a[0]) / (b[0] - a[0])
        return lon, a[1] + t * (b[1] - a[1])

    return cross


def split_antimeridian(ring: list[tuple[float, float]]) -> list[list[tuple[float, float]]]:
    """A ring that jumps across the 180th meridian (Fiji, Chukotka) becomes pieces on either side."""
    closed = ring + ring[:1]
    if not any(abs(b[0] - a[0]) > 180 for a, b in zip(closed, closed[1:], strict=False)):
        return [ring]
    unwrapped = [ring[0]]
    offset = 0.0
    for lon, lat in ring[1:]:
        d = lon + offset - unwrapped[-1][0]
        if d > 180:
            offset -= 360
        elif d < -180:
            offset += 360
        unwrapped.append((lon + offset, lat))
    pieces = []
    for shift in (-360.0, 0.0, 360.0):
        r = [(lon + shift, lat) for lon, lat in unwrapped]
        r = _clip(r, lambda p: p[0] <= 180, _at_lon(180))
        r = _clip(r, lambda p: p[0] >= -180, _at_lon(-180)) if r else r
        if len(r) >= 3 and abs(area(r)) > 1e-9:
            pieces.append(r)
    return pieces


def polygons(geom: dict) -> list[list[list[int]]]:
    if geom["type"] == "Polygon":
        return [geom["arcs"]]
    if geom["type"] == "MultiPolygon":
        return geom["arcs"]
    return []


def area(pts: list[tuple[float, float]]) -> float:
    return 0.5 * sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1], strict=True))


def centroid(pts: list[tuple[float, float]]) -> tuple[float, float]:
    a = area(pts)
    if abs(a) < 1e-9:
        return sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts)
    cx = cy = 0.0
    for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1], strict=True):
        cross = x0 * y1 - x1 * y0
        cx += (x0 + x1) * cross
        cy += (y0 + y1) * cross
    return cx / (6 * a), cy / (6 * a)


def simplify(pts: list[tuple[float, float]], tol: float) -> list[tuple[float, float]]:
    """Douglas-Peucker on a closed ring (first point kept as anchor)."""
    if len(pts) < 5:
        return pts
    keep = [False] * len(pts)
    keep[0] = keep[-1] = True
    far = max(range(len(pts)), key=lambda i: (pts[i][0] - pts[0][0]) ** 2 + (pts[i][1] - pts[0][1]) ** 2)
    keep[far] = True
    stack = [(0, far), (far, len(pts) - 1)]
    while stack:
        a, b = stack.pop()
        (ax, ay), (bx, by) = pts[a], pts[b]
        dx, dy = bx - ax, by - ay
        norm = math.hypot(dx, dy) or 1e-12
        best, idx = -1.0, -1
        for i in range(a + 1, b):
            d = abs(dy * (pts[i][0] - ax) - dx * (pts[i][1] - ay)) / norm
            if d > best:
                best, idx = d, i
        if idx >= 0 and best > tol:
            keep[idx] = True
            stack.extend([(a, idx), (idx, b)])
    return [p for p, k in zip(pts, keep, strict=True) if k]


def iso2_of(geom: dict) -> str | None:
    name = geom.get("properties", {}).get("name", "")
    if "id" not in geom:
        return NO_ID.get(name)
    c = pycountry.countries.get(numeric=geom["id"])
    return c.alpha_2 if c else None


def path_d(rings: list[list[tuple[float, float]]], y0: float) -> str:
    """Relative SVG path with 1-decimal coordinates (integers in tenths of a pixel)."""
    parts = []
    for ring in rings:
        q = [(round(x * 10), round((y - y0) * 10)) for x, y in ring]
        dedup = [q[0]] + [p for prev, p in zip(q, q[1:], strict=False) if p != prev]
        if len(dedup) < 3:
            continue
        cmds = [f"M{dedup[0][0] / 10:g} {dedup[0][1] / 10:g}"]
        rel = []
        for (x0, y0_), (x1, y1) in zip(dedup, dedup[1:], strict=False):
            rel.append(f"{(x1 - x0) / 10:g} {(y1 - y0_) / 10:g}")
        cmds.append("l" + " ".join(rel).replace(" -", "-") + "z")
        parts.append("".join(cmds))
    return "".join(parts)


def load_package(arg: str | None) -> Path:
    if arg:
        p = Path(arg)
        if p.is_dir():
            return p
        tmp = Path(tempfile.mkdtemp())
        with tarfile.open(p) as tf:
            tf.extractall(tmp, filter="data")
        return tmp / "package"
    tmp = Path(tempfile.mkdtemp())
    subprocess.run(["npm", "pack", f"world-atlas@{VERSION}"], cwd=tmp, check=True, capture_output=True)
    with tarfile.open(tmp / f"world-atlas-{VERSION}.tgz") as tf:
        tf.extractall(tmp, filter="data")
    return tmp / "package"


def main(argv: list[str]) -> None:
    pkg = load_package(argv[1] if len(argv) > 1 else None)
    topo110 = json.loads((pkg / "countries-110m.json").read_text())
    topo50 = json.loads((pkg / "countries-50m.json").read_text())

    shapes: dict[str, list[list[tuple[float, float]]]] = {}
    names: dict[str, str] = {}
    arcs = decode_arcs(topo110)
    for geom in topo110["objects"]["countries"]["geometries"]:
        iso2 = iso2_of(geom)
        if not iso2 or iso2 == "AQ":
            continue
        names.setdefault(iso2, geom["properties"]["name"])
        for poly in polygons(geom):
            for k, ring_idx in enumerate(poly):
                for piece in split_antimeridian(ring_coords(ring_idx, arcs)):
                    ring = [project(lon, lat) for lon, lat in piece]
                    if k == 0 or abs(area(ring)) >= MIN_RING_PX2:  # keep outer rings, drop tiny holes
                        shapes.setdefault(iso2, []).append(ring)

    # marker points: countries missing at 110m (from 50m) and tiny ones
    points: dict[str, tuple[float, float]] = {}
    arcs50 = decode_arcs(topo50)
    for geom in topo50["objects"]["countries"]["geometries"]:
        iso2 = iso2_of(geom)
        if not iso2 or iso2 == "AQ":
            continue
        rings = [
            [project(lon, lat) for lon, lat in piece]
            for poly in polygons(geom)
            for piece in split_antimeridian(ring_coords(poly[0], arcs50))
        ]
        if not rings:
            continue
        total = sum(abs(area(r)) for r in shapes.get(iso2, []))
        if iso2 not in shapes or total < SMALL_PX2:
            names.setdefault(iso2, geom["properties"]["name"])
            points[iso2] = centroid(max(rings, key=lambda r: abs(area(r))))

    ys = [y for rings in shapes.values() for r in rings for _, y in r] + [y for _, y in points.values()]
    y0, y1 = min(ys) - 4, max(ys) + 4
    countries = {}
    for iso2 in sorted(set(shapes) | set(points)):
        entry: dict[str, object] = {"n": names[iso2]}
        rings = [simplify(r, SIMPLIFY_PX) for r in shapes.get(iso2, [])]
        big = [r for r in rings if abs(area(r)) >= MIN_RING_PX2] or sorted(
            rings, key=lambda r: -abs(area(r))
        )[:1]
        if big:
            entry["d"] = path_d(big, y0)
        if iso2 in points:
            x, y = points[iso2]
            entry["p"] = [round(x, 1), round(y - y0, 1)]
        countries[iso2] = entry
    asset = {
        "source": f"Natural Earth 1:110m admin-0 countries (public domain) via world-atlas {VERSION} (ISC); "
        "markers for small countries from 1:50m",
        "projection": "Equal Earth",
        "width": WIDTH,
        "height": round(y1 - y0, 1),
        "countries": countries,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(asset, separators=(",", ":"), ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{OUT}: {OUT.stat().st_size / 1024:.0f} KiB, {len(countries)} countries, {len(points)} markers")


if __name__ == "__main__":
    main(sys.argv)
