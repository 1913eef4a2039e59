"""What the DSPy callback records for tools, adapter failures and nesting."""

from __future__ import annotations

import dspy
import pytest

import dspex
from dspex import EventKind
from dspex.capture import TrialRecorder, recording, shared_callback


def _record(fn):
    recorder = TrialRecorder(dspex.new_id("trl"))
    callbacks = [shared_callback()]
    with dspy.context(callbacks=callbacks), recording(recorder):
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - the test looks at what was recorded
            recorder.error = exc  # type: ignore[attr-defined]
    return recorder, recorder.events()


def test_tool_calls_are_recorded_with_args_result_and_errors():
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    def broken(a: int) -> int:
        """Always fails."""
        raise ValueError(f"cannot handle {a}")

    add_tool, broken_tool = dspy.Tool(add), dspy.Tool(broken)
    _, events = _record(lambda: (add_tool(a=2, b=3), broken_tool(a=7)))
    calls = [e for e in events if e.kind is EventKind.TOOL_CALL]
    assert [c.payload["tool"] for c in calls] == ["add", "broken"]
    assert calls[0].payload["args"] == {"a": 2, "b": 3} and calls[0].payload["result"] == 5
    assert calls[0].payload["error"] is None
    assert "cannot handle 7" in calls[1].payload["error"]["message"]


def test_an_unparseable_completion_is_recorded_as_a_failed_parse(lm):
    predict = dspy.Predict("question -> answer")
    recorder, events = _record(lambda: predict(question="garble this"))
    parses = [e for e in events if e.kind is EventKind.ADAPTER_PARSE]
    assert parses and all(not p.payload["ok"] for p in parses)
    assert any("I refuse to use markers." in str(p.payload.get("completion")) for p in parses)
    assert parses[0].payload["error"]["type"].endswith("AdapterParseError")
    end = next(e for e in events if e.kind is EventKind.MODULE_END)
    assert end.payload["error"] is not None  # the Predict call failed, and says why
    assert isinstance(recorder.error, Exception)  # type: ignore[attr-defined]


def test_successful_calls_nest_lm_events_and_sum_adapter_calls_on_their_module(lm):
    predict = dspy.Predict("question -> answer")
    _, events = _record(lambda: predict(question="What is 2 + 2?"))
    kinds = [e.kind.value for e in events]
    assert kinds == ["module_start", "lm_call", "module_end"]
    start = events[0]
    assert all(e.parent_id == start.id for e in events[1:-1])
    # the adapter calls that worked are on the module's end, with their times
    times = events[-1].payload["adapter"]
    assert times["adapter"] == "ChatAdapter"
    assert (times["formats"], times["parses"]) == (1, 1)
    assert 0 < times["format_ms"] < events[-1].payload["latency_ms"]
    assert 0 < times["parse_ms"] < events[-1].payload["latency_ms"]
    # the end sits beside its start (same parent) and points back at it
    assert events[-1].parent_id == start.parent_id
    assert events[-1].payload["start_id"] == start.id
    assert events[-1].payload["outputs"] == {"answer": "4"}


@pytest.mark.parametrize("threads", [1, 4])
def test_no_recorder_means_nothing_is_recorded_and_nothing_breaks(lm, threads):
    predict = dspy.Predict("question -> answer")
    callbacks = [shared_callback()]
    with dspy.context(callbacks=callbacks):
        results = dspy.Parallel(num_threads=threads)(
            [(predict, {"question": f"What is {i} + 1?"}) for i in range(4)]
        )
    assert [r.answer for r in results] == ["1", "2", "3", "4"]


def test_lm_settings_are_recorded_without_their_secrets():
    """A provider LM holds its key and may hold a proxy URL with a password: the recorded
    settings keep the names and the harmless values, never the secrets."""
    lm = dspy.LM(
        "openai/gpt-4o-mini",
        api_key="sk-live-000111",
        api_base="https://user:proxy-pass@proxy.example/v1",
        temperature=0.3,
    )
    callback = shared_callback()
    recorder = TrialRecorder(dspex.new_id("trl"))
    with recording(recorder):  # the handlers DSPy would call around lm(...), without a network
        callback.on_lm_start("call-1", lm, {"messages": [{"role": "user", "content": "hi"}]})
        callback.on_lm_end("call-1", ["hello"], None)
    (event,) = recorder.events()
    settings = event.payload["settings"]
    assert settings["api_key"] == "********" and settings["temperature"] == 0.3
    assert settings["api_base"] == "https://user:***@proxy.example/v1"
    assert "sk-live-000111" not in event.to_json() and "proxy-pass" not in event.to_json()


def test_the_timeline_entry_of_a_module_end_says_its_adapter_calls(lm):
    from dspex.view.entries import describe

    predict = dspy.Predict("question -> answer")
    _, events = _record(lambda: predict(question="What is 2 + 2?"))
    fields = dict(describe(events[-1]).fields)
    assert fields["Adapter"].startswith("ChatAdapter: format ")
    assert ", parse " in fields["Adapter"] and fields["Adapter"].endswith(" ms")
