"""What dspex records while ``dspy.BootstrapFewShotWithRandomSearch.compile`` runs (DSPy 3.4.x).

The random search builds one candidate per seed (seed -3: zero-shot; -2: labeled demos
only; -1: bootstrapped demos, trainset unshuffled; 0, 1, ...: bootstrapped demos from a
shuffled trainset, at most a seed-drawn number of them), scores each on the valset and
returns the first with the highest score. Trials (``metadata["role"]``):

* ``compile``: ``optimizer_start``; the nested LabeledFewShot / BootstrapFewShot compiles
  are their own ``compile`` trials, parented to this one; the winner as a ``decision``
  with the scores it beat; ``optimizer_end``;
* ``candidate`` "seed s (...)": one per seed, parented to the zero-shot candidate: a
  ``decision`` (how it was built, by which nested compile trial: ``details.built_by``),
  ``candidate_created`` with its demos, the valset runs, ``trial_score`` and
  ``candidate_scored`` (scope ``full``; ``search_score`` is DSPy's percentage).

Relied on: the module global ``Evaluate`` of ``dspy.teleprompt.random_search`` (a patch of
:mod:`dspex.capture.instrument`); the seed is read from ``compile``'s local variables
(checked at install, and at each evaluation: a seed from -3 up, each once, in order).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dspex.capture.context import recording
from dspex.capture.program import program_name, variables_of
from dspex.capture.scoring import metric_name
from dspex.formatting import format_number
from dspex.model import EventKind, Variables
from dspex.model.payloads import OptimizerOutcome
from dspex.optimizers import register_hook
from dspex.optimizers.base import RESULT_MARK, Unrecognised
from dspex.optimizers.evaluating import EvaluatingHook
from dspex.optimizers.patching import compile_locals
from dspex.optimizers.units import changes_between, finish_evaluated

__all__ = ["RandomSearchHook"]

NAME = "BootstrapFewShotWithRandomSearch"
MODULE = "dspy.teleprompt.random_search"
COMPILE_LOCALS = ("seed", "size", "score_data")


@dataclass
class _Candidate:
    seed: int
    trial_id: str
    name: str
    variables: Variables
    program: Any
    score: float | None = None


def describe_seed(seed: int, size: int | None) -> tuple[str, str, str]:
    """(label, strategy, how it was built) of the random search's candidate for ``seed``.

    >>> describe_seed(-2, None)[0]
    'seed -2 (labeled demos only)'
    """
    if seed == -3:
        return "seed -3 (zero-shot)", "zero_shot", "The student with no demos"
    if seed == -2:
        return (
            "seed -2 (labeled demos only)",
            "labeled",
            "LabeledFewShot: labeled trainset examples as demos",
        )
    if seed == -1:
        return (
            "seed -1 (bootstrapped, unshuffled)",
            "bootstrap",
            "BootstrapFewShot on the trainset in its order",
        )
    return (
        f"seed {seed} (bootstrapped, shuffled)",
        "bootstrap_shuffled",
        f"BootstrapFewShot on the trainset shuffled with seed {seed}, at most {size} "
        "bootstrapped demo(s) per predictor",
    )


class RandomSearchHook(EvaluatingHook):
    """Records each seed's candidate with its score and demos, and the winner."""

    patches = (f"{NAME}: {MODULE}.Evaluate",)
    receives = (NAME,)
    adds = "the random search's candidates, their scores and the winner"
    optimizer_name = NAME
    required_locals = COMPILE_LOCALS

    def install(self) -> None:
        self.check(self.optimizer)
        self.metric = metric_name(self.optimizer.metric)
        trainset = list(self.inputs.get("trainset") or [])
        self.valset = list(self.inputs.get("valset") or trainset)
        self._index = {id(ex): i for i, ex in enumerate(self.valset)}
        self.root = self.journal.program_name or program_name(self.student)
        self.candidates: list[_Candidate] = []
        self.best: _Candidate | None = None

    # -- one candidate per seed --------------------------------------------------------------

    def evaluate(self, evaluate: Any, program: Any, *args: Any, **kwargs: Any) -> Any:
        local = compile_locals(
            NAME, "score_data", COMPILE_LOCALS, kinds={"seed": int}, optional=("size",)
        )
        seed = int(local["seed"])
        last = self.candidates[-1].seed if self.candidates else -4
        if not last < seed < int(getattr(self.optimizer, "num_candidate_sets", seed + 1)):
            raise Unrecognised(
                f"seed {seed} after seed {last}: it no longer numbers the candidates",
                piece=f"{NAME}.compile local variable seed",
            )
        candidate, recorder = self._open(program, seed, local.get("size"))
        with recording(recorder):
            result = evaluate(program, *args, **kwargs)
        trial = finish_evaluated(
            self.journal,
            recorder,
            result,
            metric=self.metric,
            index=self._index,
            score_key="search_score",
        )
        candidate.score = trial.score
        return result

    def _open(self, program: Any, seed: int, size: Any) -> tuple[_Candidate, Any]:
        label, strategy, how = describe_seed(seed, size if seed >= 0 else None)
        zero_shot = next((c for c in self.candidates if c.seed == -3), None)
        base = zero_shot.variables if zero_shot else variables_of(self.student, self.root)
        recorder = self.journal.new_trial(
            name=label,
            parents=(zero_shot.trial_id,) if zero_shot else (),
            program=program,
            metadata={"role": "candidate", "optimizer": NAME, "seed": seed},
        )
        variables = variables_of(program, self.root)
        candidate = _Candidate(seed, recorder.trial_id, label, variables, program)
        self.candidates.append(candidate)
        demos = {name: len(p.demos) for name, p in variables.predictors.items()}
        recorder.emit(
            EventKind.DECISION,
            {
                "optimizer": NAME,
                "step": None,
                "decision": f"Candidate for {label}",
                "strategy": strategy,
                "rationale": how,
                "action": "Score it on the valset: "
                + ", ".join(f"{name} with {n} demo(s)" for name, n in demos.items()),
                "details": {
                    "seed": seed,
                    "max_bootstrapped_demos": size if seed >= 0 else None,
                    "built_by": getattr(program, RESULT_MARK, None),
                    "demos": demos,
                },
            },
        )
        recorder.emit(
            EventKind.CANDIDATE_CREATED,
            {
                "optimizer": NAME,
                "candidate": recorder.trial_id,
                "name": label,
                "parents": [zero_shot.trial_id] if zero_shot else [],
                "strategy": strategy,
                "changes": changes_between(base, variables),
            },
        )
        return candidate, recorder

    # -- the winner ------------------------------------------------------------------------

    def conclude(self, outputs: Any, exception: BaseException | None) -> None:
        self._choose_result(outputs)

    def _choose_result(self, outputs: Any) -> None:
        self.best = next((c for c in self.candidates if c.program is outputs), None)
        scored = [c for c in self.candidates if c.score is not None]
        if self.best is None or self.recorder is None:
            return
        self.result_trial_id = self.best.trial_id
        others = [c for c in scored if c is not self.best]
        stop = getattr(self.optimizer, "stop_at_score", None)
        stopped = len(self.candidates) < self._planned()
        self.recorder.emit(
            EventKind.DECISION,
            {
                "optimizer": NAME,
                "step": None,
                "decision": f"Return {self.best.name}",
                "strategy": None,
                "rationale": f"Highest valset score {format_number(self.best.score)} (the first "
                "to reach it wins); it beat "
                + (
                    ", ".join(f"{c.name}: {format_number(c.score)}" for c in others)
                    or "no other seed"
                )
                + (f". Stopped early: the score reached stop_at_score {stop}" if stopped else ""),
                "action": f"compile returns {self.best.name}",
                "details": {
                    "scores": {c.trial_id: c.score for c in scored},
                    "seeds": {str(c.seed): c.score for c in scored},
                    "stopped_early": stopped,
                },
            },
        )

    def _planned(self) -> int:
        restrict = self.inputs.get("restrict")
        seeds = range(-3, int(getattr(self.optimizer, "num_candidate_sets", 0)))
        return len([s for s in seeds if restrict is None or s in set(restrict)])

    def end_payload(self, outputs: Any, exception: BaseException | None) -> OptimizerOutcome:
        if self.best is None:
            return {}
        return {"best_candidate": self.best.trial_id, "best_score": self.best.score}


register_hook(NAME, RandomSearchHook)
