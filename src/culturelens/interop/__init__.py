"""Interoperability with the evaluation ecosystem, both ways.

* :mod:`~culturelens.interop.inspect_log`: a run as inspect_ai ``.eval`` logs (``inspect view``,
  ``inspect_ai.analysis.samples_df``); ``culturelens export RUN --format inspect``.
* :mod:`~culturelens.interop.lmeval`: lm-evaluation-harness ``samples_*.jsonl`` re-scored as a
  culturelens run; ``culturelens import FILE... --task TASK --out DIR``.
* :mod:`~culturelens.interop.inspect_import`: inspect ``.eval`` / ``.json`` logs (culturelens's own,
  or another harness's multiple-choice tasks) re-scored as a culturelens run; ``culturelens import``.
* :mod:`~culturelens.interop.rescore`: the common step: foreign answers matched to culturelens
  items, scored by the task's own scorer, written through ``RunLogWriter``.

The importers drive a run (layer 3, like the runner); the exporter reads one (layer 5). Nothing here
is imported by the rest of culturelens, and inspect_ai is imported only when a log is written or read.
"""
