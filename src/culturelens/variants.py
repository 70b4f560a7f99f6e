"""The presentation factors a variant can vary (the fields of :class:`culturelens.schema.Variant`
that ``--vary`` sweeps), shared by the sweep that builds designs and the analyses that decompose them."""

from __future__ import annotations

#: sweepable :class:`~culturelens.schema.Variant` fields, in the order designs and reports list them
FACTORS: tuple[str, ...] = (
    "option_order",
    "labels",
    "template",
    "scale_direction",
    "mode",
    "language",
    "persona",
    "system",
    "few_shot",
    "judge_template",
)
