"""Close the loop: training data from a run's failures, LoRA fine-tuning (DPO / ORPO / SFT), and a
before/after evaluation that tells a gain in culture from a gain in option position.

``culturelens improve --task starter`` (:func:`culturelens.improve.loop.improve`). The modules:
:mod:`~culturelens.improve.data` (pairs, supervised examples, the leak-free split),
:mod:`~culturelens.improve.train` (PEFT + TRL), :mod:`~culturelens.improve.control` (the general
control set), :mod:`~culturelens.improve.analysis` (the paired before/after comparison) and
:mod:`~culturelens.improve.loop` (the driver). Training needs ``pip install 'culturelens[improve]'``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ImproveConfig", "Improved", "improve"]


def __getattr__(name: str) -> Any:  # the driver imports the runner: only when asked for
    if name in __all__:
        from culturelens.improve import loop

        return getattr(loop, name)
    raise AttributeError(name)
