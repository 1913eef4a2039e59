"""The event format: one payload type per kind, and every part of dspex agreeing with it.

The types in :mod:`dspex.model.payloads` are the contract. These tests hold the rest to
it: the recorder's typed ``emit``, the typed reads, the readers that dispatch by kind, the
table in ``docs/data-model.md``, and what real runs record.
"""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest

from dspex.capture.recorder import TrialRecorder
from dspex.export import mapping
from dspex.model import EventKind, EventSource
from dspex.model import payloads as P
from dspex.view import entries

DOCS = Path(__file__).parents[2] / "docs" / "data-model.md"


def _overloads(function) -> dict[EventKind, type]:
    """Kind -> payload type, from the overloads of ``function`` (kind and payload typed)."""
    found: dict[EventKind, type] = {}
    for overload in typing.get_overloads(function):
        hints = typing.get_type_hints(overload)
        kinds = typing.get_args(hints["kind"])
        payload = hints.get("payload") or typing.get_args(hints["return"])[0]
        for kind in kinds:
            found[kind] = payload
    return found


def test_every_kind_has_one_payload_type_and_a_source():
    assert set(P.PAYLOAD_TYPES) == set(EventKind)
    assert set(P.SOURCE_OF) == set(EventKind)
    assert all(isinstance(source, EventSource) for source in P.SOURCE_OF.values())


def test_the_recorders_emit_accepts_each_kinds_payload_type_and_no_other():
    assert _overloads(TrialRecorder.emit) == dict(P.PAYLOAD_TYPES)


def test_payload_of_reads_each_kind_as_its_payload_type():
    assert _overloads(P.payload_of) == dict(P.PAYLOAD_TYPES)


@pytest.mark.parametrize(
    "table", [entries._DESCRIBERS, mapping._CALLS], ids=["timeline", "otlp export"]
)
def test_readers_by_kind_take_that_kinds_payload_type(table):
    for kind, reader in table.items():
        hints = typing.get_type_hints(reader, localns=vars(P))
        hints.pop("return", None)
        (parameter,) = hints.values()
        assert parameter is P.PAYLOAD_TYPES[kind], kind


# Which kinds declare each shared key: a key renamed in one kind changes its line here, and
# the readers of that key (timeline, spans, export) have to be looked at again.
COMMON = {
    "module": {"module_start", "module_end", "lm_call", "adapter_format", "adapter_parse",
               "tool_call", "retrieval", "embedding"},
    "error": {"optimizer_end", "module_end", "lm_call", "adapter_format", "adapter_parse",
              "tool_call", "retrieval", "embedding", "example_result"},
    "latency_ms": {"module_end", "lm_call", "adapter_format", "adapter_parse", "tool_call",
                   "retrieval", "embedding", "example_result"},
    "optimizer": {"optimizer_start", "optimizer_end", "step", "decision", "candidate_created"},
    "metric": {"example_result", "metric", "trial_score"},
    "candidate": {"candidate_created", "candidate_scored", "example_result"},
    "strategy": {"decision", "candidate_created"},
}  # fmt: skip


def test_shared_keys_are_declared_by_the_kinds_their_readers_expect():
    assert set(P.Common.__annotations__) == set(COMMON)
    for key, kinds in COMMON.items():
        declaring = {
            kind.value
            for kind, cls in P.PAYLOAD_TYPES.items()
            if key in cls.__required_keys__ | cls.__optional_keys__
        }
        assert declaring == kinds, key


def test_an_older_record_without_a_key_reads_it_as_none():
    from tests.model.test_payloads_old import event

    old = event("lm_call", {"model": "m", "messages": [], "response": ["4"]})
    call = P.payload_of(old, EventKind.LM_CALL)
    assert call is not None
    assert call["model"] == "m" and call["cost"] is None and call["cache_hit"] is None
    assert "cost" not in old.payload  # the record itself is left as it is
    assert P.payload_of(old, EventKind.DECISION) is None


def test_payload_problems_names_what_does_not_follow_the_type():
    good = {"optimizer": "SIMBA", "step": 1, "batch": [0, 1], "details": {}}
    assert P.payload_problems(EventKind.STEP, good) == []
    bad = {"optimiser": "SIMBA", "step": "one", "batch": [0, 1], "details": {}}
    assert P.payload_problems("step", bad) == [
        "missing key 'optimizer'",
        "unknown key 'optimiser'",
        "step: Input should be a valid integer",
    ]


# -- docs/data-model.md ---------------------------------------------------------------


def _keys(cls: type) -> str:
    required = [k for k in cls.__annotations__ if k in cls.__required_keys__]
    optional = [k for k in cls.__annotations__ if k in cls.__optional_keys__]
    text = ", ".join(f"`{k}`" for k in required)
    if optional:
        text += "; optional: " + ", ".join(f"`{k}`" for k in optional)
    return text


def expected_table() -> str:
    rows = ["| kind | source | payload keys |", "|---|---|---|"]
    by_type: dict[type, list[EventKind]] = {}
    for kind, cls in P.PAYLOAD_TYPES.items():
        by_type.setdefault(cls, []).append(kind)
    for cls, kinds in by_type.items():
        names = ", ".join(f"`{k.value}`" for k in kinds)
        sources = {P.SOURCE_OF[k].value for k in kinds}
        source = "any" if kinds[0] in (EventKind.ERROR, EventKind.LOG) else ", ".join(sources)
        rows.append(f"| {names} | {source} | {_keys(cls)} |")
    return "\n".join(rows)


def test_the_docs_list_every_kind_with_exactly_its_payload_keys():
    text = DOCS.read_text()
    found = re.search(r"^\| kind \| source \| payload keys \|\n(?:\|.*\n)+", text, re.M)
    assert found is not None, "the trace event table is missing from docs/data-model.md"
    assert found.group(0).strip() == expected_table(), (
        "docs/data-model.md disagrees with dspex.model.payloads; the table should read:\n"
        + expected_table()
    )
    assert f"`event_format` {P.EVENT_FORMAT}" in text
