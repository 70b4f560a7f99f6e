"""A self-contained HTML report for one run or a side-by-side comparison of several.

One file, no network: the data, the country shapes, the CSS and the JavaScript are all inlined. The
data travels as JSON in ``<script type="application/json">`` blocks with ``<``, ``>`` and ``&``
escaped, and the page writes it into the DOM with ``textContent`` only, so text from a dataset or a
model (``<script>``, ``<img onerror=...>``) is shown, never run. A Content-Security-Policy that allows
only the page's own script (by hash) and no connections backs this up.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import html
import json
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from culturelens.jsonsafe import json_safe
from culturelens.report.data import build_model

__all__ = ["build_report", "read_samples_block", "render_html", "script_json"]

#: samples JSON larger than this (characters) is embedded gzip-compressed
COMPRESS_OVER = 1_500_000


def script_json(obj: Any) -> str:
    """JSON that is safe inside a ``<script type="application/json">`` element.

    ``<`` cannot open ``</script>`` or ``<!--``; ``>``, ``&`` and the JS line separators are
    escaped too so the text is inert in any HTML or script context.
    """
    text = json.dumps(json_safe(obj), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for ch, esc in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(ch, esc)
    return text


def _asset(name: str) -> str:
    return (resources.files("culturelens.report") / "assets" / name).read_text(encoding="utf-8")


def _human_size(n: int) -> str:
    return f"{n / 1024:.0f} KB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MB"


def render_html(model: dict[str, Any]) -> str:
    """The report page for a report model (see :func:`culturelens.report.data.build_model`)."""
    script = _asset("report.js")
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
    csp = (
        "default-src 'none'; "
        f"script-src 'sha256-{digest}'; "
        "style-src 'unsafe-inline'; img-src 'none'; connect-src 'none'; font-src 'none'; "
        "base-uri 'none'; form-action 'none'"
    )
    labels = ", ".join(r["label"] for r in model["runs"])
    world = json.loads(_asset("world.json"))
    page_model = {k: v for k, v in model.items() if k != "samples"}
    samples_attrs, samples_text = samples_block(model["samples"])
    parts = {
        "{{CSP}}": html.escape(csp, quote=False),  # no double quote in it: safe in a "..." attribute
        "{{TITLE}}": html.escape(f"culturelens report: {labels}"),
        "{{CSS}}": _asset("report.css"),
        "{{DATA}}": script_json(page_model),
        "{{SAMPLES_ATTRS}}": samples_attrs,
        "{{SAMPLES}}": samples_text,
        "{{WORLD}}": script_json(world),
        "{{SCRIPT}}": script,
        "{{SIZE}}": "",
    }
    # one pass, so text inserted for one placeholder is never scanned for another
    pattern = re.compile("|".join(re.escape(k) for k in parts))
    page = _asset("template.html")
    out = pattern.sub(lambda m: parts[m.group(0)], page)
    parts["{{SIZE}}"] = html.escape(
        f"{_human_size(len(out.encode('utf-8')))}, {model['samples']['total']:,} samples"
    )
    return pattern.sub(lambda m: parts[m.group(0)], page)


def samples_block(samples: dict[str, Any]) -> tuple[str, str]:
    """(attributes, content) of the samples' script element: JSON, or gzip+base64 JSON for large runs.

    Browsers inflate it with the built-in DecompressionStream; base64 has no character that could
    end the element, and a small report stays plain JSON that any browser reads.
    """
    text = script_json(samples)
    if len(text) <= COMPRESS_OVER:
        return 'type="application/json"', text
    packed = base64.b64encode(gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)).decode("ascii")
    return 'type="application/octet-stream" data-encoding="gzip+base64"', packed


def read_samples_block(page: str) -> dict[str, Any]:
    """The samples embedded in a report page (for tests and tools)."""
    m = re.search(r'<script ([^>]*)id="report-samples">(.*?)</script>', page, re.S)
    if not m:
        raise ValueError("no samples block in this page")
    if "gzip+base64" in m.group(1):
        return json.loads(gzip.decompress(base64.b64decode(m.group(2))).decode("utf-8"))
    return json.loads(m.group(2))


def build_report(run_dirs: Sequence[Path | str], output: Path | str) -> Path:
    """Write one self-contained HTML report for ``run_dirs`` (several = side-by-side comparison)."""
    dirs = [Path(d) for d in run_dirs]
    model = build_model(dirs)
    text = render_html(model)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_suffix(output.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(output)
    return output
