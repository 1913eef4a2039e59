"""What dspex records while ``dspy.SIMBA.compile`` runs (DSPy 3.4.x).

Trials (``metadata["role"]``):

* ``compile``: the orchestration timeline: ``optimizer_start``, one ``step`` event per
  step, each step's winner (``decision``), the returned candidate, ``optimizer_end``;
* ``candidate``: candidate 0 (the baseline), then one per program a strategy builds,
  parented to its source candidate. Its events: ``step``, the decision that created it
  (bucket statistics, source candidate, strategy), the OfferFeedback call (execution
  events), the outcome (advice as ``action``), ``candidate_created`` with the changes,
  its mini-batch runs, ``trial_score`` and ``candidate_scored``;
* ``sampling``: one per step, SIMBA's trajectory-sampling runs (which candidate, at
  which temperature, on which example), parented to the candidates it sampled;
* ``validation``: each final candidate on the full trainset (``scope="full"``).

What it relies on: ``SIMBA.strategies`` (an instance attribute, wrapped for the compile
and restored after it), and ``prepare_models_for_resampling`` / ``wrap_program`` as
imported into ``dspy.teleprompt.simba`` (patches of :mod:`dspex.capture.instrument`).
Step and bucket numbers are read from ``SIMBA.compile``'s local variables, checked at
install (:meth:`SimbaHook.check`) and for their meaning at each read: the step number
counts the steps, the batch is ``bsize`` trainset positions, each bucket's example is
in the batch and the bucket numbers of a step increase. Anything else puts the hook in
degraded mode (see :class:`~dspex.optimizers.base.OptimizerHook`).
"""

from __future__ import annotations

import threading
from numbers import Integral
from typing import Any

from dspex.capture.callback import error_event
from dspex.capture.context import recording
from dspex.capture.instrument import guarded
from dspex.capture.program import module_paths, variables_of
from dspex.capture.recorder import TrialRecorder
from dspex.capture.scoring import metric_name
from dspex.errors import CaptureError
from dspex.model import EventKind, Variables
from dspex.model.payloads import ExampleResultExtra, OptimizerOutcome, StepPayload, payload_of
from dspex.optimizers import register_hook
from dspex.optimizers.base import PRIVATE_MARK, OptimizerHook, Unrecognised
from dspex.optimizers.patching import (
    base_compile,
    compile_locals,
    require_attribute,
    require_locals,
    unsupported,
)
from dspex.optimizers.units import EvaluationUnit, changes_between

__all__ = ["SimbaHook"]

NAME = "SIMBA"
MODULE = "dspy.teleprompt.simba"
#: Local variables of SIMBA.compile read when a step starts and when a strategy runs.
COMPILE_LOCALS = ("batch_idx", "batch_indices", "bucket_idx", "num_demos_to_drop", "src_prog_idx")
STEP_LOCALS = ("batch_idx", "batch_indices")
STRATEGY_LOCALS = ("bucket_idx", "num_demos_to_drop", "src_prog_idx")
KINDS = {name: Integral for name in (*STRATEGY_LOCALS, "batch_idx")} | {
    "batch_indices": (list, tuple)
}
TAG = PRIVATE_MARK  # names a program's candidate trial; the deepcopies DSPy makes keep it


def strategy_name(strategy: Any) -> str:
    return str(getattr(strategy, "__name__", type(strategy).__name__)).rstrip("_")


def _compile_locals(names: tuple[str, ...]) -> dict[str, Any]:
    return compile_locals(NAME, "batch_indices", names, kinds=KINDS)


def bucket_stats(bucket: list[dict[str, Any]]) -> dict[str, float]:
    scores = [float(o["score"]) for o in bucket]
    high, low, mean = max(scores), min(scores), sum(scores) / len(scores)
    return {
        "max_score": high,
        "min_score": low,
        "avg_score": mean,
        "max_to_min_gap": high - low,
        "max_to_avg_gap": high - mean,
    }


class _Candidate:
    __slots__ = ("trial_id", "name", "number", "variables", "unit")

    def __init__(self, trial_id: str, name: str, number: int, variables: Variables) -> None:
        self.trial_id = trial_id
        self.name = name
        self.number = number
        self.variables = variables
        self.unit: EvaluationUnit | None = None


class SimbaHook(OptimizerHook):
    """Records SIMBA's steps, decisions and candidates (see the module docs)."""

    patches = (
        f"SIMBA: {MODULE}.prepare_models_for_resampling",
        f"SIMBA: {MODULE}.wrap_program",
    )
    receives = (NAME,)
    adds = "SIMBA's steps, decisions, candidates and their runs"

    # -- install ----------------------------------------------------------------------

    @classmethod
    def check(cls, optimizer: Any) -> None:
        """Raise Unrecognised if anything this hook reads has moved."""
        strategies = require_attribute(NAME, optimizer, "strategies", "SIMBA.strategies")
        if not isinstance(strategies, list) or not all(callable(s) for s in strategies):
            raise unsupported(NAME, "SIMBA.strategies as a list of strategy functions")
        for attribute in ("metric", "bsize", "temperature_for_sampling"):
            require_attribute(NAME, optimizer, attribute, f"SIMBA.{attribute}")
        # SIMBA's own compile (a subclass may wrap it): its locals are what we read
        require_locals(NAME, base_compile(NAME, optimizer), COMPILE_LOCALS)

    def install(self) -> None:
        self.check(self.optimizer)
        self._lock = threading.Lock()
        self.metric = metric_name(self.optimizer.metric)
        self.trainset = list(self.inputs.get("trainset") or [])
        self._index = {id(ex): i for i, ex in enumerate(self.trainset)}
        self.candidates: dict[str, _Candidate] = {}
        self.step = 0
        self.batch: list[int] = []
        self.phase = "start"
        self.sampling: EvaluationUnit | None = None
        self.sampled: dict[str, None] = {}
        self.step_candidates: list[_Candidate] = []
        self.validations: dict[int, tuple[_Candidate, EvaluationUnit]] = {}
        self._units: list[EvaluationUnit] = []
        self.last_bucket = -1
        self.baseline = self._open_baseline()
        # the one thing set on the optimizer itself: its own list object goes back after
        self._original_strategies = self.optimizer.strategies
        self.optimizer.strategies = [self._wrap_strategy(s) for s in self._original_strategies]

    def uninstall(self) -> None:
        if hasattr(self, "_original_strategies"):
            self.optimizer.strategies = self._original_strategies
            del self._original_strategies

    def _open_baseline(self) -> _Candidate:
        recorder = self.journal.new_trial(
            name="candidate 0 (baseline)",
            program=self.student,
            metadata={"role": "candidate", "optimizer": "SIMBA", "candidate": 0},
        )
        variables = variables_of(self.student, self.journal.program_name)
        candidate = _Candidate(recorder.trial_id, "candidate 0", 0, variables)
        recorder.emit(
            EventKind.CANDIDATE_CREATED,
            {
                "optimizer": "SIMBA",
                "candidate": recorder.trial_id,
                "name": "candidate 0",
                "parents": [],
                "strategy": None,
                "changes": [],
            },
        )
        self.journal.finish_trial(recorder)
        self.candidates[candidate.trial_id] = candidate
        return candidate

    # -- helpers ------------------------------------------------------------------------

    def _candidate_of(self, program: Any) -> _Candidate:
        return self.candidates.get(getattr(program, TAG, None) or "", self.baseline)

    def _index_of(self, example: Any) -> int:
        return self._index.get(id(example), 0)

    def _paths(self, program: Any) -> dict[int, str]:
        return module_paths(program, self.journal.program_name)

    def _step_payload(self, details: dict[str, Any] | None = None) -> StepPayload:
        return {
            "optimizer": "SIMBA",
            "step": self.step,
            "batch": list(self.batch),
            "details": details or {},
        }

    def _unit(
        self, recorder: TrialRecorder, expected: int, scope: str, **kw: Any
    ) -> EvaluationUnit:
        unit = EvaluationUnit(
            self.journal, recorder, expected=expected, scope=scope, metric=self.metric, **kw
        )
        self._units.append(unit)
        return unit

    # -- step start: prepare_models_for_resampling ------------------------------------

    def prepare_models(self, original: Any, program: Any, n: int, *args: Any, **kw: Any) -> Any:
        self._close_step()
        local = _compile_locals(STEP_LOCALS)
        step, batch = int(local["batch_idx"]) + 1, list(local["batch_indices"])
        if step != self.step + 1:
            raise Unrecognised(
                f"step {step} follows step {self.step}: it no longer counts SIMBA's steps",
                piece="SIMBA.compile local variable batch_idx",
            )
        size = len(self.trainset)
        if len(batch) != self.optimizer.bsize or not all(
            isinstance(i, Integral) and 0 <= int(i) < size for i in batch
        ):
            raise Unrecognised(
                f"{batch!r:.80} is not {self.optimizer.bsize} positions in the trainset of {size}",
                piece="SIMBA.compile local variable batch_indices",
            )
        self.step, self.batch, self.last_bucket = step, [int(i) for i in batch], -1
        setattr(program, TAG, self.baseline.trial_id)  # programs[0] is always the baseline
        models = original(program, n, *args, **kw)
        temperatures = [getattr(m, "kwargs", {}).get("temperature") for m in models]
        assert self.recorder is not None
        self.step_event = self.recorder.emit(
            EventKind.STEP,
            self._step_payload(
                {
                    "samples_per_example": len(models),
                    "temperatures": temperatures,
                    "temperature_for_sampling": self.optimizer.temperature_for_sampling,
                }
            ),
        )
        recorder = self.journal.new_trial(
            name=f"step {self.step} trajectory sampling",
            metadata={"role": "sampling", "optimizer": "SIMBA", "step": self.step},
        )
        recorder.emit(EventKind.STEP, self._step_payload())
        self.sampled = {}
        self.sampling = self._unit(
            recorder,
            len(models) * len(self.batch),
            "minibatch",
            candidate=None,
            score_trial=False,
            on_closing=self._summarize_sampling,
        )
        self.phase = "sampling"
        return models

    def _summarize_sampling(self, unit: EvaluationUnit) -> None:
        runs: dict[str, int] = {}
        for event in unit.recorder.raw_events():
            result = payload_of(event, EventKind.EXAMPLE_RESULT)
            if result is not None:
                name = str(result["candidate_name"] if "candidate_name" in result else None)
                runs[name] = runs.get(name, 0) + 1
        unit.recorder.emit(
            EventKind.DECISION,
            {
                "optimizer": "SIMBA",
                "step": self.step,
                "decision": f"Sample trajectories for step {self.step}",
                "strategy": None,
                "rationale": "Softmax choice among the top candidates (temperature "
                f"{self.optimizer.temperature_for_sampling}) for each example and LM copy",
                "action": "Ran " + ", ".join(f"{n} x{k}" for n, k in sorted(runs.items())),
                "details": {"runs_per_candidate": runs, "batch_score": unit.score},
            },
        )

    # -- every program run: wrap_program ------------------------------------------------

    def wrap_program(self, original: Any, program: Any, metric: Any) -> Any:
        wrapped = original(program, metric)
        candidate = self._candidate_of(program)
        with self._lock:
            unit, extra = self._unit_for(program, candidate)
        unit.adopt(program, self._paths(program))
        return unit.runner(wrapped, self._index_of, extra, hook=self)

    def _unit_for(
        self, program: Any, candidate: _Candidate
    ) -> tuple[EvaluationUnit, ExampleResultExtra]:
        if candidate.unit is not None and not candidate.unit.closed:
            return candidate.unit, {}
        if self.phase == "sampling" and self.sampling is not None:
            if candidate.trial_id not in self.sampled:  # runs start after all wraps: still open
                self.sampled[candidate.trial_id] = None
                self.journal.update_trial(self.sampling.recorder, parents=list(self.sampled))
            lm = next((p.lm for p in program.predictors() if getattr(p, "lm", None)), None)
            settings = getattr(lm, "kwargs", {}) or {}
            return self.sampling, {
                "candidate": candidate.trial_id,
                "candidate_name": candidate.name,
                "temperature": settings.get("temperature"),
                "rollout_id": settings.get("rollout_id"),
            }
        if self.phase != "validation":
            self._close_step()
            self.phase = "validation"
        found = self.validations.get(id(program))
        if found is None:
            recorder = self.journal.new_trial(
                name=f"validation of {candidate.name}",
                parents=(candidate.trial_id,),
                program=program,
                metadata={"role": "validation", "optimizer": "SIMBA", "scope": "full"},
            )
            found = (
                candidate,
                self._unit(recorder, len(self.trainset), "full", candidate=candidate.trial_id),
            )
            self.validations[id(program)] = found
        return found[1], {}

    # -- strategies: one new candidate each ---------------------------------------------

    def _wrap_strategy(self, strategy: Any) -> Any:
        def run(call: Any, bucket: list[dict[str, Any]], system: Any, **kwargs: Any) -> Any:
            return self._run_strategy(call, bucket, system, kwargs)

        def strategy_wrapper(bucket: list[dict[str, Any]], system: Any, **kwargs: Any) -> Any:
            piece = "SIMBA: SIMBA.strategies"
            return guarded(self, piece, run, strategy, (bucket, system), kwargs)

        strategy_wrapper.__name__ = getattr(strategy, "__name__", "strategy")
        strategy_wrapper.__wrapped__ = strategy  # type: ignore[attr-defined]
        return strategy_wrapper

    def _run_strategy(
        self, strategy: Any, bucket: list[dict[str, Any]], system: Any, kwargs: dict[str, Any]
    ) -> Any:
        if self.phase == "sampling":
            self._close_sampling()
            self.phase = "proposing"
        local = _compile_locals(STRATEGY_LOCALS)
        self._check_bucket(local, bucket)
        source = self._candidate_of(system)
        name = strategy_name(getattr(strategy, "function", strategy))
        recorder = self.journal.new_trial(
            name=f"step {self.step} proposal {int(local['bucket_idx']) + 1}",
            parents=(source.trial_id,),
            program=system,
            metadata={"role": "candidate", "optimizer": "SIMBA", "step": self.step},
        )
        stats = bucket_stats(bucket)
        step_id = recorder.emit(EventKind.STEP, self._step_payload())
        example = self._index_of(bucket[0]["example"])
        dropped = int(local["num_demos_to_drop"])
        details = {
            "bucket": int(local["bucket_idx"]) + 1,
            "example": example,
            **stats,
            "bucket_scores": [o["score"] for o in bucket],
            "source_candidate": source.trial_id,
            "source_name": source.name,
            "source_index": int(local["src_prog_idx"]),
            "temperature_for_candidates": self.optimizer.temperature_for_candidates,
            "demos_dropped_per_predictor": dropped,
            "batch_10p_score": _number(kwargs.get("batch_10p_score")),
            "batch_90p_score": _number(kwargs.get("batch_90p_score")),
        }
        recorder.emit(
            EventKind.DECISION,
            {
                "optimizer": "SIMBA",
                "step": self.step,
                "decision": f"Propose a new candidate from {source.name}",
                "strategy": name,
                "rationale": (
                    f"Bucket #{details['bucket']} (example {example}): max score "
                    f"{stats['max_score']:g}, max-to-min gap {stats['max_to_min_gap']:g}, "
                    f"max-to-avg gap {stats['max_to_avg_gap']:g}"
                ),
                "action": f"Copy {source.name}"
                + (f", drop {dropped} demo(s) per predictor" if dropped else "")
                + f", then {name}",
                "details": details,
            },
            parent_id=step_id,
        )
        mark = len(recorder)
        try:
            with recording(recorder):
                result = strategy(bucket, system, **kwargs)
        except Exception as exc:
            recorder.emit(EventKind.ERROR, error_event(exc), parent_id=step_id)
            self.journal.finish_trial(recorder, error=exc)
            raise
        self._emit_outcome(recorder, step_id, name, result, stats, details, mark)
        self._register(recorder, source, system, name)
        return result

    def _check_bucket(self, local: dict[str, Any], bucket: list[dict[str, Any]]) -> None:
        """What SIMBA's locals mean: the buckets of a step in increasing order, each of one
        example of the step's batch, drops and the source as counts."""
        position = int(local["bucket_idx"])
        if not self.last_bucket < position < self.optimizer.bsize:
            raise Unrecognised(
                f"bucket {position} after bucket {self.last_bucket} of a batch of "
                f"{self.optimizer.bsize}: it no longer numbers the step's buckets",
                piece="SIMBA.compile local variable bucket_idx",
            )
        self.last_bucket = position
        for name in ("num_demos_to_drop", "src_prog_idx"):
            if int(local[name]) < 0:
                raise Unrecognised(
                    f"{local[name]} is not a count", piece=f"SIMBA.compile local variable {name}"
                )
        example = bucket[0].get("example") if bucket and isinstance(bucket[0], dict) else None
        if self._index.get(id(example)) not in self.batch:
            raise Unrecognised(
                "its trajectories are not of an example of the step's batch",
                piece="SIMBA's buckets (the strategies' first argument)",
            )

    def _emit_outcome(
        self,
        recorder: TrialRecorder,
        step_id: str,
        name: str,
        result: Any,
        stats: dict[str, float],
        details: dict[str, Any],
        mark: int,
    ) -> None:
        feedback = _feedback_outputs(recorder, mark)
        if name == "append_a_rule" and feedback is not None:
            advice = feedback.get("module_advice") or {}
            rationale = str(feedback.get("discussion") or "")
            action = "OfferFeedback advice: " + "; ".join(f"{k}: {v}" for k, v in _items(advice))
            outcome = {"advice": advice, "discussion": rationale}
        elif result is False:
            rationale = _skip_reason(stats, details)
            action, outcome = "No change", {"skipped": True}
        else:
            rationale = (
                f"The best trajectory on example {details['example']} scored "
                f"{stats['max_score']:g}, above the batch's 10th percentile "
                f"{details['batch_10p_score']}"
            )
            action, outcome = "Appended the best trajectory's calls as demos", {}
        recorder.emit(
            EventKind.DECISION,
            {
                "optimizer": "SIMBA",
                "step": self.step,
                "decision": f"{name} outcome",
                "strategy": name,
                "rationale": rationale,
                "action": action,
                "details": {**outcome, "returned": result if isinstance(result, bool) else None},
            },
            parent_id=step_id,
        )

    def _register(
        self, recorder: TrialRecorder, source: _Candidate, system: Any, name: str
    ) -> None:
        with self._lock:
            number = 1 + max(c.number for c in self.candidates.values())
            label = f"candidate {number}"
            variables = variables_of(system, self.journal.program_name)
            candidate = _Candidate(recorder.trial_id, label, number, variables)
            self.candidates[candidate.trial_id] = candidate
            self.step_candidates.append(candidate)
        setattr(system, TAG, recorder.trial_id)
        self.journal.update_trial(
            recorder, program=system, name=label, metadata={"candidate": number}
        )
        recorder.emit(
            EventKind.CANDIDATE_CREATED,
            {
                "optimizer": "SIMBA",
                "candidate": recorder.trial_id,
                "name": label,
                "parents": [source.trial_id],
                "strategy": name,
                "changes": changes_between(source.variables, variables),
            },
        )
        candidate.unit = self._unit(
            recorder, len(self.batch), "minibatch", candidate=recorder.trial_id
        )

    # -- step end, validation, finish -----------------------------------------------------

    def _close_sampling(self) -> None:
        if self.sampling is not None:
            self.sampling.close()

    def _close_step(self) -> None:
        self._close_sampling()
        units = [(c, c.unit) for c in self.step_candidates if c.unit is not None]
        for _, unit in units:
            unit.close()
        scored = [(c, u.score) for c, u in units if u.score is not None]
        if scored and self.recorder is not None:
            winner, best = max(scored, key=lambda cs: cs[1] or 0.0)  # first of the best
            self.recorder.emit(
                EventKind.DECISION,
                {
                    "optimizer": "SIMBA",
                    "step": self.step,
                    "decision": f"Step {self.step} winner: {winner.name}",
                    "strategy": None,
                    "rationale": f"Highest mini-batch score {best:g} of {len(scored)} candidates",
                    "action": f"Keep {winner.name} for the final validation",
                    "details": {
                        "winner": winner.trial_id,
                        "scores": {c.name: s for c, s in scored},
                    },
                },
                parent_id=getattr(self, "step_event", None),
            )
        self.step_candidates = []

    def abandon(self, exception: BaseException | None) -> None:
        stopped = exception or CaptureError("dspex stopped recording this compile (degraded mode)")
        for unit in getattr(self, "_units", []):
            unit.close(error=stopped)

    def conclude(self, outputs: Any, exception: BaseException | None) -> None:
        if exception is None:
            self._close_step()
        for unit in self._units:
            unit.close(error=exception)
        self._choose_result(outputs)

    def _choose_result(self, outputs: Any) -> None:
        validated = [(c, u.score) for c, u in self.validations.values() if u.score is not None]
        if outputs is not None:
            self.result_trial_id = self._candidate_of(outputs).trial_id
            try:
                delattr(outputs, TAG)
            except AttributeError:
                pass
        if not validated or self.recorder is None:
            return
        best, score = max(validated, key=lambda cs: cs[1])
        self.best = (best, score)
        self.recorder.emit(
            EventKind.DECISION,
            {
                "optimizer": "SIMBA",
                "step": None,
                "decision": f"Return {best.name}",
                "strategy": None,
                "rationale": f"Highest full-trainset score {score:g} among "
                + ", ".join(f"{c.name} ({s:g})" for c, s in validated),
                "action": f"compile returns {best.name}",
                "details": {"scores": {c.trial_id: s for c, s in validated}},
            },
        )

    def end_payload(self, outputs: Any, exception: BaseException | None) -> OptimizerOutcome:
        best = getattr(self, "best", None)
        if best is None:
            return {}
        return {"best_candidate": best[0].trial_id, "best_score": best[1]}


def _skip_reason(stats: dict[str, float], details: dict[str, Any]) -> str:
    p10, p90 = details["batch_10p_score"], details["batch_90p_score"]
    if p10 is not None and stats["max_score"] <= p10:
        return (
            f"Skipped: the bucket's best score {stats['max_score']:g} is at or below the "
            f"batch's 10th percentile {p10:g}"
        )
    return (
        f"Skipped: the bucket's worst score {stats['min_score']:g} is at or above the "
        f"batch's 90th percentile {p90:g}, so there is no worse trajectory to learn from"
    )


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _items(advice: Any) -> list[tuple[str, Any]]:
    return list(advice.items()) if isinstance(advice, dict) else [("advice", advice)]


def _feedback_outputs(recorder: TrialRecorder, mark: int) -> dict[str, Any] | None:
    """The outputs of the OfferFeedback call recorded after position ``mark``, if any."""
    for event in recorder.raw_events()[mark:]:
        end = payload_of(event, EventKind.MODULE_END)
        outputs = end["outputs"] if end is not None else None
        if isinstance(outputs, dict) and "module_advice" in outputs:
            return outputs
    return None


register_hook(NAME, SimbaHook)
