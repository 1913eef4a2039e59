"""Repeated example runs folded into one row each, for long evaluation timelines.

An evaluation of 32 examples is 32 runs of the same program: listed flat, a 258-event
trial is 17,000 px of near-identical blocks. :func:`segments` turns a page of blocks
into segments where consecutive example runs (a call tree and the ``example_result``
that scored it, kept together by :mod:`dspex.view.ordering`) become one
:class:`RunGroup` with a :class:`Run` per example; renderers show each run as one
expandable row. Everything else stays a :class:`~dspex.view.timeline.Block`::

    >>> segments(())
    []
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from dspex.model import EventKind
from dspex.model.payloads import ExampleResultPayload, payload_of
from dspex.view.timeline import Block, Entry, short_json

__all__ = ["MIN_RUNS", "Run", "RunGroup", "segments"]

MIN_RUNS = 2
"""Fewer example runs than this are shown flat, as before."""


@dataclass(frozen=True)
class Run:
    """One example's run: its program calls and the result that scored it."""

    entries: tuple[Entry, ...]

    @property
    def result(self) -> Entry | None:
        return next((e for e in self.entries if e.event.kind is EventKind.EXAMPLE_RESULT), None)

    @property
    def payload(self) -> ExampleResultPayload | None:
        result = self.result
        return payload_of(result.event, EventKind.EXAMPLE_RESULT) if result is not None else None

    @property
    def example(self) -> str:
        payload = self.payload
        return "?" if payload is None or payload["example"] is None else str(payload["example"])

    @property
    def passed(self) -> bool | None:
        passed = self.payload["passed"] if self.payload is not None else None
        return passed if isinstance(passed, bool) else None

    @property
    def gist(self) -> str:
        """The example's inputs and the prediction, shortened: what a reader scans for."""
        payload = self.payload
        if payload is None:
            return ""
        inputs, prediction = payload["inputs"], payload["prediction"]
        parts = []
        if isinstance(inputs, dict) and inputs:
            parts.append(short_json(" · ".join(str(v) for v in inputs.values()), 80))
        if isinstance(prediction, dict) and prediction:
            parts.append("→ " + short_json(" · ".join(str(v) for v in prediction.values()), 60))
        return " ".join(parts)

    @property
    def failed(self) -> bool:
        return any(e.failed for e in self.entries)

    @property
    def worker(self) -> str:
        return self.entries[0].event.worker

    @property
    def first_id(self) -> str:
        return self.entries[0].event.id


@dataclass(frozen=True)
class RunGroup:
    """Consecutive example runs, under the header of the block they started in."""

    runs: tuple[Run, ...]
    header: tuple[tuple[str, str], ...] = ()
    source: str = "evaluation"

    @property
    def entry_count(self) -> int:
        return sum(len(r.entries) for r in self.runs)

    @property
    def workers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.worker for r in self.runs))


def _run_groups(entries: Sequence[Entry]) -> set[str]:
    sizes: dict[str, int] = {}
    scored: set[str] = set()
    for entry in entries:
        sizes[entry.group] = sizes.get(entry.group, 0) + 1
        if entry.event.kind is EventKind.EXAMPLE_RESULT:
            scored.add(entry.group)
    return {g for g in scored if sizes[g] > 1}


def segments(blocks: Sequence[Block]) -> list[Block | RunGroup]:
    """``blocks`` with consecutive example runs folded into :class:`RunGroup` segments."""
    runs_of = _run_groups([e for b in blocks for e in b.entries])
    if len(runs_of) < MIN_RUNS:
        return list(blocks)
    out: list[Block | RunGroup] = []
    for block in blocks:
        plain: list[Entry] = []
        for entry in block.entries:
            if entry.group not in runs_of:
                plain.append(entry)
                continue
            if plain:
                out.append(_block(block, plain))
                plain = []
            _add_to_run(out, entry, block)
        if plain:
            out.append(_block(block, plain))
    return out


def _block(block: Block, entries: list[Entry]) -> Block:
    workers = tuple(dict.fromkeys(e.event.worker for e in entries))
    return replace(block, entries=tuple(entries), workers=workers)


def _add_to_run(out: list[Block | RunGroup], entry: Entry, block: Block) -> None:
    last = out[-1] if out else None
    if isinstance(last, RunGroup):
        current = last.runs[-1]
        if current.entries[0].group == entry.group:
            runs = (*last.runs[:-1], Run((*current.entries, entry)))
        else:
            runs = (*last.runs, Run((entry,)))
        out[-1] = replace(last, runs=runs)
    else:
        # The runs span workers: the block's one "Worker" line would name only the first.
        header = tuple((k, v) for k, v in block.header if k != "Worker")
        out.append(RunGroup((Run((entry,)),), header=header))
