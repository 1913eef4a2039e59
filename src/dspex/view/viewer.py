"""``TraceViewer``: the entry point, stateless, reading a ResultStore.

>>> import dspex
>>> from dspex import TraceViewer
>>> store = dspex.ResultStore.open("memory://")
>>> exp = dspex.Experiment(name="demo", program=dspex.ProgramInfo(name="qa"),
...                        status="completed")
>>> _ = store.archive_experiment(exp)
>>> TraceViewer.view_experiment(exp.id, store=store)
<ExperimentView 'demo' (exp_...)>
>>> TraceViewer.view_experiment(dspex.new_id("exp"), store=store)
Traceback (most recent call last):
...
dspex.errors.ExperimentNotFound: no experiment with id 'exp_...' in this store
"""

from __future__ import annotations

from dspex.ids import validate_id
from dspex.store import ResultStore
from dspex.view.display import ExperimentView, TrialView

__all__ = ["TraceViewer"]


class TraceViewer:
    """Opens experiments and trials of a store as display objects.

    ``store`` defaults to the configured store (:meth:`dspex.ResultStore.default`).
    Unknown ids raise :class:`dspex.ExperimentNotFound` or :class:`dspex.TrialNotFound`;
    malformed ones :class:`dspex.InvalidIdError`.
    """

    @staticmethod
    def view_experiment(experiment_id: str, store: ResultStore | None = None) -> ExperimentView:
        """The experiment view of ``experiment_id``."""
        store = store or ResultStore.default()
        return ExperimentView(store.get_experiment(experiment_id))

    @staticmethod
    def view_trial(
        experiment_id: str, trial_id: str, store: ResultStore | None = None
    ) -> TrialView:
        """The unified timeline of one trial (its experiment is read to find the parent)."""
        validate_id(trial_id, "trl")
        store = store or ResultStore.default()
        experiment = store.get_experiment(experiment_id)
        return TrialView(experiment, experiment.trial(trial_id))
