"""What dspex records while ``dspy.MIPROv2.compile`` runs (DSPy 3.4.x).

* the compile trial: a ``decision`` with the bootstrapped demo sets (each set also
  comes from a nested BootstrapFewShot / LabeledFewShot compile, recorded as its own
  trial parented to this one), one ``decision`` per instruction proposal with the
  prompting tip used (rationale), the instruction (action) and its index, then per
  predictor the instruction set MIPROv2 really chooses from ("Instruction candidates
  for predictor i": candidate 0 is the original instruction, in place of proposal 0),
  and the proposer's LM calls;
* one trial per program MIPROv2 evaluates: the default program, each optuna trial's
  candidate (its chosen instruction and demo-set indices, and the instruction texts
  they select, as a ``decision``; then ``candidate_created``, its runs, ``trial_score``
  and ``candidate_scored`` with ``scope`` minibatch or full), and each periodic full
  evaluation ("full evaluation of optuna trial N", parented to the candidate it
  re-evaluates).

Relied on (patches of :mod:`dspex.capture.instrument`, calls of this compile's optimizer
only): the methods ``MIPROv2._bootstrap_fewshot_examples``, ``_propose_instructions`` and
``_select_and_insert_instructions_and_demos``; the module global
``eval_candidate_program`` of ``dspy.teleprompt.mipro_optimizer_v2``; the method
``GroundedProposer.propose_instruction_for_predictor``.
"""

from __future__ import annotations

import inspect
import threading
from typing import Any

from dspex.capture.context import recording
from dspex.capture.evaluation import evaluation_results
from dspex.capture.jsonable import jsonable
from dspex.capture.program import variables_of
from dspex.capture.recorder import TrialRecorder
from dspex.capture.scoring import metric_name
from dspex.formatting import format_number
from dspex.model import EventKind
from dspex.model.payloads import OptimizerOutcome
from dspex.optimizers import register_hook
from dspex.optimizers.base import PRIVATE_MARK, OptimizerHook, Unrecognised
from dspex.optimizers.patching import require_attribute, unsupported
from dspex.optimizers.units import changes_between, finish_scored, number_or_none

__all__ = ["MiproHook"]

NAME = "MIPROv2"
MODULE = "dspy.teleprompt.mipro_optimizer_v2"
METHODS = (
    "_bootstrap_fewshot_examples",
    "_propose_instructions",
    "_select_and_insert_instructions_and_demos",
)
TAG = PRIVATE_MARK  # names a program's candidate trial; the deepcopies DSPy makes keep it


def _tip_key(tip: str | None) -> str | None:
    from dspy.propose.grounded_proposer import TIPS

    return next((key for key, text in TIPS.items() if text == tip), None)


class MiproHook(OptimizerHook):
    """Records MIPROv2's demo sets, instruction proposals and optuna trials."""

    patches = (
        *(f"{NAME}: {MODULE}.MIPROv2.{method}" for method in METHODS),
        f"{NAME}: {MODULE}.eval_candidate_program",
        f"{NAME}: dspy.propose.grounded_proposer.GroundedProposer."
        "propose_instruction_for_predictor",
    )
    receives = (NAME,)
    adds = "MIPROv2's demo sets, instruction proposals and optuna trials"

    @classmethod
    def check(cls, optimizer: Any) -> None:
        from dspy.propose.grounded_proposer import GroundedProposer

        where = "GroundedProposer.propose_instruction_for_predictor(pred_i, demo_set_i, tip)"
        propose = require_attribute(
            NAME, GroundedProposer, "propose_instruction_for_predictor", where
        )
        require_attribute(NAME, optimizer, "metric", f"{NAME}.metric")
        try:
            parameters = inspect.signature(propose).parameters
        except (TypeError, ValueError) as exc:
            raise unsupported(NAME, where, exc) from exc
        if not {"pred_i", "demo_set_i", "tip"} <= set(parameters):
            raise unsupported(NAME, where)

    def install(self) -> None:
        self.check(self.optimizer)
        self._lock = threading.Lock()
        self.metric = metric_name(self.optimizer.metric)
        self.programs: dict[int, tuple[Any, TrialRecorder | None, str]] = {}
        self.default_trial: str | None = None
        self.names: dict[str, str] = {}
        self.full_scores: dict[str, float] = {}
        self.proposals = 0
        self.proposed: dict[int, list[str]] = {}  # per predictor, the proposals in order
        self.instruction_sets: dict[int, list[str]] = {}  # what MIPROv2 really chooses from
        self.candidates = 0  # candidate numbers: the default program 0, optuna trials 1, 2...
        self.numbers: dict[str, int] = {}  # trial id -> candidate number

    # -- step 1: demo sets ---------------------------------------------------------------

    def on_bootstrap_fewshot_examples(self, original: Any, *args: Any, **kwargs: Any) -> Any:
        demo_sets = original(*args, **kwargs)
        assert self.recorder is not None
        sets = {
            str(i): [[jsonable(d) for d in demos] for demos in candidates]
            for i, candidates in (demo_sets or {}).items()
        }
        count = len(next(iter(sets.values()), []))
        # zero-shot (no demos of either kind): MIPROv2 discards the sets after proposing
        zero_shot = kwargs.get("max_bootstrapped_demos") == 0 == kwargs.get("max_labeled_demos")
        self.recorder.emit(
            EventKind.DECISION,
            {
                "optimizer": NAME,
                "step": 1,
                "decision": f"Bootstrapped {count} demo set(s) per predictor",
                "strategy": None,
                "rationale": "Zero-shot: these sets only ground the instruction proposals; "
                "MIPROv2 discards them and its optuna search tries instructions alone"
                if zero_shot
                else "Few-shot candidates for the optuna search and for grounding "
                "instruction proposals",
                "action": ", ".join(f"predictor {i}: {len(c)} sets" for i, c in sets.items()),
                "details": {"demo_sets": sets},
            },
        )
        return demo_sets

    # -- step 2: instruction proposals ---------------------------------------------------

    def propose(self, original: Any, *args: Any, **kwargs: Any) -> Any:
        """``GroundedProposer.propose_instruction_for_predictor(proposer, ...)``."""
        instruction = original(*args, **kwargs)
        arguments = inspect.signature(original.function).bind(*args, **kwargs).arguments
        if not isinstance(arguments.get("pred_i"), int):
            raise Unrecognised(
                f"pred_i is {arguments.get('pred_i')!r}, not a predictor's position",
                piece="GroundedProposer.propose_instruction_for_predictor(pred_i, ...)",
            )
        self._record_proposal(instruction, arguments)
        return instruction

    def _record_proposal(self, instruction: Any, kw: dict[str, Any]) -> None:
        assert self.recorder is not None
        tip = kw.get("tip")
        key = _tip_key(tip)
        predictor = kw.get("pred_i")
        with self._lock:
            self.proposals += 1
            proposed = self.proposed.setdefault(int(predictor or 0), [])
            index = len(proposed)
            proposed.append(str(instruction))
        # DSPy puts the original instruction in slot 0 (see _on_propose_instructions)
        used = index != 0
        self.recorder.emit(
            EventKind.DECISION,
            {
                "optimizer": NAME,
                "step": 2,
                "decision": f"Propose instruction {index} for predictor {predictor} "
                f"(demo set {kw.get('demo_set_i')})",
                "strategy": None,
                "rationale": (f"Tip '{key}': {tip}" if tip else "No tip")
                + ("" if used else "; MIPROv2 replaces candidate 0 by the original instruction"),
                "action": str(instruction),
                "details": {
                    "predictor": predictor,
                    "index": index,
                    "used": used,
                    "demo_set": kw.get("demo_set_i"),
                    "tip_key": key,
                    "tip": tip,
                    "instruction": str(instruction),
                },
            },
        )

    def on_propose_instructions(self, original: Any, *args: Any, **kwargs: Any) -> Any:
        candidates = original(*args, **kwargs)
        assert self.recorder is not None
        for predictor, texts in sorted((candidates or {}).items()):
            texts = [str(t) for t in texts]
            proposed = self.proposed.get(int(predictor), [])
            sources = [
                "original"
                if i == 0
                else (f"proposal {i}" if i < len(proposed) and proposed[i] == text else "other")
                for i, text in enumerate(texts)
            ]
            self.instruction_sets[int(predictor)] = texts
            self.recorder.emit(
                EventKind.DECISION,
                {
                    "optimizer": NAME,
                    "step": 2,
                    "decision": f"Instruction candidates for predictor {predictor}",
                    "strategy": None,
                    "rationale": "The proposals, with candidate 0 replaced by the predictor's "
                    "original instruction (as MIPROv2 does); optuna trials choose by this index",
                    "action": "\n".join(f"{i}: {text}" for i, text in enumerate(texts)),
                    "details": {"predictor": predictor, "instructions": texts, "sources": sources},
                },
            )
        return candidates

    # -- step 3: optuna trials -----------------------------------------------------------

    def on_select_and_insert(self, original: Any, program: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(program, *args, **kwargs)
        chosen, raw = result
        trial = args[2] if len(args) > 2 else kwargs.get("trial")
        number = getattr(trial, "number", None)
        if not isinstance(number, int) or not isinstance(chosen, list):
            raise Unrecognised(
                f"its trial argument {trial!r:.60} is not an optuna trial",
                piece="MIPROv2._select_and_insert_instructions_and_demos(..., trial)",
            )
        parents = (self.default_trial,) if self.default_trial else ()
        with self._lock:
            self.candidates += 1
            candidate = self.candidates
        recorder = self.journal.new_trial(
            name=f"optuna trial {number}",
            parents=parents,
            program=program,
            metadata={
                "role": "candidate",
                "optimizer": NAME,
                "optuna_trial": number,
                "candidate": candidate,
            },
        )
        recorder.emit(
            EventKind.DECISION,
            {
                "optimizer": NAME,
                "step": 3,
                "decision": f"Optuna trial {number}: " + "; ".join(chosen),
                "strategy": None,
                "rationale": "Suggested by optuna's TPE sampler",
                "action": "Insert the chosen instruction and demo set into each predictor",
                "details": {
                    "params": jsonable(raw),
                    "instructions": self._chosen_instructions(raw),
                },
            },
        )
        name = self.journal.program_name
        recorder.emit(
            EventKind.CANDIDATE_CREATED,
            {
                "optimizer": NAME,
                "candidate": recorder.trial_id,
                "name": f"optuna trial {number}",
                "parents": list(parents),
                "strategy": None,
                "changes": changes_between(
                    variables_of(self.student, name), variables_of(program, name)
                ),
            },
        )
        with self._lock:
            self.programs[id(program)] = (program, recorder, recorder.trial_id)
            self.names[recorder.trial_id] = f"optuna trial {number}"
            self.numbers[recorder.trial_id] = candidate
        setattr(program, TAG, recorder.trial_id)
        return result

    def _chosen_instructions(self, params: dict[str, Any]) -> dict[str, str]:
        """Predictor index -> the instruction text an optuna trial's params choose."""
        chosen = {}
        for predictor, texts in self.instruction_sets.items():
            index = params.get(f"{predictor}_predictor_instruction")
            if isinstance(index, int) and 0 <= index < len(texts):
                chosen[str(predictor)] = texts[index]
        return chosen

    def evaluate(
        self,
        original: Any,
        batch_size: int,
        trainset: list[Any],
        program: Any,
        evaluate: Any,
        rng: Any = None,
    ) -> Any:
        recorder, parent = self._recorder_for(program, batch_size >= len(trainset))
        with recording(recorder):
            result = original(batch_size, trainset, program, evaluate, rng)
        scope = "full" if batch_size >= len(trainset) else "minibatch"
        self._finish(recorder, parent, result, trainset, scope)
        return result

    def _recorder_for(self, program: Any, full: bool) -> tuple[TrialRecorder, str]:
        with self._lock:
            known = self.programs.get(id(program))
            if known is not None and known[1] is not None:
                self.programs[id(program)] = (program, None, known[2])
                return known[1], known[2]
        if known is None and self.default_trial is None:
            recorder = self.journal.new_trial(
                name="default program",
                program=program,
                metadata={"role": "candidate", "optimizer": NAME, "candidate": 0},
            )
            self.default_trial = recorder.trial_id
            self.numbers[recorder.trial_id] = 0
            setattr(program, TAG, recorder.trial_id)  # MIPROv2 may return it, as a copy
            return recorder, recorder.trial_id
        parent = known[2] if known else self.default_trial
        recorder = self.journal.new_trial(
            name=f"full evaluation of {self.names.get(parent or '', 'the default program')}",
            parents=(parent,) if parent else (),
            program=program,
            metadata={"role": "validation", "optimizer": NAME, "scope": "full"},
        )
        return recorder, parent or recorder.trial_id

    def _finish(
        self, recorder: TrialRecorder, candidate: str, result: Any, trainset: list[Any], scope: str
    ) -> None:
        index = {id(ex): i for i, ex in enumerate(trainset)}
        results = evaluation_results(
            recorder, result, self.metric, index_of=lambda ex: index.get(id(ex), 0)
        )
        trial = finish_scored(
            self.journal,
            recorder,
            results,
            metric=self.metric,
            scope=scope,
            candidate=candidate,
            scored_extra={"optuna_value": number_or_none(getattr(result, "score", None))},
        )
        score = trial.score
        if scope == "full" and score is not None:
            with self._lock:
                self.full_scores.setdefault(candidate, score)
                self.full_scores[candidate] = max(self.full_scores[candidate], score)

    def conclude(self, outputs: Any, exception: BaseException | None) -> None:
        if outputs is not None:
            self.result_trial_id = getattr(outputs, TAG, None)
            if self.result_trial_id is not None:
                delattr(outputs, TAG)
                self._record_return(self.result_trial_id)

    def _label(self, trial_id: str) -> str:
        """``optuna trial 7 · candidate 4``, ``default program · candidate 0``: the trial's
        name and candidate number."""
        name = self.names.get(trial_id) or (
            "default program" if trial_id == self.default_trial else "a candidate"
        )
        number = self.numbers.get(trial_id)
        return name if number is None else f"{name} · candidate {number}"

    def _record_return(self, returned: str) -> None:
        """The final selection: the candidate MIPROv2 returns, by its full-evaluation score."""
        if self.recorder is None:
            return
        name = self._label(returned)
        scores = ", ".join(
            f"{self._label(t)} ({format_number(score)})" for t, score in self.full_scores.items()
        )
        best = self.full_scores.get(returned)
        self.recorder.emit(
            EventKind.DECISION,
            {
                "optimizer": NAME,
                "step": None,
                "decision": f"Return {name}",
                "strategy": None,
                "rationale": (
                    f"Highest full-evaluation score {format_number(best)} among {scores}"
                    if best is not None
                    else "MIPROv2's best program; it has no full evaluation on record"
                ),
                "action": f"compile returns {name}",
                "details": {"returned": returned, "full_scores": dict(self.full_scores)},
            },
        )

    def end_payload(self, outputs: Any, exception: BaseException | None) -> OptimizerOutcome:
        if not self.full_scores:
            return {}
        best = max(self.full_scores, key=lambda trial_id: self.full_scores[trial_id])
        return {"best_candidate": best, "best_score": self.full_scores[best]}


register_hook(NAME, MiproHook)
