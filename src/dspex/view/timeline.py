"""The unified timeline of one trial, as plain data that every renderer shares.

:func:`build_timeline` turns a :class:`~dspex.Trial` (and its experiment, to find the
parent candidate) into a :class:`Timeline`: blocks of consecutive events of one source
in ``sequence`` order, each item nested under its enclosing module call::

    >>> from datetime import UTC, datetime
    >>> from dspex import Experiment, ProgramInfo, TraceEvent, Trial, new_id
    >>> exp_id, trl_id = new_id("exp"), new_id("trl")
    >>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
    >>> ev = TraceEvent(trial_id=trl_id, sequence=0, timestamp=t0, monotonic_ns=0,
    ...                 source="evaluation", kind="trial_score", pid=1, worker="main",
    ...                 payload={"score": 0.5, "metric": "accuracy"})
    >>> trial = Trial(id=trl_id, experiment_id=exp_id, index=0, started_at=t0, score=0.5,
    ...               events=(ev,))
    >>> timeline = build_timeline(trial)
    >>> timeline.title, [b.source for b in timeline.blocks]
    ('Trial 0 · 0.5', ['evaluation'])

Events keep their ``sequence`` order, except that each call tree stays in one piece
(see :mod:`dspex.view.ordering`): with parallel workers, one worker's LM call is never
listed under another worker's module. Nothing here renders; :mod:`dspex.view.text`,
:mod:`dspex.view.terminal` and :mod:`dspex.view.html` do.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Final

from dspex.formatting import format_score
from dspex.model import EventKind, EventSource, Experiment, TraceEvent, Trial
from dspex.model.outcomes import scored_text
from dspex.model.payloads import common_of, payload_of
from dspex.view.entries import Description, Fields, describe, format_time, short_json, shown
from dspex.view.labels import score_scope_of, trial_label
from dspex.view.ordering import tree_order
from dspex.view.spans import Span, busy_time, module_self_time, trial_spans

if TYPE_CHECKING:
    from dspex.view.window import EventWindow

__all__ = [
    "Block",
    "Change",
    "Description",
    "Entry",
    "Problem",
    "Span",
    "TimeShare",
    "Timeline",
    "build_timeline",
    "format_score",
    "short_json",
    "variables_diff",
]

_LM_CALL: Final = EventKind.LM_CALL  # read once: Enum class attributes are slow in 3.11

SOURCE_LABELS = {
    "orchestration": "Orchestration",
    "execution": "Execution",
    "evaluation": "Evaluation",
}


@dataclass(frozen=True)
class Entry:
    """One event in the timeline: where it sits (depth, module) and how it reads.

    The description is worked out on first use, so that a page showing 400 events of a
    2,000-event trial only describes those 400.
    """

    event: TraceEvent
    depth: int
    module: str | None
    group: str = ""
    """The id of the top event of the call tree this entry belongs to (see ordering)."""

    @cached_property
    def description(self) -> Description:
        return describe(self.event)

    @property
    def title(self) -> str:
        return self.description.title

    @property
    def fields(self) -> tuple[tuple[str, str], ...]:
        return self.description.fields

    @property
    def texts(self) -> tuple[tuple[str, str], ...]:
        return self.description.texts

    @property
    def failed(self) -> bool:
        return self.description.failed

    @property
    def kind(self) -> str:
        return self.event.kind.value

    @property
    def source(self) -> str:
        return self.event.source.value

    @property
    def is_lm_call(self) -> bool:
        return self.event.kind is _LM_CALL

    def search_text(self) -> str:
        """Lowercased text that a search matches against."""
        parts = [self.title, *(f"{k} {v}" for k, v in self.fields), *(t for _, t in self.texts)]
        return "\n".join(parts).lower()


@dataclass(frozen=True)
class Block:
    """Consecutive entries of one source, and the workers they ran on.

    Events of parallel workers interleave; they stay in one block (each entry names
    its worker) rather than splitting into a block per event.
    """

    source: str
    workers: tuple[str, ...]
    entries: tuple[Entry, ...]
    header: tuple[tuple[str, str], ...] = ()

    @property
    def worker(self) -> str:
        return ", ".join(self.workers)

    @property
    def label(self) -> str:
        return SOURCE_LABELS.get(self.source, self.source.title())

    @property
    def started(self) -> datetime:
        return self.entries[0].event.timestamp


@dataclass(frozen=True)
class Change:
    """One difference between a trial's variables and its parent's."""

    predictor: str
    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class Problem:
    """An error somewhere in the trial: where it happened and its traceback."""

    where: str
    type: str
    message: str
    traceback: str
    sequence: int | None = None


@dataclass(frozen=True)
class TimeShare:
    """Time spent in one source or module, as milliseconds and a fraction of the trial."""

    label: str
    ms: float
    fraction: float


@dataclass(frozen=True)
class Timeline:
    """Everything a trial view shows, already ordered and grouped."""

    trial: Trial
    parent: Trial | None
    blocks: tuple[Block, ...]
    changes: tuple[Change, ...]
    problems: tuple[Problem, ...]
    time_by_source: tuple[TimeShare, ...]
    time_by_module: tuple[TimeShare, ...]
    sources: tuple[str, ...] = ()
    workers: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()
    strategy: str | None = None
    spans: tuple[Span, ...] = ()
    diffable: bool = True
    """False when the trial or its parent records no variables (a sampling trial runs
    the parent's program as it is): then there is nothing to compare."""
    window: EventWindow | None = None
    """Set when the timeline holds one page of a long trial's events (see
    :mod:`dspex.view.window`); None: it holds them all."""

    @property
    def title(self) -> str:
        scope = score_scope_of(self.trial)
        score = scored_text(self.trial.score, scope.name, scope.n)
        return f"{trial_label(self.trial)} · " + ("not scored" if score == "n/a" else score)

    @property
    def entries(self) -> list[Entry]:
        return [entry for block in self.blocks for entry in block.entries]

    @property
    def lm_call_count(self) -> int:
        return sum(1 for entry in self.entries if entry.is_lm_call)

    @property
    def cache_hit_count(self) -> int:
        """LM calls answered from DSPy's cache."""
        calls = (payload_of(entry.event, _LM_CALL) for entry in self.entries)
        return sum(1 for call in calls if call is not None and call["cache_hit"])

    @property
    def event_count(self) -> int:
        return sum(len(block.entries) for block in self.blocks)

    def filter(
        self,
        *,
        sources: Iterable[str] | None = None,
        workers: Iterable[str] | None = None,
        modules: Iterable[str] | None = None,
        text: str | None = None,
    ) -> Timeline:
        """The same timeline keeping only entries that match every given filter."""
        wanted = (
            set(sources) if sources is not None else None,
            set(workers) if workers is not None else None,
            set(modules) if modules is not None else None,
            text.lower() if text else None,
        )
        blocks = []
        for block in self.blocks:
            kept = tuple(e for e in block.entries if _matches(e, *wanted))
            if kept:
                workers = tuple(dict.fromkeys(e.event.worker for e in kept))
                blocks.append(replace(block, entries=kept, workers=workers))
        return replace(self, blocks=tuple(blocks))


def _matches(
    entry: Entry,
    sources: set[str] | None,
    workers: set[str] | None,
    modules: set[str] | None,
    text: str | None,
) -> bool:
    if sources is not None and entry.source not in sources:
        return False
    if workers is not None and entry.event.worker not in workers:
        return False
    if modules is not None and entry.module not in modules:
        return False
    return text is None or text in entry.search_text()


# -- building ----------------------------------------------------------------------


def build_timeline(trial: Trial, experiment: Experiment | None = None) -> Timeline:
    """The timeline of ``trial``; ``experiment`` lets it find the parent candidate."""
    ordered = tree_order(trial.events)
    by_id = {e.id: e for e, _ in ordered}
    entries = [Entry(e, _depth(e, by_id), _module_of(e, by_id), group) for e, group in ordered]
    events = sorted(trial.events, key=lambda e: e.sequence)
    parent = _parent_of(trial, experiment)
    diffable = parent is not None and _has_variables(trial) and _has_variables(parent)
    spans = trial_spans(events)
    return Timeline(
        trial=trial,
        parent=parent,
        blocks=tuple(_blocks(entries, trial)),
        changes=tuple(variables_diff(parent, trial)) if diffable else (),
        problems=tuple(_problems(trial, entries)),
        time_by_source=tuple(_shares(busy_time(trial, spans, experiment))),
        time_by_module=tuple(_shares(module_self_time(spans))),
        sources=tuple(dict.fromkeys(e.source.value for e in events)),
        workers=tuple(sorted({e.worker for e in events})),
        modules=tuple(sorted({m for m in (entry.module for entry in entries) if m})),
        strategy=_strategy_of(trial, experiment),
        spans=tuple(spans),
        diffable=diffable or parent is None,
    )


def _has_variables(trial: Trial) -> bool:
    return bool(trial.variables.predictors) or trial.variables.lm is not None


def _depth(event: TraceEvent, by_id: dict[str, TraceEvent]) -> int:
    depth, seen, current = 0, set(), event.parent_id
    while current is not None and current in by_id and current not in seen:
        seen.add(current)
        depth += 1
        current = by_id[current].parent_id
    end = payload_of(event, EventKind.MODULE_END)
    if end is not None:
        # A module_end may be recorded inside its own start's scope: level with the start.
        inside_start = event.parent_id is not None and event.parent_id == end["start_id"]
        return max(depth - 1, 0) if inside_start else depth
    return depth


def _module_of(event: TraceEvent, by_id: dict[str, TraceEvent]) -> str | None:
    """The module path of ``event``: its own for module events, else the enclosing one's."""
    if event.source is not EventSource.EXECUTION:
        return None
    own = common_of(event).get("module")
    if isinstance(own, str) and own:
        return own
    current = event.parent_id
    seen: set[str] = set()
    while current is not None and current in by_id and current not in seen:
        seen.add(current)
        module = common_of(by_id[current]).get("module")
        if isinstance(module, str) and module:
            return module
        current = by_id[current].parent_id
    return None


def _blocks(entries: list[Entry], trial: Trial) -> Iterable[Block]:
    groups: list[list[Entry]] = []
    for entry in entries:
        last = groups[-1][0] if groups else None
        if last is None or entry.event.source is not last.event.source:
            groups.append([])
        groups[-1].append(entry)
    shown: dict[str, str] = {}
    for group in groups:
        header = []
        for name, value in block_header(group[0].source, group, trial):
            # Variables in effect are repeated only when they differ from the last block's.
            if name in _VARIABLE_FIELDS or name.startswith(_VARIABLE_PREFIXES):
                if shown.get(name) == value:
                    continue
                shown[name] = value
            header.append((name, value))
        workers = tuple(dict.fromkeys(e.event.worker for e in group))
        yield Block(group[0].source, workers, tuple(group), tuple(header))


_VARIABLE_FIELDS = ("temperature",)
_VARIABLE_PREFIXES = ("instructions · ", "demos · ")


def _parent_of(trial: Trial, experiment: Experiment | None) -> Trial | None:
    if experiment is None or not trial.parent_trial_ids:
        return None
    by_id = {t.id: t for t in experiment.trials}
    return by_id.get(trial.parent_trial_ids[0])


def _strategy_of(trial: Trial, experiment: Experiment | None) -> str | None:
    """The strategy that created ``trial``, from a candidate_created event naming it."""
    trials = experiment.trials if experiment is not None else (trial,)
    for candidate in trials:
        # from the trial's event summary: trials read without their events have it too
        for created, strategy in candidate.summarized_events().candidates:
            if created == trial.id:
                return strategy
    return None


def variables_diff(parent: Trial | None, trial: Trial) -> list[Change]:
    """Instructions, demos and LM settings that differ between ``parent`` and ``trial``."""
    if parent is None:
        return []
    changes = []
    before, after = parent.variables.predictors, trial.variables.predictors
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        old_instr = old.instructions if old else ""
        new_instr = new.instructions if new else ""
        if old_instr != new_instr:
            changes.append(Change(name, "instructions", old_instr, new_instr))
        old_demos = list(old.demos) if old else []
        new_demos = list(new.demos) if new else []
        if old_demos != new_demos:
            changes.append(Change(name, "demos", old_demos, new_demos))
    old_lm = parent.variables.lm.settings if parent.variables.lm else {}
    new_lm = trial.variables.lm.settings if trial.variables.lm else {}
    for key in sorted(set(old_lm) | set(new_lm)):
        if old_lm.get(key) != new_lm.get(key):
            changes.append(Change("lm", key, old_lm.get(key), new_lm.get(key)))
    return changes


def _problems(trial: Trial, entries: list[Entry]) -> Iterable[Problem]:
    seen: set[tuple[str, str, str]] = set()
    for problem in _all_problems(trial, entries):
        # One exception surfaces in the module, its callers and the example; show it once.
        key = (problem.type, problem.message, problem.traceback)
        if key not in seen:
            seen.add(key)
            yield problem


def _all_problems(trial: Trial, entries: list[Entry]) -> Iterable[Problem]:
    if trial.error is not None:
        yield Problem("trial", trial.error.type, trial.error.message, trial.error.traceback)
    for entry in entries:
        error: object = payload_of(entry.event, EventKind.ERROR) or common_of(entry.event).get(
            "error"
        )
        if isinstance(error, dict) and error:
            yield Problem(
                where=entry.title,
                type=str(error.get("type", "error")),
                message=str(error.get("message", "")),
                traceback=str(error.get("traceback", "")),
                sequence=entry.event.sequence,
            )


def _shares(totals: dict[str, float]) -> Iterable[TimeShare]:
    whole = sum(totals.values())
    for label, ms in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])):
        yield TimeShare(label, ms, ms / whole if whole else 0.0)


# -- block headers ----------------------------------------------------------------


def block_header(source: str, entries: list[Entry], trial: Trial) -> Fields:
    """The few lines above a block: when, where, which program and variables."""
    fields: Fields = [("Timestamp", format_time(entries[0].event))]
    if source == "orchestration":
        optimizers = {common_of(e.event).get("optimizer") for e in entries} - {None}
        if optimizers:
            fields.append(("Optimizer", ", ".join(sorted(str(o) for o in optimizers))))
    elif source == "execution":
        fields.append(("Worker", ", ".join(dict.fromkeys(e.event.worker for e in entries))))
        fields += _program_fields(entries, trial)
    else:
        metrics = {common_of(e.event).get("metric") for e in entries} - {None}
        if metrics:
            fields.append(("Metric", ", ".join(sorted(str(m) for m in metrics))))
    return fields


def _program_fields(entries: list[Entry], trial: Trial) -> Fields:
    starts = [e for e in entries if e.event.kind is EventKind.MODULE_START]
    fields: Fields = []
    if starts:
        top = min(starts, key=lambda e: e.depth)
        p = payload_of(top.event, EventKind.MODULE_START)
        assert p is not None
        fields.append(("Program", f"{shown(p['module'])} (Class: {shown(p['class'])})"))
    ran = _variables_run(starts)
    modules = list(dict.fromkeys(e.module for e in entries if e.module))
    for name in modules:
        declared = trial.variables.predictors.get(name)
        # what the module ran with, as recorded when each call started; records made
        # before that was recorded fall back to the trial's declared variables. An
        # optimizer's own predictors (``Predict(ProposeInstruction)``) are left out.
        variants = ran.get(name) if declared is not None or "(" not in name else None
        if not variants:
            if declared is None:
                continue
            variants = [(declared.instructions, list(declared.demos))]
        for number, (instructions, demos) in enumerate(variants, 1):
            of = f" ({number} of {len(variants)})" if len(variants) > 1 else ""
            if instructions:
                fields.append((f"instructions · {name}{of}", short_json(instructions, 240)))
            shown_demos = f"{len(demos)} demo(s)"
            if demos:
                shown_demos += ": " + short_json(demos, 200)
            fields.append((f"demos · {name}{of}", shown_demos))
    fields += _lm_settings(entries, trial)
    return fields


def _variables_run(starts: list[Entry]) -> dict[str, list[tuple[str, list[Any]]]]:
    """Per module, the distinct (instructions, demos) its calls in ``starts`` started with."""
    ran: dict[str, list[tuple[str, list[Any]]]] = {}
    for entry in starts:
        p = payload_of(entry.event, EventKind.MODULE_START)
        if p is None or "instructions" not in p:
            continue
        variant = (p["instructions"], list(p.get("demos") or []))
        seen = ran.setdefault(p["module"], [])
        if variant not in seen:
            seen.append(variant)
    return ran


def _lm_settings(entries: Iterable[Entry], trial: Trial) -> Fields:
    # The settings an LM call was actually sent with win over the trial's declared ones.
    settings: dict[str, Any] = {}
    if trial.variables.lm is not None:
        settings.update(trial.variables.lm.settings)
    for entry in entries:
        call = payload_of(entry.event, EventKind.LM_CALL)
        if call is not None and isinstance(call["settings"], dict):
            settings.update(call["settings"])
            break
    return [
        (key, short_json(settings[key]))
        for key in ("temperature",)
        if settings.get(key) is not None
    ]
