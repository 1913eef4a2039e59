"""A realistic, deterministic SIMBA-like experiment built from dspex records.

Until capture records real runs, this is what the viewers are tested against. It follows
``/work/notes/PAYLOADS.md``: orchestration (step, decision, candidate_created,
candidate_scored), execution (module_start/end, lm_call) and evaluation (example_result,
trial_score), with parent_trial_ids, one failing example with a traceback and strings
that would run script if a viewer forgot to escape them.

    python -m tests.view.fixtures tests/view/data/simba_small.json   # rewrite the data file
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dspex import (
    EnvironmentInfo,
    ErrorInfo,
    ExampleResult,
    Experiment,
    Hypothesis,
    LMSettings,
    OptimizerInfo,
    PredictorVariables,
    ProgramInfo,
    TraceEvent,
    Trial,
    Variables,
)
from dspex.ids import id_at
from dspex.model.experiment import summarize

XSS = (
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "</textarea>",
    "</script>",
    "\"'><svg onload=alert(1)>",
)
XSS_TEXT = " ".join(XSS)

BASE_INSTRUCTIONS = "Given the fields `question`, produce the fields `answer`."
RULE_1 = "When a question mixes units, convert everything to the smallest unit first."
RULE_2 = "Check the arithmetic of the final step before answering."

QUESTIONS = (
    ("What is 12 + 30?", "42"),
    ("A box holds 7 rows of 6 eggs. How many eggs?", "42"),
    ("What is 1 km plus 250 m in metres?", "1250"),
    ("Sam has 3 apples and buys 9 more. How many now? " + XSS[1], "12"),
    ("What is 81 / 9?", "9"),
    ("What is 15% of 200? " + XSS[4], "30"),
)

DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass
class _Clock:
    """Deterministic ids, timestamps and monotonic clock for one fixture."""

    seed: int
    start: datetime = datetime(2026, 7, 22, 10, 30, 0, tzinfo=UTC)
    counter: int = 0
    ns: int = 1_000_000_000
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def id(self, kind: str) -> str:
        self.counter += 1
        return id_at(kind, 1_780_000_000_000, self.seed * 1_000_000 + self.counter)

    def tick(self, low_ms: float = 1.0, high_ms: float = 30.0) -> tuple[datetime, int]:
        self.ns += int(self.rng.uniform(low_ms, high_ms) * 1e6)
        return self.start + timedelta(microseconds=(self.ns - 1_000_000_000) // 1000), self.ns


class _TrialBuilder:
    def __init__(self, clock: _Clock, trial_id: str) -> None:
        self.clock, self.trial_id = clock, trial_id
        self.events: list[TraceEvent] = []

    def add(
        self,
        source: str,
        kind: str,
        payload: dict[str, Any],
        *,
        worker: str = "main",
        pid: int = 4100,
        parent: str | None = None,
        gap: tuple[float, float] = (1.0, 30.0),
    ) -> str:
        timestamp, ns = self.clock.tick(*gap)
        event = TraceEvent(
            id=self.clock.id("evt"),
            trial_id=self.trial_id,
            parent_id=parent,
            sequence=len(self.events),
            timestamp=timestamp,
            monotonic_ns=ns,
            source=source,
            kind=kind,
            pid=pid,
            worker=worker,
            payload=payload,
        )
        self.events.append(event)
        return event.id


def _prompt(instructions: str, demos: list[dict[str, Any]], question: str) -> list[dict[str, Any]]:
    system = (
        "Your input fields are:\n1. `question` (str)\nYour output fields are:\n"
        "1. `answer` (str)\nAll interactions will be structured in the following way, with "
        "the appropriate values filled in.\n\n[[ ## question ## ]]\n{question}\n\n"
        "[[ ## answer ## ]]\n{answer}\n\n[[ ## completed ## ]]\n"
        f"In adhering to this structure, your objective is: \n        {instructions}"
    )
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    for demo in demos:
        messages.append({"role": "user", "content": f"[[ ## question ## ]]\n{demo['question']}"})
        messages.append(
            {
                "role": "assistant",
                "content": f"[[ ## answer ## ]]\n{demo['answer']}\n\n[[ ## completed ## ]]",
            }
        )
    messages.append(
        {
            "role": "user",
            "content": f"[[ ## question ## ]]\n{question}\n\nRespond with the "
            "corresponding output fields, starting with the field `[[ ## answer ## ]]`, and then "
            "ending with the marker for `[[ ## completed ## ]]`.",
        }
    )
    return messages


def _run_examples(
    b: _TrialBuilder,
    variables: Variables,
    values: list[float],
    *,
    failing: int | None = None,
    xss_response: bool = False,
) -> list[ExampleResult]:
    predictor = variables.predictors["qa.predict"]
    temperature = variables.lm.settings.get("temperature", 0.0) if variables.lm else 0.0
    results = []
    for index, ((question, answer), value) in enumerate(zip(QUESTIONS, values, strict=True)):
        worker, pid = (f"worker-{index % 2 + 1}", 4200 + index % 2)
        outer = b.add(
            "execution",
            "module_start",
            {
                "module": "qa",
                "class": "examples.arith.QA",
                "signature": "",
                "inputs": {"question": question},
            },
            worker=worker,
            pid=pid,
        )
        inner = b.add(
            "execution",
            "module_start",
            {
                "module": "qa.predict",
                "class": "dspy.Predict",
                "signature": "question -> answer",
                "inputs": {"question": question},
            },
            worker=worker,
            pid=pid,
            parent=outer,
        )
        predicted = answer if value == 1.0 else str(int(answer) + 1)
        response = f"[[ ## answer ## ]]\n{predicted}\n\n[[ ## completed ## ]]"
        if xss_response and index == 0:
            response = f"[[ ## answer ## ]]\n{predicted} {XSS_TEXT}\n\n[[ ## completed ## ]]"
        prompt_tokens = 120 + 40 * len(predictor.demos) + len(question) // 4
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": 12,
            "total_tokens": prompt_tokens + 12,
        }
        latency = round(b.clock.rng.uniform(80, 400), 1)
        error = None
        if index == failing:
            error = ErrorInfo(
                type="dspy.utils.exceptions.AdapterParseError",
                message="LM response cannot be parsed: missing field `answer`",
                traceback=(
                    "Traceback (most recent call last):\n"
                    '  File "dspy/adapters/chat_adapter.py", line 212, in parse\n'
                    "    raise AdapterParseError(...)\n"
                    "dspy.utils.exceptions.AdapterParseError: LM response cannot be parsed: "
                    "missing field `answer`\n"
                ),
            )
            response = "I think the answer might be </textarea> something"
        b.add(
            "execution",
            "lm_call",
            {
                "model": "offline/arith",
                "messages": _prompt(predictor.instructions, list(predictor.demos), question),
                "response": [response],
                "settings": {"temperature": temperature, "max_tokens": 1000},
                "usage": usage,
                "latency_ms": latency,
                "cache_hit": False,
                "module": "qa.predict",
                "error": None,
            },
            worker=worker,
            pid=pid,
            parent=inner,
            gap=(latency * 0.9, latency * 1.1),
        )
        err = error.to_dict() if error else None
        outputs = None if error else {"answer": predicted}
        b.add(
            "execution",
            "module_end",
            {
                "module": "qa.predict",
                "class": "dspy.Predict",
                "outputs": outputs,
                "error": err,
                "latency_ms": latency + 1.5,
                "start_id": inner,
            },
            worker=worker,
            pid=pid,
            parent=outer,
        )
        b.add(
            "execution",
            "module_end",
            {
                "module": "qa",
                "class": "examples.arith.QA",
                "outputs": outputs,
                "error": err,
                "latency_ms": latency + 3.0,
                "start_id": outer,
            },
            worker=worker,
            pid=pid,
        )
        passed = error is None and value == 1.0
        b.add(
            "evaluation",
            "example_result",
            {
                "example": index,
                "inputs": {"question": question},
                "labels": {"answer": answer},
                "prediction": outputs,
                "metric": "accuracy",
                "value": value if not error else 0.0,
                "passed": passed,
                "latency_ms": latency + 3.0,
                "error": err,
            },
        )
        results.append(
            ExampleResult(
                index=index,
                inputs={"question": question},
                labels={"answer": answer},
                prediction=outputs,
                metrics={"accuracy": value if not error else 0.0},
                latency_ms=latency + 3.0,
                tokens=usage["total_tokens"],
                cost=0.0001 * prompt_tokens,
                error=error,
                worker=worker,
            )
        )
    score = sum(r.metrics["accuracy"] for r in results) / len(results)
    b.add(
        "evaluation",
        "trial_score",
        {
            "score": score,
            "metric": "accuracy",
            "n": len(results),
            "failures": sum(1 for r in results if r.error),
            "scope": "full",
        },
    )
    return results


def _propose(
    b: _TrialBuilder,
    *,
    step: int,
    source: Trial,
    candidate_id: str,
    name: str,
    strategy: str,
    variables: Variables,
    changes: list[dict[str, Any]],
    bucket_example: int,
) -> None:
    step_id = b.add(
        "orchestration",
        "step",
        {
            "optimizer": "SIMBA",
            "step": step,
            "batch": [0, 2, 3, 5],
            "details": {"temperature_for_sampling": 0.2},
        },
    )
    if strategy == "append_a_rule":
        action = "OfferFeedback advice: " + changes[0]["after"][len(changes[0]["before"]) :].strip()
    else:
        action = f"Append the better trajectory of example {bucket_example} as a demo"
    b.add(
        "orchestration",
        "decision",
        {
            "optimizer": "SIMBA",
            "step": step,
            "decision": f"Propose a new candidate from candidate {source.index}",
            "strategy": strategy,
            "rationale": (
                f"High-variance bucket for example {bucket_example} "
                "(max-to-min gap 1.0, max-to-avg gap 0.5)"
            ),
            "action": action,
            "details": {
                "source_candidate": source.id,
                "bucket": {
                    "example": bucket_example,
                    "max_to_min_gap": 1.0,
                    "max_to_avg_gap": 0.5,
                    "max_score": 1.0,
                },
                "temperature": 1.0,
            },
        },
        parent=step_id,
    )
    if strategy == "append_a_rule":
        feedback = b.add(
            "execution",
            "module_start",
            {
                "module": "simba.offer_feedback",
                "class": "dspy.Predict",
                "signature": "program_code, modules_defn, program_inputs, "
                "worse_program_trajectory, better_program_trajectory -> "
                "discussion, module_advice",
                "inputs": {},
            },
            parent=None,
        )
        advice = changes[0]["after"][len(changes[0]["before"]) :].strip()
        b.add(
            "execution",
            "lm_call",
            {
                "model": "offline/arith",
                "messages": [
                    {
                        "role": "system",
                        "content": "You will be given two trajectories of an "
                        "LLM-driven program's execution. Your goal is to help the program's "
                        "modules build up experience on how to maximize the reward value "
                        "assigned to the program's outputs if it were to receive similar inputs "
                        "in the future.",
                    },
                    {
                        "role": "user",
                        "content": "worse_program_trajectory: ...answer 1251 "
                        "(reward 0.0)\nbetter_program_trajectory: ...answer 1250 (reward 1.0)",
                    },
                ],
                "response": [
                    "[[ ## discussion ## ]]\nThe worse trajectory added units "
                    "without converting.\n\n[[ ## module_advice ## ]]\n"
                    '{"qa.predict": "' + advice + '"}\n\n[[ ## completed ## ]]'
                ],
                "settings": {"temperature": 1.0, "max_tokens": 1000},
                "usage": {"prompt_tokens": 410, "completion_tokens": 64, "total_tokens": 474},
                "latency_ms": 512.0,
                "cache_hit": False,
                "module": "simba.offer_feedback",
                "error": None,
            },
            parent=feedback,
            gap=(450, 520),
        )
        b.add(
            "execution",
            "module_end",
            {
                "module": "simba.offer_feedback",
                "class": "dspy.Predict",
                "outputs": {"module_advice": {"qa.predict": advice}},
                "error": None,
                "latency_ms": 515.0,
                "start_id": feedback,
            },
        )
    b.add(
        "orchestration",
        "candidate_created",
        {
            "optimizer": "SIMBA",
            "candidate": candidate_id,
            "name": name,
            "parents": [source.id],
            "strategy": strategy,
            "changes": changes,
        },
        parent=step_id,
    )


def simba_experiment(seed: int = 7) -> Experiment:
    """A baseline and three SIMBA candidates (rule, demo, rule with a failing example)."""
    clock = _Clock(seed)
    exp_id = clock.id("exp")
    lm = LMSettings(model="offline/arith", settings={"temperature": 0.0, "max_tokens": 1000})
    base_vars = Variables(
        predictors={
            "qa.predict": PredictorVariables(
                signature="question -> answer", instructions=BASE_INSTRUCTIONS
            )
        },
        lm=lm,
    )
    trials: list[Trial] = []

    def finish(
        b: _TrialBuilder,
        index: int,
        name: str,
        variables: Variables,
        results: list[ExampleResult],
        parents: tuple[str, ...],
    ) -> Trial:
        score = sum(r.metrics["accuracy"] for r in results) / len(results)
        first, last = b.events[0], b.events[-1]
        return Trial(
            id=b.trial_id,
            experiment_id=exp_id,
            index=index,
            name=name,
            parent_trial_ids=parents,
            variables=variables,
            example_results=tuple(results),
            score=score,
            started_at=first.timestamp,
            finished_at=last.timestamp,
            events=tuple(b.events),
        )

    # Trial 0: the baseline.
    b = _TrialBuilder(clock, clock.id("trl"))
    results = _run_examples(b, base_vars, [1.0, 1.0, 0.0, 1.0, 1.0, 0.0], xss_response=True)
    trials.append(finish(b, 0, "baseline", base_vars, results, ()))

    specs = [
        # index, name, parent index, strategy, values, failing example
        (1, "candidate 1", 0, "append_a_rule", [1.0, 1.0, 1.0, 1.0, 1.0, 0.0], None),
        (2, "candidate 2", 1, "append_a_demo", [1.0, 1.0, 1.0, 1.0, 1.0, 1.0], None),
        (3, "candidate 3", 1, "append_a_rule", [1.0, 0.0, 1.0, 1.0, 1.0, 0.0], 1),
    ]
    for index, name, parent_index, strategy, values, failing in specs:
        parent = trials[parent_index]
        source_pred = parent.variables.predictors["qa.predict"]
        trial_id = clock.id("trl")
        if strategy == "append_a_rule":
            rule = RULE_1 if index == 1 else RULE_2
            after = source_pred.instructions + "\n\n" + rule
            pred = source_pred.replace(instructions=after)
            changes = [
                {
                    "predictor": "qa.predict",
                    "field": "instructions",
                    "before": source_pred.instructions,
                    "after": after,
                }
            ]
        else:
            demo = {"question": QUESTIONS[2][0], "answer": QUESTIONS[2][1]}
            pred = source_pred.replace(demos=(*source_pred.demos, demo))
            changes = [
                {
                    "predictor": "qa.predict",
                    "field": "demos",
                    "before": list(source_pred.demos),
                    "after": [*source_pred.demos, demo],
                }
            ]
        lm_t = LMSettings(
            model="offline/arith",
            settings={"temperature": 1.0 if index == 3 else 0.0, "max_tokens": 1000},
        )
        variables = Variables(predictors={"qa.predict": pred}, lm=lm_t)
        b = _TrialBuilder(clock, trial_id)
        _propose(
            b,
            step=index,
            source=parent,
            candidate_id=trial_id,
            name=name,
            strategy=strategy,
            variables=variables,
            changes=changes,
            bucket_example=2,
        )
        results = _run_examples(b, variables, values, failing=failing)
        b.add(
            "orchestration",
            "candidate_scored",
            {
                "candidate": trial_id,
                "score": sum(r.metrics["accuracy"] for r in results) / 6,
                "scope": "full",
                "n": 6,
            },
        )
        trials.append(finish(b, index, name, variables, results, (parent.id,)))

    best = max(trials, key=lambda t: (t.score or 0.0, -t.index))
    return Experiment(
        id=exp_id,
        name="simba-arith " + XSS[0],
        hypothesis=Hypothesis(
            id=clock.id("hyp"),
            research_question="Do appended rules beat appended demos on arithmetic questions?",
            prediction="append_a_rule candidates score higher than append_a_demo ones",
            independent_variables=("strategy",),
            dependent_variables=("accuracy",),
            type="comparative",
            status="active",
        ),
        program=ProgramInfo(name="qa", class_path="examples.arith.QA"),
        optimizer=OptimizerInfo(
            name="SIMBA", settings={"bsize": 4, "num_candidates": 2, "max_steps": 3, "max_demos": 4}
        ),
        status="completed",
        created_at=clock.start,
        started_at=clock.start,
        completed_at=trials[-1].finished_at,
        tags=("fixture", "simba"),
        # Pinned: the machine's own platform string changes with every kernel update.
        environment=EnvironmentInfo(python_version="3.11", platform="fixture"),
        trials=tuple(trials),
        summary=summarize(trials),
        best_trial_id=best.id,
    )


def large_experiment(n_examples: int = 400, seed: int = 11) -> Experiment:
    """One trial of 2,377 events (66 rounds of the 6 questions, 36 events each, and a score),
    for speed checks."""
    clock = _Clock(seed)
    exp_id = clock.id("exp")
    variables = Variables(
        predictors={"qa.predict": PredictorVariables(instructions=BASE_INSTRUCTIONS * 20)},
        lm=LMSettings(model="offline/arith", settings={"temperature": 0.0}),
    )
    b = _TrialBuilder(clock, clock.id("trl"))
    results: list[ExampleResult] = []
    for chunk in range(n_examples // len(QUESTIONS)):
        values = [float((chunk + i) % 3 != 0) for i in range(len(QUESTIONS))]
        results += _run_examples(b, variables, values)
        b.events.pop()  # keep one trial_score, at the end
    b.add(
        "evaluation",
        "trial_score",
        {"score": 0.66, "metric": "accuracy", "n": len(results), "failures": 0, "scope": "full"},
    )
    results = [r.replace(index=i) for i, r in enumerate(results)]
    trial = Trial(
        id=b.trial_id,
        experiment_id=exp_id,
        index=0,
        name="large",
        variables=variables,
        example_results=tuple(results),
        score=0.66,
        started_at=b.events[0].timestamp,
        finished_at=b.events[-1].timestamp,
        events=tuple(b.events),
    )
    return Experiment(
        id=exp_id,
        name="large",
        program=ProgramInfo(name="qa"),
        status="completed",
        created_at=clock.start,
        trials=(trial,),
        best_trial_id=trial.id,
        summary=summarize([trial]),
    )


def fixture_files() -> list[Path]:
    """Every recorded experiment the golden tests run over."""
    return sorted(DATA_DIR.glob("*.json"))


def load(path: Path) -> Experiment:
    return Experiment.from_json(path.read_text(encoding="utf-8"))


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DATA_DIR / "simba_small.json"
    target.write_text(simba_experiment().to_json() + "\n", encoding="utf-8")
    print(f"wrote {target}")
