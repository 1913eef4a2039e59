"""GEPA's callback events as dspex records: the trials and events listed in
:mod:`dspex.optimizers.gepa`.

:class:`GepaRecords` holds the state of one recorded run (GEPA's candidates by index,
the open iteration, the open batch of runs) and has one method per GEPA callback event;
:class:`~dspex.optimizers.gepa.GepaListener` calls them, and the hook's adapter
wrappers ask it where each evaluation's runs belong (:meth:`GepaRecords.evaluation_target`).
"""

from __future__ import annotations

import threading
from typing import Any

from dspex.capture.callback import error_event
from dspex.capture.program import predictor_path, variables_of
from dspex.capture.recorder import TrialRecorder
from dspex.errors import CaptureError
from dspex.formatting import format_number
from dspex.model import EventKind, PredictorVariables, Variables
from dspex.model.payloads import ExampleResultExtra, OptimizerOutcome
from dspex.optimizers.gepa_run import (
    Batch,
    Candidate,
    Iteration,
    acceptance_rule,
    feedback_lines,
    leads,
    number,
    score_text,
)
from dspex.optimizers.units import changes_between, finish_scored, record_score

__all__ = ["GepaRecords"]

NAME = "GEPA"


class GepaRecords:
    """The records of one GEPA run, built event by event."""

    def __init__(
        self,
        journal: Any,
        recorder: TrialRecorder,
        *,
        student: Any,
        trainset: list[Any],
        valset: list[Any],
        root: str,
        metric: str,
        selection: str,
    ) -> None:
        self.journal = journal
        self.recorder = recorder  # the compile trial's
        self.student = student
        self.trainset = trainset
        self.valset = valset
        self.root = root
        self.metric = metric
        self.selection = selection
        self.rule = "strict_improvement"  # GEPA's acceptance criterion (set by the hook)
        self.max_calls: int | None = None  # GEPA's budget (set by the hook)
        self._lock = threading.Lock()
        self.candidates: dict[int, Candidate] = {}
        self.iteration: Iteration | None = None
        self.batch: Batch | None = None  # the open set of runs the adapter's evaluations feed
        self.budget: dict[str, Any] = {}
        self.front: list[int] = [0]
        self.displaced: list[int] = []
        self.best: tuple[Candidate, float] | None = None
        self.result_trial_id: str | None = None
        self.step = 0
        self.selected: dict[str, Any] | None = None

    # -- where runs belong ----------------------------------------------------------------

    def evaluation_target(self, candidate: Any) -> Batch | None:
        """The open batch of runs; the valset evaluation of a candidate GEPA is accepting
        starts with no callback before it, so its trial opens here, on its first run."""
        with self._lock:
            iteration = self.iteration
            if self.batch is None and iteration is not None and iteration.after is not None:
                self._open_validation(
                    self.trial_name(iteration),
                    iteration.recorder.trial_id,
                    iteration.variables or iteration.parents[0].variables,
                )
            if iteration is not None and iteration.merge and iteration.texts is None:
                self._create(iteration, dict(candidate), "merge")
            return self.batch

    def iteration_recorder(self) -> TrialRecorder | None:
        """The trial of the open proposal (where the reflection and its feedback belong)."""
        iteration = self.iteration
        return iteration.recorder if iteration is not None else None

    def close(self, error: BaseException | None) -> None:
        """Finish what is still open when the compile ends (as failed, if it is mid-way)."""
        error = error or (RuntimeError("GEPA ended mid-iteration") if self.iteration else None)
        batch = self._close_batch()
        if batch is not None and batch.recorder is not getattr(self.iteration, "recorder", None):
            self.journal.finish_trial(batch.recorder, example_results=batch.results, error=error)
        self._finish_iteration(error=error)

    def end_payload(self) -> OptimizerOutcome:
        payload: OptimizerOutcome = {
            "budget": dict(self.budget),
            "pareto_front": [
                self.candidates[i].trial_id for i in self.front if i in self.candidates
            ],
        }
        if self.best is not None:
            payload["best_candidate"] = self.best[0].trial_id
            payload["best_score"] = self.best[1]
        return payload

    # -- helpers ------------------------------------------------------------------------

    def _decision(
        self,
        recorder: TrialRecorder | None,
        decision: str,
        *,
        step: int | None = None,
        strategy: str | None = None,
        rationale: str | None = None,
        action: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> str:
        """A ``decision`` on ``recorder``'s trial (None: the compile's)."""
        target = recorder if recorder is not None else self.recorder
        return target.emit(
            EventKind.DECISION,
            {
                "optimizer": NAME,
                "decision": decision,
                "strategy": strategy,
                "rationale": rationale,
                "action": action,
                "details": details or {},
                "step": step,
            },
        )

    def _step(self, recorder: TrialRecorder, batch: list[int], details: dict[str, Any]) -> str:
        """The ``step`` on the compile's trial and on ``recorder``'s; returns the latter's id."""
        for target in (self.recorder, recorder):
            event_id = target.emit(
                EventKind.STEP,
                {"optimizer": NAME, "step": self.step, "batch": batch, "details": details},
            )
        return event_id

    def _variables(self, parent: Candidate, texts: dict[str, str]) -> Variables:
        predictors = dict(parent.variables.predictors)
        for component, text in texts.items():
            key = predictor_path(self.root, component)
            old = predictors.get(key) or PredictorVariables()
            predictors[key] = old.replace(instructions=text)
        return parent.variables.replace(predictors=predictors)

    def _open_batch(
        self,
        recorder: TrialRecorder,
        examples: list[Any],
        phase: str,
        extra: ExampleResultExtra | None = None,
    ) -> Batch:
        self.batch = Batch(recorder, examples, self.metric, phase=phase, extra=extra)
        return self.batch

    def _close_batch(self) -> Batch | None:
        batch, self.batch = self.batch, None
        return batch

    # -- the run: start, seed, end --------------------------------------------------------

    def on_optimization_start(self, event: dict[str, Any]) -> None:
        seed = self.journal.new_trial(
            name="candidate 0 (seed)",
            program=self.student,
            metadata={"role": "candidate", "optimizer": NAME, "candidate": 0},
        )
        candidate = Candidate(
            0, seed.trial_id, "candidate 0", variables_of(self.student, self.root)
        )
        candidate.texts = dict(event.get("seed_candidate") or {})
        seed.emit(
            EventKind.CANDIDATE_CREATED,
            {
                "optimizer": NAME,
                "candidate": seed.trial_id,
                "name": "candidate 0",
                "parents": [],
                "strategy": None,
                "changes": [],
            },
        )
        self.journal.finish_trial(seed)
        self.candidates[0] = candidate
        self._open_validation(candidate.name, candidate.trial_id, candidate.variables)

    def _open_validation(self, name: str, parent: str, variables: Variables) -> None:
        """Open the trial of a valset evaluation of the candidate named ``name``."""
        recorder = self.journal.new_trial(
            name=f"valset evaluation of {name}",
            parents=(parent,),
            variables=variables,
            metadata={"role": "validation", "optimizer": NAME, "scope": "full"},
        )
        self._open_batch(recorder, self.valset, "valset", {"candidate": parent})

    def on_valset_evaluated(self, event: dict[str, Any]) -> None:
        index = int(event["candidate_idx"])
        candidate = self.candidates.get(index) or self._register_accepted(index, event)
        if self.batch is None:  # nothing ran: every score came from GEPA's cache
            self._open_validation(candidate.name, candidate.trial_id, candidate.variables)
        batch = self._close_batch()
        assert batch is not None
        self.journal.update_trial(batch.recorder, name=f"valset evaluation of {candidate.name}")
        trial = finish_scored(
            self.journal,
            batch.recorder,
            batch.results,
            metric=self.metric,
            scope="full",
            candidate=candidate.trial_id,
            scored_extra={"gepa_score": number(event.get("average_score"))},
        )
        candidate.valset_scores = {str(k): float(v) for k, v in event["scores_by_val_id"].items()}
        candidate.score = trial.score
        self._record_front(int(event.get("iteration", 0)))

    def on_optimization_end(self, event: dict[str, Any]) -> None:
        best = self.candidates.get(int(event["best_candidate_idx"]))
        if best is None:
            return
        self.result_trial_id = best.trial_id
        scored = [c for c in self.candidates.values() if c.score is not None]
        self.best = (best, best.score if best.score is not None else 0.0)
        self._decision(
            None,
            f"Return {best.name}",
            rationale=f"Highest valset score {format_number(best.score)} among "
            + ", ".join(f"{c.name} ({format_number(c.score)})" for c in scored),
            action=f"compile returns {best.name}",
            details={
                "scores": {c.trial_id: c.score for c in scored},
                "iterations": event.get("total_iterations"),
                "metric_calls": event.get("total_metric_calls"),
            },
        )

    # -- Pareto front and budget ----------------------------------------------------------

    def on_pareto_front_updated(self, event: dict[str, Any]) -> None:
        self.front = [int(i) for i in event.get("new_front") or []]
        self.displaced = [int(i) for i in event.get("displaced_candidates") or []]

    def _record_front(self, iteration: int) -> None:
        front = [self.candidates[i] for i in self.front if i in self.candidates]
        best_on = leads(self.candidates)
        displaced = [self.candidates[i] for i in self.displaced if i in self.candidates]
        self.displaced = []
        self._decision(
            None,
            "Pareto front: " + ", ".join(c.name for c in front),
            strategy="pareto",
            step=iteration,
            rationale="Candidates with the best score on at least one valset example: "
            + "; ".join(
                f"{c.name} best on {best_on.get(c.index, 0)} of {len(self.valset)}" for c in front
            ),
            action="Displaced " + ", ".join(c.name for c in displaced) if displaced else None,
            details={
                "pareto_front": [c.trial_id for c in front],
                "front_indices": [c.index for c in front],
                "displaced": [c.trial_id for c in displaced],
                "best_on": {c.trial_id: best_on.get(c.index, 0) for c in front},
                "valset_scores": {c.trial_id: c.score for c in front},
                "valset_size": len(self.valset),
            },
        )

    def on_budget_updated(self, event: dict[str, Any]) -> None:
        self.budget = {
            "metric_calls_used": event.get("metric_calls_used"),
            "metric_calls_remaining": event.get("metric_calls_remaining"),
        }

    # -- one iteration ----------------------------------------------------------------------

    def on_iteration_start(self, event: dict[str, Any]) -> None:
        self.step = int(event["iteration"])
        self.selected = None
        used = getattr(event.get("state"), "total_num_evals", None)
        if isinstance(used, int):
            remaining = None if self.max_calls is None else max(0, self.max_calls - used)
            self.budget = {"metric_calls_used": used, "metric_calls_remaining": remaining}

    def on_candidate_selected(self, event: dict[str, Any]) -> None:
        self.selected = dict(event)

    def on_minibatch_sampled(self, event: dict[str, Any]) -> None:
        selected = self.selected or {}
        parent = self.candidates[int(selected["candidate_idx"])]
        batch = [int(i) for i in event.get("minibatch_ids") or []]
        recorder = self.journal.new_trial(
            name=f"iteration {self.step} proposal",
            parents=(parent.trial_id,),
            variables=parent.variables,
            metadata={"role": "candidate", "optimizer": NAME, "iteration": self.step},
        )
        self.iteration = Iteration(self.step, recorder, parents=[parent], minibatch=batch)
        self.iteration.step_event = self._step(recorder, batch, self._step_details(parent))
        best_on = leads(self.candidates)
        self._decision(
            recorder,
            f"Propose a new candidate from {parent.name}",
            strategy="reflective_mutation",
            step=self.step,
            rationale=f"{parent.name} (valset score {format_number(parent.score)}) was selected by "
            f"GEPA's '{self.selection}' "
            f"strategy; it is best on {best_on.get(parent.index, 0)} of {len(self.valset)} "
            f"valset examples. Minibatch: training examples {batch}",
            action=f"Run {parent.name} on the minibatch and reflect on its feedback",
            details={
                "source_candidate": parent.trial_id,
                "source_index": parent.index,
                "source_score": parent.score,
                "minibatch": batch,
            },
        )

    def _step_details(self, parent: Candidate, kind: str = "reflective_mutation") -> dict[str, Any]:
        return {
            "kind": kind,
            "parent": parent.trial_id,
            "parent_index": parent.index,
            **self.budget,
        }

    def on_evaluation_start(self, event: dict[str, Any]) -> None:
        parents = [int(p) for p in event.get("parent_ids") or []]
        if event.get("candidate_idx") is None and len(parents) == 2:
            self._open_merge(parents, list(event.get("inputs") or []))
            return
        iteration = self.iteration
        if iteration is None:
            return
        if event.get("candidate_idx") is not None:
            parent = iteration.parents[0]
            self._open_batch(
                iteration.recorder,
                self.trainset,
                "before",
                {"candidate": parent.trial_id, "candidate_name": parent.name},
            )
        else:
            self._open_batch(iteration.recorder, self.trainset, "after")

    def on_evaluation_end(self, event: dict[str, Any]) -> None:
        batch = self._close_batch()
        if batch is None or self.iteration is None:
            return
        if batch.phase == "before":
            self.iteration.before = batch
            return
        self.iteration.after = batch
        self.iteration.score = record_score(
            batch.recorder,
            batch.results,
            metric=self.metric,
            scope="minibatch",
            candidate=batch.recorder.trial_id,
        )

    def on_evaluation_skipped(self, event: dict[str, Any]) -> None:
        iteration = self.iteration
        if iteration is None:
            return
        reason = str(event.get("reason"))
        scores = event.get("scores") or []
        self.journal.update_trial(
            iteration.recorder,
            name=f"iteration {iteration.number} (skipped)",
            metadata={"role": "iteration", "skipped": reason},
        )
        self._decision(
            iteration.recorder,
            f"Skip iteration {iteration.number}: {reason.replace('_', ' ')}",
            step=iteration.number,
            rationale=f"{iteration.parents[0].name} scored {score_text(scores)} on the minibatch: "
            + (
                "nothing to learn from"
                if reason == "all_scores_perfect"
                else "no trajectories to reflect on"
            ),
            action="No proposal this iteration",
            details={"reason": reason, "scores": list(scores)},
        )
        self._finish_iteration(keep_before=True)

    def on_reflective_dataset_built(self, event: dict[str, Any]) -> None:
        if self.iteration is not None:
            self.iteration.dataset = dict(event.get("dataset") or {})
            self.iteration.components = list(event.get("components") or [])

    def on_proposal_start(self, event: dict[str, Any]) -> None:
        iteration = self.iteration
        if iteration is None:
            return
        before = iteration.before.scores if iteration.before else []
        self._decision(
            iteration.recorder,
            f"Reflect on {iteration.parents[0].name}'s minibatch",
            strategy="reflective_mutation",
            step=iteration.number,
            rationale=f"Minibatch scores {score_text(before)}; the feedback given to the "
            "reflection LM:\n" + feedback_lines(iteration.dataset),
            action="Ask the reflection LM for a new instruction for "
            + ", ".join(predictor_path(self.root, c) for c in iteration.components),
            details={"components": iteration.components, "reflective_dataset": iteration.dataset},
        )

    def on_proposal_end(self, event: dict[str, Any]) -> None:
        iteration = self.iteration
        if iteration is None:
            return
        parent = iteration.parents[0]
        texts = {str(k): str(v) for k, v in (event.get("new_instructions") or {}).items()}
        for component, text in texts.items():
            self._decision(
                iteration.recorder,
                f"New instruction for {predictor_path(self.root, component)}",
                strategy="reflective_mutation",
                step=iteration.number,
                rationale="The reflection LM's answer to the feedback above ("
                + (
                    f"{sum(1 for v in iteration.before.scores if v <= 0)} of "
                    f"{len(iteration.before.scores)} minibatch examples failed)"
                    if iteration.before
                    else "no minibatch runs were recorded)"
                ),
                action=text,
                details={
                    "component": component,
                    "before": parent.texts.get(component),
                    "after": text,
                    "prompt": (event.get("prompts") or {}).get(component),
                },
            )
        self._create(iteration, {**parent.texts, **texts}, "reflective_mutation")

    def _create(self, iteration: Iteration, texts: dict[str, str], strategy: str) -> None:
        parent = iteration.parents[0]
        changed = {k: v for k, v in texts.items() if parent.texts.get(k) != v}
        iteration.texts = texts
        iteration.variables = self._variables(parent, changed)
        self.journal.update_trial(iteration.recorder, variables=iteration.variables)
        iteration.recorder.emit(
            EventKind.CANDIDATE_CREATED,
            {
                "optimizer": NAME,
                "candidate": iteration.recorder.trial_id,
                "name": self.trial_name(iteration),
                "parents": [p.trial_id for p in iteration.parents],
                "strategy": strategy,
                "changes": changes_between(parent.variables, iteration.variables),
            },
        )

    @staticmethod
    def trial_name(iteration: Iteration) -> str:
        """The name of an iteration's trial until GEPA numbers its candidate."""
        kind = "merge" if len(iteration.parents) > 1 else "proposal"
        return f"iteration {iteration.number} {kind}"

    # -- verdicts -------------------------------------------------------------------------

    def on_candidate_rejected(self, event: dict[str, Any]) -> None:
        iteration = self.iteration
        if iteration is None:
            return
        self._verdict(
            iteration,
            accepted=False,
            rationale=f"{event.get('reason')} ({acceptance_rule(self.rule)})",
            before=number(event.get("old_score")),
            after=number(event.get("new_score")),
        )
        self._finish_iteration()

    def on_candidate_accepted(self, event: dict[str, Any]) -> None:
        iteration = self.iteration
        if iteration is None or iteration.merge and not iteration.merge_accepted:
            return
        index = int(event["new_candidate_idx"])
        candidate = self.candidates[index]
        before = self._score_before(iteration)
        rule = (
            "GEPA's rule for merges: the merged score sum must be at least the best parent's"
            if iteration.merge
            else acceptance_rule(self.rule)
        )
        self._verdict(
            iteration,
            accepted=True,
            rationale=f"Minibatch score {format_number(before)} -> "
            f"{format_number(number(event.get('new_score')))} ({rule}); valset score "
            f"{format_number(candidate.score)}",
            before=before,
            after=number(event.get("new_score")),
            candidate=candidate,
        )
        self._finish_iteration()

    def _verdict(
        self,
        iteration: Iteration,
        *,
        accepted: bool,
        rationale: str,
        before: float | None,
        after: float | None,
        candidate: Candidate | None = None,
    ) -> None:
        word = "accepted" if accepted else "rejected"
        name = self.trial_name(iteration)
        self._decision(
            iteration.recorder,
            f"{name[0].upper()}{name[1:]} {word}",
            strategy="merge" if iteration.merge else "reflective_mutation",
            step=iteration.number,
            rationale=rationale,
            action=f"Add it to the pool as {candidate.name}" if candidate else "Discard it",
            details={
                "accepted": accepted,
                "rule": self.rule,
                "minibatch_before": before,
                "minibatch_after": after,
                "scores_before": iteration.before.scores if iteration.before else None,
                "scores_after": iteration.after.scores if iteration.after else None,
                "candidate_index": candidate.index if candidate else None,
            },
        )
        metadata: dict[str, Any] = {"accepted": accepted}
        if candidate is not None:
            metadata["candidate"] = candidate.index
            self.journal.update_trial(iteration.recorder, name=candidate.name, metadata=metadata)
        else:
            self.journal.update_trial(iteration.recorder, metadata=metadata)

    def _register_accepted(self, index: int, event: dict[str, Any]) -> Candidate:
        """The candidate GEPA just added to its pool: the open iteration's proposal."""
        iteration = self.iteration
        if iteration is None:
            raise CaptureError(f"GEPA added candidate {index} outside an iteration dspex saw")
        candidate = Candidate(
            index,
            iteration.recorder.trial_id,
            f"candidate {index}",
            iteration.variables or iteration.parents[0].variables,
        )
        candidate.texts = dict(event.get("candidate") or iteration.texts or {})
        self.candidates[index] = candidate
        return candidate

    def _finish_iteration(
        self, *, keep_before: bool = False, error: BaseException | None = None
    ) -> None:
        iteration, self.iteration = self.iteration, None
        if iteration is None:
            return
        if keep_before:
            results = iteration.before.results if iteration.before else []
            self.journal.finish_trial(iteration.recorder, example_results=results, error=error)
            return
        score, scope = iteration.score
        self.journal.finish_trial(
            iteration.recorder,
            example_results=iteration.after.results if iteration.after else [],
            score=score,
            score_scope=scope,
            error=error,
        )

    def _score_before(self, iteration: Iteration) -> float | None:
        """The parent's minibatch score sum (for a merge: the best parent's, on its examples)."""
        if not iteration.merge:
            return iteration.before.sum if iteration.before else None
        sums = [
            sum(p.valset_scores.get(str(i), 0.0) for i in iteration.minibatch)
            for p in iteration.parents
        ]
        return max(sums) if sums else None

    def on_iteration_end(self, event: dict[str, Any]) -> None:
        if self.iteration is not None and self.iteration.after is None:
            why = (
                "The reflection returned no new text (or failed: see GEPA's log)"
                if self.iteration.dataset
                else "GEPA built no reflective dataset: no minibatch example went through "
                "the component(s) it chose to update"
            )
            self.journal.update_trial(
                self.iteration.recorder,
                name=f"iteration {self.iteration.number} (no proposal)",
                metadata={"role": "iteration"},
            )
            self._decision(
                self.iteration.recorder,
                f"No proposal in iteration {self.iteration.number}",
                step=self.iteration.number,
                rationale=why,
                action="Nothing to evaluate",
            )
            self._finish_iteration(keep_before=True)
        elif self.iteration is not None:
            self._finish_iteration()

    def on_error(self, event: dict[str, Any]) -> None:
        recorder = self.iteration.recorder if self.iteration is not None else self.recorder
        assert recorder is not None
        exc = event.get("exception")
        if isinstance(exc, BaseException):
            recorder.emit(EventKind.ERROR, error_event(exc))
        else:  # GEPA reported an error without an exception: still a failure on record
            text = "GEPA reported an error" if exc is None else str(exc)
            recorder.emit(EventKind.ERROR, {"type": "", "message": text, "traceback": ""})

    # -- merges ---------------------------------------------------------------------------

    def _open_merge(self, parents: list[int], examples: list[Any]) -> None:
        first, second = (self.candidates[i] for i in parents)
        recorder = self.journal.new_trial(
            name=f"iteration {self.step} merge",
            parents=(first.trial_id, second.trial_id),
            variables=first.variables,
            metadata={"role": "candidate", "optimizer": NAME, "iteration": self.step},
        )
        ids = [self._valset_index(e) for e in examples]
        iteration = Iteration(self.step, recorder, parents=[first, second], minibatch=ids)
        iteration.merge = True
        self.iteration = iteration
        iteration.step_event = self._step(recorder, ids, self._step_details(first, "merge"))
        self._decision(
            recorder,
            f"Merge {first.name} and {second.name}",
            strategy="merge",
            step=self.step,
            rationale=f"Both are on the Pareto front and descend from a common ancestor; GEPA "
            f"combines their instructions and tries the merge on valset examples {ids}, where "
            f"{first.name} scores {score_text([first.valset_scores.get(str(i)) for i in ids])} and "
            f"{second.name} {score_text([second.valset_scores.get(str(i)) for i in ids])}",
            action="Build the merged candidate and run it on those examples",
            details={"parents": [first.trial_id, second.trial_id], "valset_examples": ids},
        )
        self._open_batch(recorder, self.valset, "after")

    def _valset_index(self, example: Any) -> int:
        return next((i for i, e in enumerate(self.valset) if e is example), -1)

    def on_merge_attempted(self, event: dict[str, Any]) -> None:
        iteration = self.iteration
        if iteration is not None and iteration.texts is None:
            self._create(iteration, dict(event.get("merged_candidate") or {}), "merge")

    def on_merge_accepted(self, event: dict[str, Any]) -> None:
        if self.iteration is not None:
            self.iteration.merge_accepted = True

    def on_merge_rejected(self, event: dict[str, Any]) -> None:
        iteration = self.iteration
        if iteration is None:
            return
        self._verdict(
            iteration,
            accepted=False,
            rationale=f"{event.get('reason')} (GEPA's rule for merges: the merged score sum "
            "must be at least the best parent's)",
            before=self._score_before(iteration),
            after=iteration.after.sum if iteration.after else None,
        )
        self._finish_iteration()
