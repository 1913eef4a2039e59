"""A deterministic offline LM and a small bundled dataset for demos and tests.

>>> import dspy, dspex
>>> train, dev = dspex.offline.load_arith()
>>> with dspy.context(lm=dspex.offline_lm()):
...     dspy.Predict("question -> answer")(question="What is 9 * 7?").answer
'63'

See ``docs/offline-lm.md``.
"""

from dspex.offline.datasets import exact_match, exact_match_with_feedback, load_arith, load_rows
from dspex.offline.lm import AsyncOfflineEngine, OfflineEngine, offline_lm
from dspex.offline.programs import ArithQA
from dspex.offline.tasks import RULES

__all__ = [
    "RULES",
    "ArithQA",
    "AsyncOfflineEngine",
    "OfflineEngine",
    "exact_match",
    "exact_match_with_feedback",
    "load_arith",
    "load_rows",
    "offline_lm",
]
