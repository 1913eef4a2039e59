"""Two trials or two experiments side by side as self-contained HTML (notebook and web).

Every string from data goes through Jinja2's autoescape (``templates/compare.html``)::

    >>> from dspex.view.comparison_html import comparison_html
    >>> comparison_html() == ""
    True
"""

from __future__ import annotations

from collections.abc import Callable

from markupsafe import Markup, escape

from dspex.model import Experiment, Trial
from dspex.view.comparison import ExperimentsSideBySide, TrialsSideBySide
from dspex.view.comparison_text import MARKS, prediction_text, short_text, statistics_rows
from dspex.view.html import _environment, _static

__all__ = ["comparison_html"]


def comparison_html(
    view: TrialsSideBySide | None = None,
    *,
    experiments: ExperimentsSideBySide | None = None,
    trial_url: Callable[[Trial], str] | None = None,
    experiment_url: Callable[[Experiment], str] | None = None,
) -> Markup:
    """The side-by-side view of two trials (``view``) or two experiments (``experiments``).

    ``trial_url`` and ``experiment_url`` turn names into links (the web UI passes them).
    """
    if experiments is not None and view is None:
        view = experiments.trials
    if view is None and experiments is None:
        return Markup("")

    def trial_link(trial: Trial, text: str) -> Markup:
        if trial_url is None:
            return escape(text)
        return Markup('<a href="{}">{}</a>').format(trial_url(trial), text)

    def exp_link(experiment: Experiment) -> Markup:
        if experiment_url is None:
            return escape(experiment.name)
        return Markup('<a href="{}">{}</a>').format(experiment_url(experiment), experiment.name)

    html = (
        _environment()
        .get_template("compare.html")
        .render(
            view=view,
            experiments=experiments,
            stats=statistics_rows(view) if view is not None else [],
            marks=MARKS,
            show=lambda value: short_text(value, 200),
            answer=prediction_text,
            trial_link=trial_link,
            exp_link=exp_link,
            css=_static("view.css"),
        )
    )
    return Markup(html)
