"""``ComparisonView``: two trials or two experiments side by side, wherever it is shown.

HTML in notebooks (``_repr_mimebundle_``), rich in a terminal, plain text with ``str``.
Open one with :meth:`dspex.TraceViewer.compare`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dspex.analysis import Comparison
from dspex.view.comparison import ExperimentsSideBySide, TrialsSideBySide

__all__ = ["ComparisonView"]

TEXT_WIDTH = 100


class ComparisonView:
    """Two trials (``trials``) or two experiments (``experiments``) side by side."""

    def __init__(
        self,
        trials: TrialsSideBySide | None = None,
        experiments: ExperimentsSideBySide | None = None,
    ) -> None:
        self.experiments = experiments
        self.trials = (
            trials if trials is not None else (experiments.trials if experiments else None)
        )

    @property
    def comparison(self) -> Comparison | None:
        """The paired statistics (None when the trials were scored on different examples)."""
        return self.trials.comparison if self.trials is not None else None

    def to_html(self) -> str:
        from dspex.view.comparison_html import comparison_html

        return str(comparison_html(self.trials, experiments=self.experiments))

    def to_text(self, width: int = TEXT_WIDTH) -> str:
        from dspex.view.comparison_text import experiments_text, trials_text

        if self.experiments is not None:
            return experiments_text(self.experiments, width=width)
        assert self.trials is not None
        return trials_text(self.trials, width=width)

    def _repr_html_(self) -> str:
        return self.to_html()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/html": self.to_html(), "text/plain": repr(self)}

    def __rich_console__(self, console: Any, options: Any) -> Iterator[Any]:
        from dspex.view.comparison_text import experiments_renderables, trials_renderables

        if self.experiments is not None:
            yield from experiments_renderables(self.experiments)
        elif self.trials is not None:
            yield from trials_renderables(self.trials)

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        if self.trials is None:
            assert self.experiments is not None
            return (
                f"<ComparisonView experiments {self.experiments.a.id} and "
                f"{self.experiments.b.id}: not comparable>"
            )
        a, b = self.trials.a, self.trials.b
        stats = self.comparison.describe() if self.comparison else "not comparable"
        return f"<ComparisonView {a.title} vs {b.title}: {stats}>"
