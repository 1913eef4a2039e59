"""What dspex records while ``dspy.COPRO.compile`` runs (DSPy 3.4.x).

COPRO asks a prompt model for ``breadth`` instruction/prefix candidates per predictor,
scores each on the trainset, keeps the best, and, ``depth`` times, asks for new
candidates given the attempts so far and their scores. Trials (``metadata["role"]``):

* ``compile``: ``optimizer_start``; the prompt model's proposal calls (execution
  events, ``Predict(BasicGenerateInstruction)`` then ``Predict(GenerateInstructionGivenAttempts)``);
  one ``step`` per depth; per depth and predictor, the candidate COPRO keeps (a
  ``decision`` with the scores it beat); the returned candidate; ``optimizer_end``;
* ``candidate`` "student": the program as given (no score), parent of the first depth;
* ``candidate`` "depth d candidate c": one per evaluation, parented to the candidate the
  predictor held when it was proposed (the student, then each depth's winner). Its
  ``decision`` names where the instruction came from (the proposal call's event id and
  the completion number, or "the original instruction"), ``candidate_created`` has the
  instruction and prefix changes, then the runs on the trainset, ``trial_score`` and
  ``candidate_scored`` (scope ``full``; ``copro_score`` is COPRO's percentage).

Relied on: the module global ``Evaluate`` of ``dspy.teleprompt.copro_optimizer`` (a patch
of :mod:`dspex.capture.instrument`); depth, predictor and candidate numbers are read from
``COPRO.compile``'s local variables (checked at install, and for their meaning at each
evaluation: a depth below ``depth``, a predictor of the program).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from dspex.capture.context import recording
from dspex.capture.program import predictor_paths, program_name, variables_of
from dspex.capture.scoring import metric_name
from dspex.formatting import format_number
from dspex.model import EventKind, Variables
from dspex.model.payloads import OptimizerOutcome, payload_of
from dspex.optimizers import register_hook
from dspex.optimizers.base import Unrecognised
from dspex.optimizers.evaluating import EvaluatingHook
from dspex.optimizers.patching import compile_locals
from dspex.optimizers.units import changes_between, finish_evaluated

__all__ = ["CoproHook"]

NAME = "COPRO"
MODULE = "dspy.teleprompt.copro_optimizer"
#: Local variables of COPRO.compile read at each evaluation.
COMPILE_LOCALS = ("d", "p_i", "c_i", "candidates_", "evaluated_candidates", "module")
PROPOSERS = ("Predict(BasicGenerateInstruction)", "Predict(GenerateInstructionGivenAttempts)")


@dataclass
class _Candidate:
    trial_id: str
    name: str
    variables: Variables
    prefixes: dict[str, str]
    score: float | None = None


@dataclass
class _Round:
    """The candidates of one (depth, predictor), in evaluation order."""

    depth: int
    predictor: int
    tried: list[_Candidate] = field(default_factory=list)


class CoproHook(EvaluatingHook):
    """Records COPRO's proposals, candidates per depth, their scores and each depth's choice."""

    patches = (f"{NAME}: {MODULE}.Evaluate",)
    receives = (NAME,)
    adds = "COPRO's candidates, their scores and each depth's choice"
    optimizer_name = NAME
    required_locals = COMPILE_LOCALS
    required_attributes = ("breadth", "depth", "metric")

    def install(self) -> None:
        self.check(self.optimizer)
        self._lock = threading.Lock()
        self.metric = metric_name(self.optimizer.metric)
        self.trainset = list(self.inputs.get("trainset") or [])
        self._index = {id(ex): i for i, ex in enumerate(self.trainset)}
        self.root = self.journal.program_name or program_name(self.student)
        self.student_candidate = self._open_student()
        self.predictor_count = len(self.student_candidate.variables.predictors)
        self.holding: dict[int, _Candidate] = {}  # per predictor: the candidate it holds
        self.entries: dict[int, dict[tuple[str, str], _Candidate]] = {}  # COPRO's bookkeeping
        self.round: _Round | None = None
        self.proposals: list[str] = []  # ids of the proposal calls' lm_call events, in order
        self._scanned = 0
        self.steps: set[int] = set()
        self.evaluated_candidates: Any = None
        self.best: _Candidate | None = None

    def _open_student(self) -> _Candidate:
        recorder = self.journal.new_trial(
            name="student",
            program=self.student,
            metadata={"role": "candidate", "optimizer": NAME},
        )
        recorder.emit(
            EventKind.CANDIDATE_CREATED,
            {
                "optimizer": NAME,
                "candidate": recorder.trial_id,
                "name": "student",
                "parents": [],
                "strategy": None,
                "changes": [],
            },
        )
        self.journal.finish_trial(recorder)
        return _Candidate(
            recorder.trial_id,
            "student",
            variables_of(self.student, self.root),
            _prefixes(self.student, self.root),
        )

    # -- Evaluate: one candidate per call -------------------------------------------------

    def evaluate(self, evaluate: Any, program: Any, *args: Any, **kwargs: Any) -> Any:
        local = compile_locals(
            NAME, "evaluated_candidates", COMPILE_LOCALS, kinds={"d": int, "p_i": int, "c_i": int}
        )
        self.evaluated_candidates = local["evaluated_candidates"]
        depth, predictor, number = int(local["d"]), int(local["p_i"]), int(local["c_i"])
        self._check(depth, predictor, number)
        self._scan_proposals()
        self._next_round(depth, predictor)
        candidate, recorder = self._open_candidate(program, local, depth, predictor, number)
        with recording(recorder):
            result = evaluate(program, *args, **kwargs)
        trial = finish_evaluated(
            self.journal,
            recorder,
            result,
            metric=self.metric,
            index=self._index,
            score_key="copro_score",
        )
        candidate.score = trial.score
        self._keep(predictor, program, candidate)
        return result

    def _check(self, depth: int, predictor: int, number: int) -> None:
        """What COPRO's locals mean: a depth below ``depth``, one of the program's
        predictors, a candidate number; evaluation order never goes back a depth."""
        last = self.round.depth if self.round is not None else 0
        if not last <= depth < int(self.optimizer.depth):
            raise Unrecognised(
                f"depth {depth} after depth {last} of {self.optimizer.depth}",
                piece="COPRO.compile local variable d",
            )
        if not 0 <= predictor < self.predictor_count:
            raise Unrecognised(
                f"predictor {predictor} of a program with {self.predictor_count}",
                piece="COPRO.compile local variable p_i",
            )
        if number < 0:
            raise Unrecognised(f"candidate {number}", piece="COPRO.compile local variable c_i")
        if not isinstance(self.evaluated_candidates, dict):
            raise Unrecognised(
                f"a {type(self.evaluated_candidates).__name__}, not a dict per predictor",
                piece="COPRO.compile local variable evaluated_candidates",
            )

    def _scan_proposals(self) -> None:
        """Note the prompt model's calls made in the compile trial since the last evaluation."""
        assert self.recorder is not None
        events = self.recorder.raw_events()
        for event in events[self._scanned :]:
            call = payload_of(event, EventKind.LM_CALL)
            if call is not None and call["module"] in PROPOSERS:
                self.proposals.append(event.id)
        self._scanned = len(events)

    def _next_round(self, depth: int, predictor: int) -> None:
        current = self.round
        if current is not None and (current.depth, current.predictor) == (depth, predictor):
            return
        if current is not None:
            self._close_round(current)
        if depth not in self.steps:
            self.steps.add(depth)
            assert self.recorder is not None
            self.recorder.emit(
                EventKind.STEP,
                {
                    "optimizer": NAME,
                    "step": depth + 1,
                    "batch": list(range(len(self.trainset))),
                    "details": {"depth": depth + 1, "breadth": self.optimizer.breadth},
                },
            )
        self.round = _Round(depth, predictor)

    def _source(self, depth: int, number: int) -> tuple[int, int] | None:
        """(proposal round, completion) of candidate ``number``; None for the original.

        With one predictor, depth d evaluates round d's completions; with more, every
        depth re-evaluates all rounds so far (round 0 has breadth - 1 completions and the
        original instruction after them, later rounds breadth each).
        """
        breadth = int(self.optimizer.breadth)
        if self.predictor_count == 1 and depth > 0:
            return depth, number
        if number < breadth - 1:
            return 0, number
        if number == breadth - 1:
            return None
        return 1 + (number - breadth) // breadth, (number - breadth) % breadth

    def _open_candidate(
        self, program: Any, local: dict[str, Any], depth: int, predictor: int, number: int
    ) -> tuple[_Candidate, Any]:
        names = [name for name, _ in predictor_paths(program, self.root)]
        parent = self.holding.get(predictor, self.student_candidate)
        source = self._source(depth, number)
        label = f"depth {depth + 1} candidate {number + 1}"
        if len(names) > 1:
            label += f" for {names[predictor]}"
        if source is None:
            label += " (original instruction)"
        recorder = self.journal.new_trial(
            name=label,
            parents=(parent.trial_id,),
            program=program,
            metadata={"role": "candidate", "optimizer": NAME, "depth": depth + 1},
        )
        variables = variables_of(program, self.root)
        candidate = _Candidate(recorder.trial_id, label, variables, _prefixes(program, self.root))
        step_id = recorder.emit(
            EventKind.STEP,
            {
                "optimizer": NAME,
                "step": depth + 1,
                "batch": list(range(len(self.trainset))),
                "details": {"predictor": names[predictor], "candidate": number + 1},
            },
        )
        call = None
        if source is not None:
            index = source[0] * self.predictor_count + predictor
            call = self.proposals[index] if index < len(self.proposals) else None
        name = names[predictor]
        recorder.emit(
            EventKind.DECISION,
            {
                "optimizer": NAME,
                "step": depth + 1,
                "decision": f"Try {label}",
                "strategy": None,
                "rationale": "The predictor's original instruction, kept as a candidate"
                if source is None
                else f"Completion {source[1] + 1} of the prompt model's proposal "
                + (
                    "from the basic instruction"
                    if source[0] == 0
                    else f"after depth {source[0]}, given the best attempts and their scores"
                ),
                "action": f"Score {name} with this instruction and prefix on the trainset",
                "details": {
                    "predictor": name,
                    "instruction": variables.predictors[name].instructions,
                    "prefix": candidate.prefixes.get(name),
                    "proposal_call": call,
                    "proposal_round": None if source is None else source[0],
                    "completion": None if source is None else source[1],
                },
            },
            parent_id=step_id,
        )
        changes = changes_between(parent.variables, variables)
        if parent.prefixes.get(name) != candidate.prefixes.get(name):
            changes.append(
                {
                    "predictor": name,
                    "field": "prefix",
                    "before": parent.prefixes.get(name),
                    "after": candidate.prefixes.get(name),
                }
            )
        recorder.emit(
            EventKind.CANDIDATE_CREATED,
            {
                "optimizer": NAME,
                "candidate": recorder.trial_id,
                "name": label,
                "parents": [parent.trial_id],
                "strategy": "proposal" if source is not None else "original",
                "changes": changes,
            },
        )
        assert self.round is not None
        self.round.tried.append(candidate)
        return candidate, recorder

    def _keep(self, predictor: int, program: Any, candidate: _Candidate) -> None:
        """COPRO's own rule: a key's entry is replaced only by a strictly better score."""
        name = predictor_paths(program, self.root)[predictor][0]
        key = (candidate.variables.predictors[name].instructions, candidate.prefixes.get(name, ""))
        entries = self.entries.setdefault(predictor, {})
        stored = entries.get(key)
        if stored is None or (stored.score or 0.0) < (candidate.score or 0.0):
            entries[key] = candidate

    # -- each depth's choice, the returned candidate ---------------------------------------

    def _close_round(self, done: _Round) -> None:
        entries = list(self.entries.get(done.predictor, {}).values())
        if not entries or self.recorder is None:
            return
        winner = max(entries, key=lambda c: c.score or 0.0)  # first of the best, as COPRO
        self.holding[done.predictor] = winner
        self.recorder.emit(
            EventKind.DECISION,
            {
                "optimizer": NAME,
                "step": done.depth + 1,
                "decision": f"Depth {done.depth + 1}: keep {winner.name}",
                "strategy": None,
                "rationale": f"Highest trainset score {format_number(winner.score)} among the "
                f"{len(entries)} candidates scored so far for this predictor; this depth: "
                + ", ".join(f"{c.name} ({format_number(c.score)})" for c in done.tried),
                "action": "Give the predictor this instruction and prefix for the next depth",
                "details": {
                    "winner": winner.trial_id,
                    "scores": {c.trial_id: c.score for c in entries},
                },
            },
        )

    def conclude(self, outputs: Any, exception: BaseException | None) -> None:
        if self.round is not None and exception is None:
            self._close_round(self.round)
        self._choose_result(outputs)

    def _choose_result(self, outputs: Any) -> None:
        if outputs is None or not isinstance(self.evaluated_candidates, dict):
            return
        for predictor, by_key in enumerate(self.evaluated_candidates.values()):
            for key, entry in by_key.items():
                if isinstance(entry, dict) and entry.get("program") is outputs:
                    self.best = self.entries.get(predictor, {}).get(key)
        if self.best is None or self.recorder is None:
            return
        self.result_trial_id = self.best.trial_id
        everything = [c for entries in self.entries.values() for c in entries.values()]
        self.recorder.emit(
            EventKind.DECISION,
            {
                "optimizer": NAME,
                "step": None,
                "decision": f"Return {self.best.name}",
                "strategy": None,
                "rationale": f"Highest trainset score {format_number(self.best.score)} over "
                f"every depth ({len(everything)} distinct candidates)",
                "action": f"compile returns {self.best.name}",
                "details": {"scores": {c.trial_id: c.score for c in everything}},
            },
        )

    def end_payload(self, outputs: Any, exception: BaseException | None) -> OptimizerOutcome:
        if self.best is None:
            return {}
        return {"best_candidate": self.best.trial_id, "best_score": self.best.score}


def _prefixes(program: Any, root: str) -> dict[str, str]:
    """Per predictor, the prefix of its last output field (what COPRO changes with it)."""
    prefixes = {}
    for name, predictor in predictor_paths(program, root):
        fields = list(getattr(predictor.signature, "fields", {}).values())
        extra = getattr(fields[-1], "json_schema_extra", None) or {} if fields else {}
        prefixes[name] = str(extra.get("prefix", ""))
    return prefixes


register_hook(NAME, CoproHook)
