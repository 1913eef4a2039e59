"""The spool writer's parts made straight from captured tuples are the general path's parts."""

from __future__ import annotations

import dataclasses
import enum
import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import dspy
import pytest

from dspex.capture import instrumented, recording, shared_callback
from dspex.capture.jsonable import jsonable
from dspex.capture.recorder import TrialRecorder, trace_events
from dspex.ids import new_id
from dspex.journal.parts import built_parts, raw_parts
from dspex.model import EventKind
from dspex.store import PART_EVENTS, encode_parts
from tests.capture.conftest import AdditionEngine, addition_lm


def _recorded(calls: int) -> TrialRecorder:
    """A trial of ``calls`` direct calls to an LM this test wrote, plus optimizer events."""
    recorder = TrialRecorder(new_id("trl"))
    program = dspy.Predict("question -> answer")
    engine = AdditionEngine()
    with dspy.context(lm=addition_lm(engine), callbacks=[shared_callback()]):
        with instrumented(), recording(recorder):
            for i in range(calls):
                program(question=f"What is {i} + 2?")
    assert engine.calls == calls
    created: Any = {"candidate": "cand_1", "strategy": "append_a_rule", "parents": []}
    recorder.emit(EventKind.CANDIDATE_CREATED, created)
    odd: Any = {"level": "INFO", "message": "nan and a tuple", "x": (1, math.nan)}
    recorder.emit(EventKind.LOG, odd)
    return recorder


def _general(recorder: TrialRecorder, first: int):
    return encode_parts(first, trace_events(recorder.trial_id, recorder.raw_events(), first))


def test_raw_parts_are_the_bytes_and_summaries_of_the_general_path():
    recorder = _recorded(200)  # 3 events a call: more than one part
    raw = recorder.raw_events()
    assert len(raw) > PART_EVENTS
    fast = raw_parts(recorder.trial_id, raw, 3)
    general = _general(recorder, 3)
    assert fast is not None and len(fast) == len(general) == 2
    for a, b in zip(fast, general, strict=True):
        assert (a.first, a.count, a.data) == (b.first, b.count, b.data)
        assert a.summary == b.summary
    assert sum(p.summary.lm_calls for p in fast if p.summary) == 200
    # the parts read back as the events the general path numbered
    events = [e for p in fast for e in p.events(recorder.trial_id)]
    assert events == list(trace_events(recorder.trial_id, raw, 3))
    assert events[-1].payload["x"] == [1, "nan"]  # made JSON as jsonable makes it


def test_an_lm_payload_that_is_not_plain_json_is_copied_as_jsonable_copies_it():
    recorder = _recorded(2)
    lm_call = next(e for e in recorder.raw_events() if e.kind == EventKind.LM_CALL)
    lm_call.payload["settings"]["temperature"] = math.inf  # what jsonable turns into "inf"
    lm_call.payload["settings"]["stop"] = ("\n\n",)  # a tuple: a list in JSON
    fast = raw_parts(recorder.trial_id, recorder.raw_events(), 0)
    assert fast is not None
    assert [p.data for p in fast] == [p.data for p in _general(recorder, 0)]
    assert b'"temperature":"inf"' in fast[0].data


@pytest.mark.parametrize(
    "value",
    [chr(0xD83D), 2**70],
    ids=["lone surrogate", "integer past 64 bits"],
)
def test_a_batch_orjson_would_write_differently_is_left_to_the_general_path(value):
    recorder = TrialRecorder(new_id("trl"))
    odd: Any = {"level": "INFO", "message": "odd", "value": value}
    recorder.emit(EventKind.LOG, odd, json_ready=True)
    assert raw_parts(recorder.trial_id, recorder.raw_events(), 0) is None


class _Color(enum.Enum):
    RED = "red"


class _Level(enum.IntEnum):
    HIGH = 3


class _Text(str):
    pass


@dataclasses.dataclass
class _Point:
    x: int


@pytest.mark.parametrize(
    "value",
    [
        {"nested": [1, 2.5, None, True, "é\u2028</script>"]},
        (1, 2),
        math.nan,
        -math.inf,
        -0.0,
        1e16,
        5e-324,
        2**63,
        _Color.RED,
        _Level.HIGH,
        _Text("sub"),
        _Point(1),
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 1, 1, 12, 0, 0, 5),
        Decimal("1.5"),
        {1, 2},
        {3: "int key"},
        chr(0xD83D),
        2**70,
        object(),
    ],
    ids=repr,
)
@pytest.mark.parametrize("ready", [False, True], ids=["as captured", "made JSON by jsonable"])
def test_any_captured_payload_is_written_as_the_general_path_writes_it(value, ready):
    """Whatever a producer hands the recorder (a payload to make JSON later, or one made
    JSON by jsonable already, as json_ready promises), the fast parts hold the general
    path's bytes, or the fast path steps aside (None) and the general path writes them."""
    recorder = TrialRecorder(new_id("trl"))
    payload: Any = {"level": "INFO", "message": "a value", "value": value}
    recorder.emit(EventKind.LOG, jsonable(payload) if ready else payload, json_ready=ready)
    raw = recorder.raw_events()
    general = _general(recorder, 0)
    fast = raw_parts(recorder.trial_id, raw, 0)
    if fast is not None:
        assert [p.data for p in fast] == [p.data for p in general]
    built = built_parts(0, trace_events(recorder.trial_id, raw, 0))
    assert [p.data for p in built] == [p.data for p in general]
    assert [p.summary for p in built] == [p.summary for p in general]


@pytest.mark.parametrize(
    "time_ns",
    [
        1_780_000_000_123_456_789,
        1_780_000_000_000_000_999,  # a whole microsecond count of zero: no fraction
        1_780_000_000_000_001_000,
        1_709_164_799_999_999_999,  # the last microsecond of 2024-02-28
        1_709_164_800_000_000_000,  # a leap day begins
        1_735_689_599_999_999_000,  # the last of 2024
        0,
    ],
)
def test_the_raw_path_writes_a_timestamp_as_the_general_path_does(time_ns):
    """The writer formats each second once instead of making a datetime per event: the
    bytes are the general path's, a fraction of zero microseconds included."""
    recorder = TrialRecorder(new_id("trl"))
    recorder.emit(EventKind.LOG, {"level": "INFO", "message": "x"})
    recorder.emit(EventKind.LOG, {"level": "INFO", "message": "y"})
    recorder._raw[:] = [e._replace(time_ns=time_ns + i) for i, e in enumerate(recorder._raw)]
    fast = raw_parts(recorder.trial_id, recorder.raw_events(), 0)
    assert fast is not None
    assert [p.data for p in fast] == [p.data for p in _general(recorder, 0)]


def test_jsonable_reads_a_prediction_without_giving_it_a_dict_of_its_own():
    import gc

    import dspy

    prediction = dspy.Prediction(answer="4")
    assert jsonable(prediction) == {"answer": "4"}
    # An instance asked for its __dict__ keeps that dict as long as it lives (DSPy's
    # history keeps each Prediction for 10,000 calls): one more object for the collector.
    materialized = [r for r in gc.get_referents(prediction) if type(r) is dict and "_store" in r]
    assert materialized == []
