"""Hypothesis strategies that build valid dspex records, shared by every test that needs data."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from dspex import (
    ErrorInfo,
    EventKind,
    EventSource,
    ExampleResult,
    Experiment,
    ExperimentStatus,
    Hypothesis,
    HypothesisStatus,
    LMSettings,
    MetricKind,
    OptimizerInfo,
    PredictorVariables,
    ProgramInfo,
    ScoreScope,
    TraceEvent,
    Trial,
    TrialStatus,
    Variables,
    Verdict,
    VerdictOutcome,
    new_id,
)
from dspex.model import summarize

text = st.text(max_size=40)
names = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=20
)
finite = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False)
json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | finite | text
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=12,
)
json_dicts = st.dictionaries(text, json_values, max_size=4)
datetimes = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)

scopes = st.builds(
    ScoreScope,
    name=names,
    fingerprint=names,
    n=st.integers(0, 10_000),
    metric=text,
    kind=st.none() | st.sampled_from(list(MetricKind)),
)
unit = st.floats(0, 1)
verdicts = st.builds(
    Verdict,
    outcome=st.sampled_from(list(VerdictOutcome)),
    alpha=st.floats(0.001, 0.5),
    test=st.sampled_from(["exact McNemar", "Wilcoxon signed-rank"]),
    p_value=unit,
    effect=st.floats(-1, 1),
    effect_size=st.none() | st.floats(-1, 1),
    ci_low=st.none() | st.floats(-1, 1),
    ci_high=st.none() | st.floats(-1, 1),
    ci_method=text,
    n=st.integers(0, 10_000),
    wins=st.integers(0, 100),
    losses=st.integers(0, 100),
    ties=st.integers(0, 100),
    baseline_trial_id=st.builds(lambda: new_id("trl")),
    final_trial_id=st.builds(lambda: new_id("trl")),
    scope=scopes,
    reason=text,
    decided_at=datetimes,
)
hypotheses = st.builds(
    Hypothesis,
    research_question=names,
    prediction=text,
    independent_variables=st.lists(text, max_size=3).map(tuple),
    dependent_variables=st.lists(text, max_size=3).map(tuple),
    type=st.sampled_from(["comparative", "exploratory"]),
    status=st.sampled_from(list(HypothesisStatus)),
    verdict=st.none() | verdicts,
    metadata=json_dicts,
)

errors = st.builds(ErrorInfo, type=names, message=text, traceback=text)


@st.composite
def events(draw, trial_id: str, sequence: int = 0) -> TraceEvent:
    return TraceEvent(
        trial_id=trial_id,
        sequence=sequence,
        timestamp=draw(datetimes),
        monotonic_ns=draw(st.integers(0, 2**62)),
        source=draw(st.sampled_from(list(EventSource))),
        kind=draw(st.sampled_from(list(EventKind))),
        pid=draw(st.integers(0, 2**22)),
        worker=draw(names),
        payload=draw(json_dicts),
    )


example_results = st.builds(
    ExampleResult,
    index=st.integers(0, 10_000),
    inputs=json_dicts,
    labels=json_dicts,
    prediction=st.none() | json_dicts,
    metrics=st.dictionaries(names, finite, max_size=3),
    latency_ms=st.none() | st.floats(0, 1e6),
    tokens=st.integers(0, 10**6),
    cost=st.none() | st.floats(0, 1e3),
    error=st.none() | errors,
    worker=st.none() | names,
)

variables = st.builds(
    Variables,
    predictors=st.dictionaries(
        names,
        st.builds(
            PredictorVariables,
            signature=text,
            instructions=text,
            demos=st.lists(json_dicts, max_size=2).map(tuple),
        ),
        max_size=2,
    ),
    lm=st.none() | st.builds(LMSettings, model=st.none() | text, settings=json_dicts),
)


@st.composite
def trials(draw, experiment_id: str, index: int = 0) -> Trial:
    trial_id = new_id("trl")
    started = draw(datetimes)
    failed = draw(st.booleans())
    return Trial(
        id=trial_id,
        experiment_id=experiment_id,
        index=index,
        name=draw(text),
        parent_trial_ids=tuple(new_id("trl") for _ in range(draw(st.integers(0, 2)))),
        variables=draw(variables),
        example_results=tuple(draw(st.lists(example_results, max_size=3))),
        score=draw(st.none() | finite),
        score_scope=draw(st.none() | scopes),
        status=TrialStatus.FAILED if failed else TrialStatus.OK,
        error=draw(errors) if failed else None,
        started_at=started,
        finished_at=draw(st.none() | st.just(started + timedelta(seconds=1))),
        events=tuple(draw(events(trial_id, i)) for i in range(draw(st.integers(0, 3)))),
        metadata=draw(json_dicts),
    )


@st.composite
def experiments(draw, status: ExperimentStatus | None = None) -> Experiment:
    experiment_id = new_id("exp")
    counter = itertools.count()
    trial_list = [
        draw(trials(experiment_id, next(counter))) for _ in range(draw(st.integers(0, 3)))
    ]
    best = max(
        (t for t in trial_list if t.score is not None and t.status is TrialStatus.OK),
        key=lambda t: t.score,
        default=None,
    )
    return Experiment(
        id=experiment_id,
        name=draw(names),
        hypothesis=draw(st.none() | hypotheses),
        program=ProgramInfo(name=draw(names), class_path=draw(text)),
        optimizer=draw(st.none() | st.builds(OptimizerInfo, name=names, settings=json_dicts)),
        status=status or draw(st.sampled_from(list(ExperimentStatus))),
        created_at=draw(datetimes),
        started_at=draw(st.none() | datetimes),
        completed_at=draw(st.none() | datetimes),
        tags=tuple(draw(st.lists(names, max_size=3, unique=True))),
        trials=tuple(trial_list),
        summary=summarize(trial_list) if trial_list else None,
        best_trial_id=best.id if best else None,
        metadata=draw(json_dicts),
    )
