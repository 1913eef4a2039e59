"""Statistics over records: paired comparisons, hypothesis verdicts, tables for export.

Everything here reads records (:mod:`dspex.model`) and never DSPy objects::

    comparison = dspex.compare(baseline_trial, optimized_trial)   # paired, per example
    verdict = dspex.verdict_of(experiment)                        # validated / rejected / ...

See ``docs/analysis.md`` for the statistics and why they were chosen.
"""

from dspex.analysis.compare import Comparison, ExamplePair, compare
from dspex.analysis.experiments import (
    ExperimentComparison,
    SettingDiff,
    compare_experiments,
    settings_diff,
)
from dspex.analysis.verdict import verdict_of, verdict_pair, with_verdict

__all__ = [
    "Comparison",
    "ExamplePair",
    "ExperimentComparison",
    "SettingDiff",
    "compare",
    "compare_experiments",
    "settings_diff",
    "verdict_of",
    "verdict_pair",
    "with_verdict",
]
