"""``/compare``: two trials or two experiments side by side, picked from tables.

    /compare?a=EXP:TRIAL&b=EXP:TRIAL    two trials (trial ids or indices), any experiments
    /compare?a=EXP&b=EXP                two experiments: their best trials on the shared set
    /compare, /compare?a=EXP            tables to pick from (experiments, then their trials)

Each side is ``EXP`` or ``EXP:TRIAL``. The picker is a GET form of radio buttons, one
table per side: the experiments when that side has none yet, else its trials; it works
without JS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup

from dspex.errors import InvalidIdError, InvalidQueryError
from dspex.ids import validate_id
from dspex.model import Experiment, Trial, scope_of
from dspex.model.trialref import find_trial
from dspex.store import ExperimentSummary, ResultStore
from dspex.view.comparison import experiments_side_by_side, trials_side_by_side
from dspex.view.comparison_html import comparison_html

__all__ = ["Ref", "compare_context", "compare_url", "parse_ref"]

PICK_LIMIT = 100
"""Experiments listed in a picker (the newest)."""


@dataclass(frozen=True)
class Ref:
    """One side: an experiment, and optionally one of its trials (id or index)."""

    experiment_id: str
    trial: str | None = None

    @property
    def text(self) -> str:
        return self.experiment_id + (f":{self.trial}" if self.trial else "")


def parse_ref(value: str | None, side: str) -> Ref | None:
    """``EXP`` or ``EXP:TRIAL``; :class:`InvalidQueryError` naming the side otherwise."""
    if not value:
        return None
    experiment_id, _, trial = value.strip().partition(":")
    try:
        validate_id(experiment_id, "exp")
        if trial and not trial.isdigit():
            validate_id(trial, "trl")
    except InvalidIdError as exc:
        raise InvalidQueryError(
            f"compare side {side}={value!r} is not EXP or EXP:TRIAL (an experiment id, then "
            f"a trial id or index): {exc}"
        ) from exc
    return Ref(experiment_id, trial or None)


def compare_url(root: str, a: Trial, b: Trial) -> str:
    """The page that compares trials ``a`` and ``b``."""
    query = urlencode({"a": f"{a.experiment_id}:{a.id}", "b": f"{b.experiment_id}:{b.id}"})
    return f"{root}/compare?{query}"


def compare_context(
    store: ResultStore,
    read: Callable[[str], Experiment],
    a: Ref | None,
    b: Ref | None,
    *,
    root: str,
    load: Callable[[Trial], Trial] | None = None,
) -> dict[str, Any]:
    """What ``compare_page.html`` shows: the comparison (if both sides are set) and pickers.

    ``read`` may give experiments without their events (``get_experiment(id,
    events=False)``): ``load`` then gives the two compared trials with theirs (or, for a
    long trial, as they are: the comparison says what it could not compare)."""
    fill = load or (lambda trial: trial)
    exp_a = read(a.experiment_id) if a else None
    exp_b = read(b.experiment_id) if b else None

    def trial_url(t: Trial) -> str:
        return f"{root}/experiments/{t.experiment_id}/trials/{t.id}"

    def experiment_url(e: Experiment) -> str:
        return f"{root}/experiments/{e.id}"

    title, content = "Compare", Markup("")
    if a and b and exp_a and exp_b and a.trial and b.trial:
        view = trials_side_by_side(
            exp_a, fill(find_trial(exp_a, a.trial)), exp_b, fill(find_trial(exp_b, b.trial))
        )
        content = comparison_html(view, trial_url=trial_url, experiment_url=experiment_url)
        title = f"{view.a.title} vs {view.b.title}"
    elif a and b and exp_a and exp_b and not a.trial and not b.trial and exp_a.id != exp_b.id:
        sides = experiments_side_by_side(exp_a, exp_b, load=load)
        content = comparison_html(
            experiments=sides, trial_url=trial_url, experiment_url=experiment_url
        )
        title = f"{exp_a.name} vs {exp_b.name}"
    summaries: list[ExperimentSummary] = []
    if exp_a is None or exp_b is None:
        summaries = list(store.query_experiments({"limit": PICK_LIMIT}))
    return {
        "title": title,
        "comparison": content,
        "sides": [_side("a", exp_a, a, summaries), _side("b", exp_b, b, summaries)],
        "root": root,
    }


def _side(
    name: str, experiment: Experiment | None, ref: Ref | None, summaries: list[ExperimentSummary]
) -> dict[str, Any]:
    if experiment is None:
        return {"name": name, "experiment": None, "experiments": summaries, "trials": []}
    chosen = _chosen(experiment, ref)
    trials = [
        {
            "trial": t,
            "scope": scope_of(t),
            "value": f"{experiment.id}:{t.id}",
            "checked": t.id == chosen,
        }
        for t in sorted(experiment.trials, key=lambda t: t.index)
    ]
    return {
        "name": name,
        "experiment": experiment,
        "experiments": [],
        "trials": trials,
        "best_checked": chosen is None,
    }


def _chosen(experiment: Experiment, ref: Ref | None) -> str | None:
    if ref is None or ref.trial is None:
        return None
    return find_trial(experiment, ref.trial).id
