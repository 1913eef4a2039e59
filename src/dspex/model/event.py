"""Trace events: the timeline of one trial.

Three sources interleave in one timeline, ordered by ``sequence``:

* ``orchestration``: what the optimizer decided (choose a bucket, a source candidate,
  a strategy; the advice of a feedback call; the candidate it created);
* ``execution``: what the program did on a worker (module calls, LM calls, adapter
  formatting and parsing, tool calls, retrievals and embedding calls);
* ``evaluation``: what the metric said (per example, and the trial's score).

Payload keys by kind are documented in ``docs/data-model.md``. An ``lm_call`` payload
keeps the messages exactly as sent, the response, model, settings, token usage,
latency and cache hit.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from operator import attrgetter
from typing import Annotated, TypeVar

from pydantic import Field, PlainSerializer

from dspex.ids import new_id
from dspex.model._base import EventId, JsonDict, Record, TrialId, UtcDatetime

__all__ = [
    "KIND_OF_VALUE",
    "SOURCE_OF_VALUE",
    "EventKind",
    "EventSource",
    "TraceEvent",
    "trusted_event",
]


class EventSource(StrEnum):
    ORCHESTRATION = "orchestration"
    EXECUTION = "execution"
    EVALUATION = "evaluation"


class EventKind(StrEnum):
    # orchestration
    OPTIMIZER_START = "optimizer_start"
    OPTIMIZER_END = "optimizer_end"
    STEP = "step"
    DECISION = "decision"
    CANDIDATE_CREATED = "candidate_created"
    CANDIDATE_SCORED = "candidate_scored"
    # execution
    MODULE_START = "module_start"
    MODULE_END = "module_end"
    LM_CALL = "lm_call"
    ADAPTER_FORMAT = "adapter_format"
    ADAPTER_PARSE = "adapter_parse"
    TOOL_CALL = "tool_call"
    RETRIEVAL = "retrieval"
    EMBEDDING = "embedding"
    LOG = "log"
    # evaluation
    EXAMPLE_RESULT = "example_result"
    METRIC = "metric"
    TRIAL_SCORE = "trial_score"
    # any source
    ERROR = "error"


# In JSON, an event's source and kind are written as their values, read with a C-level
# getter: pydantic would otherwise call the Enum ``value`` property, in Python, twice per
# event, a tenth of the time it takes to serialize a trial. The text is the same.
_E = TypeVar("_E")
_AsJsonText = Annotated[
    _E, PlainSerializer(attrgetter("_value_"), return_type=str, when_used="json")
]


class TraceEvent(Record):
    """One thing that happened during a trial.

    >>> import os, time
    >>> from dspex import TraceEvent, new_id, utc_now
    >>> e = TraceEvent(trial_id=new_id("trl"), sequence=0, timestamp=utc_now(),
    ...                monotonic_ns=time.monotonic_ns(), source="execution", kind="lm_call",
    ...                pid=os.getpid(), worker="main", payload={"model": "offline/arith"})
    >>> e.source
    <EventSource.EXECUTION: 'execution'>
    """

    id: EventId = Field(default_factory=lambda: new_id("evt"))
    trial_id: TrialId
    parent_id: EventId | None = None
    sequence: int = Field(ge=0)
    timestamp: UtcDatetime
    monotonic_ns: int = Field(ge=0)
    source: _AsJsonText[EventSource]
    kind: _AsJsonText[EventKind]
    pid: int = Field(ge=0)
    worker: str = Field(min_length=1)
    payload: JsonDict = Field(default_factory=dict)


_TRUSTED_FIELDS = frozenset(TraceEvent.model_fields)
SOURCE_OF_VALUE: dict[str, EventSource] = {s.value: s for s in EventSource}
"""Each source by its value: a dict lookup, cheaper than ``EventSource(value)`` per event
(a KeyError names a value that is no source)."""
KIND_OF_VALUE: dict[str, EventKind] = {k.value: k for k in EventKind}
"""Each kind by its value, as :data:`SOURCE_OF_VALUE`."""
_new_event = TraceEvent.__new__


def trusted_event(
    *,
    id: str,
    trial_id: str,
    parent_id: str | None,
    sequence: int,
    timestamp: datetime,
    monotonic_ns: int,
    source: str,
    kind: str,
    pid: int,
    worker: str,
    payload: dict[str, object],
) -> TraceEvent:
    """A TraceEvent built without validation, for dspex's own recorder only.

    Validation costs more than everything else recording does per event (a trial of a
    300-example evaluation holds thousands): the recorder makes ids from its own series,
    timestamps in UTC, payloads through ``jsonable``, so each field is valid by
    construction. ``source`` and ``kind`` are still checked (a KeyError names a bad one).
    The result equals, and serializes exactly like, ``TraceEvent(**fields)``.
    """
    event = _new_event(TraceEvent)
    object.__setattr__(
        event,
        "__dict__",
        {
            "id": id,
            "trial_id": trial_id,
            "parent_id": parent_id,
            "sequence": sequence,
            "timestamp": timestamp,
            "monotonic_ns": monotonic_ns,
            "source": SOURCE_OF_VALUE[source],
            "kind": KIND_OF_VALUE[kind],
            "pid": pid,
            "worker": worker,
            "payload": payload,
        },
    )
    object.__setattr__(event, "__pydantic_fields_set__", _TRUSTED_FIELDS)
    object.__setattr__(event, "__pydantic_extra__", None)
    object.__setattr__(event, "__pydantic_private__", None)
    return event
