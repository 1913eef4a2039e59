"""The optimizers ``dspex demo --optimizer`` runs, with settings that finish offline in seconds.

    >>> sorted(DEMOS)
    ['copro', 'gepa', 'mipro', 'random-search', 'simba']
    >>> DEMOS["gepa"].label
    'GEPA'

Each demo optimizes the bundled ``ArithQA`` program on the offline arithmetic training set
(the dev set is kept for the baseline and final evaluations); where an optimizer wants a
validation set, it gets the last third of the training set.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["DEMOS", "Demo"]


@dataclass(frozen=True)
class Demo:
    label: str
    hypothesis: str
    #: ``run(program, train, lm, steps) -> optimized program``
    run: Callable[[Any, list[Any], Any, int], Any]
    #: (module, DSPy extra) the optimizer needs that DSPy does not install by itself
    needs: tuple[tuple[str, str], ...] = ()

    def check(self) -> None:
        """Raise :class:`dspex.MissingExtraError` naming DSPy's extra when one is missing."""
        from dspex.extras import require

        for module, extra in self.needs:
            require(module, extra, f"DSPy's {self.label}")


def _split(train: list[Any]) -> tuple[list[Any], list[Any]]:
    cut = len(train) * 2 // 3
    return train[:cut], train[cut:]


def _simba(program: Any, train: list[Any], lm: Any, steps: int) -> Any:
    import dspy

    from dspex.offline import exact_match

    optimizer = dspy.SIMBA(
        metric=exact_match, bsize=8, num_candidates=6, max_steps=steps, max_demos=3, num_threads=2
    )
    return optimizer.compile(program, trainset=train, seed=0)


def _gepa(program: Any, train: list[Any], lm: Any, steps: int) -> Any:
    import dspy

    from dspex.offline import exact_match_with_feedback

    fit, val = _split(train)
    optimizer = dspy.GEPA(
        metric=exact_match_with_feedback,
        max_metric_calls=100,
        reflection_lm=lm,
        num_threads=2,
        track_stats=True,
        seed=3,  # three accepted proposals and two rejected ones, then nothing left to fix
    )
    return optimizer.compile(program, trainset=fit, valset=val)


def _mipro(program: Any, train: list[Any], lm: Any, steps: int) -> Any:
    import dspy

    from dspex.offline import exact_match

    fit, val = _split(train)
    optimizer = dspy.MIPROv2(
        metric=exact_match, auto=None, num_candidates=4, num_threads=2, verbose=False, seed=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna's ExperimentalWarning for its TPE sampler
        return optimizer.compile(
            program,
            trainset=fit,
            valset=val,
            num_trials=8,
            minibatch_size=5,
            minibatch_full_eval_steps=3,
            max_bootstrapped_demos=2,
            max_labeled_demos=2,
        )


def _copro(program: Any, train: list[Any], lm: Any, steps: int) -> Any:
    import dspy

    from dspex.offline import exact_match

    optimizer = dspy.COPRO(metric=exact_match, breadth=4, depth=3, init_temperature=1.4)
    return optimizer.compile(
        program, trainset=train, eval_kwargs={"num_threads": 2, "display_progress": False}
    )


def _random_search(program: Any, train: list[Any], lm: Any, steps: int) -> Any:
    import dspy

    from dspex.offline import exact_match

    fit, val = _split(train)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its settings
        optimizer = dspy.BootstrapFewShotWithRandomSearch(
            metric=exact_match,
            max_bootstrapped_demos=3,
            max_labeled_demos=3,
            num_candidate_programs=4,
            num_threads=2,
        )
    return optimizer.compile(program, trainset=fit, valset=val)


DEMOS: dict[str, Demo] = {
    "simba": Demo(
        "SIMBA",
        "SIMBA's rules and demos beat the zero-shot baseline",
        _simba,
        needs=(("numpy", "dspy[numpy]"),),
    ),
    "gepa": Demo(
        "GEPA", "GEPA's reflections on the metric's feedback beat the zero-shot baseline", _gepa
    ),
    "mipro": Demo(
        "MIPROv2",
        "MIPROv2's proposed instructions and demo sets beat the baseline",
        _mipro,
        needs=(("optuna", "dspy[optuna]"), ("numpy", "dspy[numpy]")),
    ),
    "copro": Demo("COPRO", "COPRO's proposed instructions beat the zero-shot baseline", _copro),
    "random-search": Demo(
        "BootstrapFewShotWithRandomSearch",
        "The best of several bootstrapped demo sets beats the zero-shot baseline",
        _random_search,
    ),
}
