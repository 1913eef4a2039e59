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
dspex.errors.ExperimentNotFound: no experiment with id 'exp_...' in memory://
"""

from __future__ import annotations

from dspex.errors import ValidationError
from dspex.ids import validate_id
from dspex.model import Trial
from dspex.store import ResultStore
from dspex.view.compare_view import ComparisonView
from dspex.view.comparison import experiments_side_by_side, trials_side_by_side
from dspex.view.display import ExperimentView, TrialView, read_trial_view
from dspex.view.window import LONG_TRIAL

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
        experiment_id: str,
        trial_id: str,
        store: ResultStore | None = None,
        *,
        offset: int = 0,
        limit: int | None = None,
    ) -> TrialView:
        """The unified timeline of one trial (its experiment is read to find the parent).

        A trial of more than :data:`~dspex.view.window.LONG_TRIAL` events is read a page
        at a time: its first :data:`~dspex.view.window.PAGE_EVENTS` events (the view says
        how many it left out and how to see the next ones). ``offset`` and ``limit`` ask
        for such a page of any trial: events ``offset`` .. ``offset + limit - 1``. An
        offset past the trial's last event raises :class:`dspex.InvalidQueryError`.
        """
        validate_id(trial_id, "trl")
        store = store or ResultStore.default()
        return read_trial_view(store, experiment_id, trial_id, offset=offset, limit=limit)

    @staticmethod
    def compare(
        experiment_a: str,
        trial_a: str | int | None = None,
        experiment_b: str | None = None,
        trial_b: str | int | None = None,
        *,
        store: ResultStore | None = None,
    ) -> ComparisonView:
        """Two trials side by side, or two experiments when no trial is named.

        ``TraceViewer.compare(exp_a, trial_a, exp_b, trial_b)``: trials by row number
        (``12``), candidate number (``"c8"``) or id, as :meth:`dspex.Experiment.trial`, of
        any experiments (``experiment_b`` defaults to ``experiment_a``). The paired
        statistics need both trials scored on the same examples; otherwise the view
        says why and still shows variables, costs and scores.
        ``TraceViewer.compare(exp_a, experiment_b=exp_b)``: the best trial of each on
        their shared example set, and the settings that differ.
        """
        store = store or ResultStore.default()
        # the experiments without their events, then the compared trials with theirs: a
        # trial of more than LONG_TRIAL events is compared by its header and summary
        first = store.get_experiment(experiment_a, events=False)
        second = store.get_experiment(experiment_b, events=False) if experiment_b else first

        def load(trial: Trial) -> Trial:
            if store.count_events(trial.experiment_id, trial.id) > LONG_TRIAL:
                return trial
            return store.get_trial(trial.experiment_id, trial.id)

        if trial_a is None and trial_b is None:
            if second.id == first.id:
                raise ValidationError(
                    "name two trials to compare within one experiment, or two experiments: "
                    "TraceViewer.compare(exp_a, trial_a, exp_b, trial_b)"
                )
            return ComparisonView(experiments=experiments_side_by_side(first, second, load=load))
        if trial_a is None or trial_b is None:
            raise ValidationError(
                "name both trials (trial_a and trial_b), or neither to compare the experiments"
            )
        return ComparisonView(
            trials_side_by_side(
                first, load(first.trial(trial_a)), second, load(second.trial(trial_b))
            )
        )
