"""Trials: one candidate program evaluated on a set of examples."""

from __future__ import annotations

import functools
import hashlib
import json
import weakref
from collections.abc import Iterable
from enum import StrEnum

from pydantic import Field, model_validator

from dspex.ids import new_id
from dspex.model._base import ExperimentId, JsonDict, Record, TrialId, UtcDatetime
from dspex.model.event import TraceEvent
from dspex.model.eventsummary import EventSummary, summarize_events

__all__ = [
    "ErrorInfo",
    "ExampleResult",
    "LMSettings",
    "MetricKind",
    "PredictorVariables",
    "ScoreScope",
    "Trial",
    "TrialStatus",
    "Variables",
    "example_key",
    "examples_fingerprint",
    "trusted_example_result",
]


class TrialStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    """The process recording it ended before the trial did (killed, crashed); its events
    up to the end were recovered from the write-ahead spool (``dspex store recover``)."""


class ErrorInfo(Record):
    """An exception, kept as data: its type, message and formatted traceback."""

    type: str = Field(min_length=1)
    message: str = ""
    traceback: str = ""

    @classmethod
    def from_exception(cls, exc: BaseException) -> ErrorInfo:
        import traceback

        return cls(
            type=f"{type(exc).__module__}.{type(exc).__qualname__}",
            message=str(exc),
            traceback="".join(traceback.format_exception(exc)),
        )


class PredictorVariables(Record):
    """What one predictor of the program runs with: its instructions and demos."""

    signature: str = ""
    instructions: str = ""
    demos: tuple[JsonDict, ...] = ()


class LMSettings(Record):
    """The language model in effect and its settings (temperature, max_tokens, ...)."""

    model: str | None = None
    settings: JsonDict = Field(default_factory=dict)


class Variables(Record):
    """The configuration in effect for a trial, keyed by predictor name (``qa.predict``)."""

    predictors: dict[str, PredictorVariables] = Field(default_factory=dict)
    lm: LMSettings | None = None


class ExampleResult(Record):
    """How the trial's program did on one example."""

    index: int = Field(ge=0)
    inputs: JsonDict = Field(default_factory=dict)
    labels: JsonDict = Field(default_factory=dict)
    prediction: JsonDict | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    latency_ms: float | None = Field(default=None, ge=0)
    tokens: int = Field(default=0, ge=0)
    cost: float | None = Field(default=None, ge=0)
    error: ErrorInfo | None = None
    worker: str | None = None


_new_result = ExampleResult.__new__
_RESULT_FIELDS = frozenset(ExampleResult.model_fields)


def trusted_example_result(
    *,
    index: int,
    inputs: JsonDict,
    labels: JsonDict,
    prediction: JsonDict | None,
    metrics: dict[str, float],
    latency_ms: float | None,
    tokens: int,
    cost: float | None,
    error: ErrorInfo | None,
    worker: str | None,
) -> ExampleResult:
    """An ExampleResult built without validating its JSON fields, for dspex's scoring only.

    ``inputs``, ``labels`` and ``prediction`` must be JSON data already (made by
    ``jsonable``): validating them again cost more than the rest of scoring an example.
    The other fields are checked here, cheaply; when one is not exactly of its type and
    range (an int latency, a negative cost, a metric that is not a float), the result is
    built by the validating constructor instead, with its conversions and its errors. The
    result equals, and serializes exactly like, ``ExampleResult(**fields)``::

        >>> fields = dict(index=0, inputs={"q": "2+2?"}, labels={"a": "4"},
        ...               prediction={"a": "4"}, metrics={"em": 1.0}, latency_ms=1.5,
        ...               tokens=55, cost=None, error=None, worker="worker-1")
        >>> trusted_example_result(**fields) == ExampleResult(**fields)
        True
    """
    if not (
        type(index) is int
        and index >= 0
        and type(tokens) is int
        and tokens >= 0
        and (latency_ms is None or (type(latency_ms) is float and latency_ms >= 0))
        and (cost is None or (type(cost) is float and cost >= 0))
        and (worker is None or type(worker) is str)
        and (error is None or type(error) is ErrorInfo)
        and type(metrics) is dict
        and all(type(k) is str and type(v) is float for k, v in metrics.items())
        and type(inputs) is dict
        and type(labels) is dict
        and (prediction is None or type(prediction) is dict)
    ):
        return ExampleResult(
            index=index,
            inputs=inputs,
            labels=labels,
            prediction=prediction,
            metrics=metrics,
            latency_ms=latency_ms,
            tokens=tokens,
            cost=cost,
            error=error,
            worker=worker,
        )
    result = _new_result(ExampleResult)
    object.__setattr__(
        result,
        "__dict__",
        {
            "index": index,
            "inputs": inputs,
            "labels": labels,
            "prediction": prediction,
            "metrics": metrics,
            "latency_ms": latency_ms,
            "tokens": tokens,
            "cost": cost,
            "error": error,
            "worker": worker,
        },
    )
    object.__setattr__(result, "__pydantic_fields_set__", _RESULT_FIELDS)
    object.__setattr__(result, "__pydantic_extra__", None)
    object.__setattr__(result, "__pydantic_private__", None)
    return result


def example_key(inputs: JsonDict, labels: JsonDict) -> str:
    """A stable key of one example: the hash of its inputs and labels as recorded.

    >>> example_key({"question": "2+2?"}, {"answer": "4"})
    '1b6503d9c25be673'
    """
    text = json.dumps([inputs, labels], sort_keys=True, ensure_ascii=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def examples_fingerprint(keys: Iterable[str]) -> str:
    """The fingerprint of a set of examples (their :func:`example_key` values, any order).

    Two scores are comparable only when their example sets have the same fingerprint.
    """
    joined = "\n".join(sorted(keys))
    return "ex_" + hashlib.sha256(joined.encode()).hexdigest()[:16]


class MetricKind(StrEnum):
    """The values a metric takes, which decides the confidence interval of its mean."""

    BINARY = "binary"  # 0 or 1: Wilson score interval
    BOUNDED = "bounded"  # anywhere in [0, 1]: bootstrap interval
    UNBOUNDED = "unbounded"  # any real number: Student's t interval


class ScoreScope(Record):
    """What a trial's score was measured on: which examples, how many, with which metric.

    ``name`` is for people (``dev``, ``train``, ``minibatch``, ``full``);
    ``fingerprint`` (see :func:`examples_fingerprint`) decides comparability. ``kind``
    declares the metric's values (None: read them from the example results).

    >>> a = ScoreScope(name="dev", fingerprint="ex_1", n=20, metric="exact_match")
    >>> a.comparable_with(a.replace(name="holdout")), a.label
    (True, 'dev (n=20)')
    >>> a.comparable_with(a.replace(fingerprint="ex_2"))
    False
    """

    name: str = Field(min_length=1)
    fingerprint: str = Field(min_length=1)
    n: int = Field(ge=0)
    metric: str = ""
    kind: MetricKind | None = None

    def comparable_with(self, other: ScoreScope | None) -> bool:
        return (
            other is not None
            and self.fingerprint == other.fingerprint
            and self.metric == other.metric
        )

    @property
    def key(self) -> str:
        """``<fingerprint>:<metric>``: equal keys, comparable scores (the ``scope`` filter)."""
        return f"{self.fingerprint}:{self.metric}"

    @property
    def label(self) -> str:
        """A short name for people: ``dev (n=20)``."""
        return f"{self.name} (n={self.n})"

    @classmethod
    def of_results(
        cls,
        results: Iterable[ExampleResult],
        *,
        name: str,
        metric: str,
        kind: MetricKind | None = None,
    ) -> ScoreScope:
        """The scope of a score computed over ``results`` (their inputs and labels as recorded)."""
        keys = [example_key(r.inputs, r.labels) for r in results]
        return cls(
            name=name,
            fingerprint=examples_fingerprint(keys),
            n=len(keys),
            metric=metric,
            kind=kind,
        )


_NO_EVENTS = EventSummary()
_SUMMARIES: dict[int, tuple[weakref.ref[Trial], EventSummary]] = {}
"""Summaries computed from trials' events, by trial object (records never change; an
entry goes with its trial)."""


def _forget(key: int, _: object) -> None:
    _SUMMARIES.pop(key, None)


class Trial(Record):
    """One candidate program, evaluated: its variables, results, score and timeline.

    ``parent_trial_ids`` names the candidates it was derived from (empty for a
    baseline). ``events`` are ordered by ``sequence``.
    """

    id: TrialId = Field(default_factory=lambda: new_id("trl"))
    experiment_id: ExperimentId
    index: int = Field(ge=0)
    name: str = ""
    parent_trial_ids: tuple[TrialId, ...] = ()
    variables: Variables = Field(default_factory=Variables)
    example_results: tuple[ExampleResult, ...] = ()
    score: float | None = None
    score_scope: ScoreScope | None = None
    status: TrialStatus = TrialStatus.OK
    error: ErrorInfo | None = None
    started_at: UtcDatetime
    finished_at: UtcDatetime | None = None
    events: tuple[TraceEvent, ...] = ()
    event_format: int = Field(default=1, ge=1)
    """The version of the event payload format (:data:`dspex.model.payloads.EVENT_FORMAT`);
    records written before it was recorded read as 1."""
    metadata: JsonDict = Field(default_factory=dict)
    event_summary: EventSummary | None = Field(default=None, exclude=True)
    """What the experiment views need from ``events`` (:mod:`dspex.model.eventsummary`),
    set on trials read without their events (``get_experiment(id, events=False)``) from
    what the store keeps beside the record; None otherwise. Derived data, not part of the
    record: never serialized (records read and checksum as without it)."""

    @model_validator(mode="after")
    def _consistent(self) -> Trial:
        if self.status is TrialStatus.FAILED and self.error is None:
            raise ValueError("a failed trial needs an error (type, message, traceback)")
        if self.finished_at is not None and self.finished_at < self.started_at:
            raise ValueError("finished_at is before started_at")
        for event in self.events:
            if event.trial_id != self.id:
                raise ValueError(
                    f"event {event.id} belongs to trial {event.trial_id}, not {self.id}"
                )
        return self

    def summarized_events(self) -> EventSummary:
        """:attr:`event_summary` when set (a trial read without its events), else the
        summary of :attr:`events`, computed once per trial object (views ask for it many
        times, and a long trial has many events)."""
        if self.event_summary is not None:
            return self.event_summary
        if not self.events:
            return _NO_EVENTS
        key = id(self)
        found = _SUMMARIES.get(key)
        if found is not None and found[0]() is self:
            return found[1]
        summary = summarize_events(self.events)
        _SUMMARIES[key] = (weakref.ref(self, functools.partial(_forget, key)), summary)
        return summary

    @property
    def duration_ms(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds() * 1000
