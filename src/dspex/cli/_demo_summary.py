"""What ``dspex demo`` prints when it is done: one screen, from the archived record only.

:func:`demo_summary` reads an :class:`~dspex.Experiment` (never DSPy objects) and
returns: the scores of the baseline and of the optimized program with their scope,
the hypothesis and its verdict, the chain of decisions that made the best candidate,
and commands to look further, each runnable as printed from the same directory::

    text = demo_summary(store.get_experiment(experiment_id), hints=Hints(store_url))

The optimizer's full reasoning is in the best candidate's timeline (``--verbose``, or
the printed ``--trial N --full`` command).
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dspex.analysis import compare
from dspex.cli._demo_rag import retrieval_section
from dspex.errors import NotComparableError
from dspex.formatting import format_p, format_score
from dspex.model import EventKind, Experiment, Hypothesis, Trial, Verdict
from dspex.model.payloads import CandidateCreatedPayload, payload_of
from dspex.redact import redact_url
from dspex.view.entries import describe_change
from dspex.view.labels import score_scope_of, trial_label
from dspex.view.verdict import verdict_line

__all__ = ["Hints", "demo_summary", "evaluated_pair", "lineage_of"]


@dataclass(frozen=True)
class Hints:
    """How to reach the store again from a shell: the ``--store`` option to repeat.

    ``store_url`` is what the user passed (None: the configured store, which later
    commands find by themselves). A ``memory://`` store is gone when the process ends,
    so no hint can work: the summary says so instead.
    """

    store_url: str | None = None
    program: tuple[str, ...] = ("dspex",)
    """How a shell in the current directory runs this dspex (see :func:`dspex_command`)."""

    @property
    def reachable(self) -> bool:
        return not (self.store_url or "").startswith("memory:")

    @property
    def password_hidden(self) -> bool:
        """The URL holds a password, which the printed commands leave out."""
        return bool(self.store_url) and redact_url(self.store_url or "") != self.store_url

    def command(self, *args: str) -> str:
        store = ["--store", redact_url(self.store_url)] if self.store_url else []
        return shlex.join([*self.program, *args, *store])


def dspex_command() -> tuple[str, ...]:
    """How a shell in the current directory runs the ``dspex`` that is running now:
    ``dspex`` when the shell finds this one on PATH, else its path (``.venv/bin/dspex``
    after ``make demo``, whose virtualenv is not activated), relative when it is below
    the current directory."""
    script = Path(sys.argv[0])
    if script.name != "dspex":  # python -m dspex, or a test: the script next to Python
        script = Path(sys.executable).with_name("dspex")
        if not script.exists():
            return (_shown_path(Path(sys.executable)), "-m", "dspex")
    found = shutil.which("dspex")
    if found and Path(found).resolve() == script.resolve():
        return ("dspex",)
    return (_shown_path(script),)


def _shown_path(path: Path) -> str:
    absolute = Path(os.path.abspath(path))
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)


def evaluated_pair(experiment: Experiment) -> tuple[Trial | None, Trial | None]:
    """The baseline and the optimized program's evaluations: the first evaluation trial
    without parents and the last one derived from a candidate."""
    evaluations = [t for t in experiment.trials if t.metadata.get("role") == "evaluation"]
    baseline = next((t for t in evaluations if not t.parent_trial_ids), None)
    optimized = next((t for t in reversed(evaluations) if t.parent_trial_ids), None)
    return baseline, optimized


def lineage_of(experiment: Experiment, trial: Trial) -> list[Trial]:
    """``trial`` and its ancestors by first parent, oldest first."""
    by_id = {t.id: t for t in experiment.trials}
    chain = [trial]
    while chain[-1].parent_trial_ids and len(chain) <= len(by_id):
        parent = by_id.get(chain[-1].parent_trial_ids[0])
        if parent is None or parent in chain:
            break
        chain.append(parent)
    return chain[::-1]


def _created(experiment: Experiment) -> dict[str, CandidateCreatedPayload]:
    """Trial id -> the payload of the candidate_created event that made it."""
    found = {}
    for trial in experiment.trials:
        for event in trial.events:
            created = payload_of(event, EventKind.CANDIDATE_CREATED)
            if created is not None and isinstance(created["candidate"], str):
                found[created["candidate"]] = created
    return found


def _score(trial: Trial) -> str:
    """``0.875 on minibatch (n=8)``: a score is read with the examples it was measured on."""
    if trial.score is None:
        return "no score"
    scope = score_scope_of(trial)
    where = f" on {scope.name}" if scope.name else ""
    return f"{trial.score:.3f}{where}" + (f" (n={scope.n})" if scope.n is not None else "")


def _wrap(text: str, width: int, indent: str, hang: str | None = None) -> list[str]:
    return textwrap.wrap(
        text,
        width=width,
        initial_indent=indent,
        subsequent_indent=hang if hang is not None else indent + "  ",
        break_on_hyphens=False,
    )


def _scores(experiment: Experiment, width: int) -> list[str]:
    baseline, optimized = evaluated_pair(experiment)
    lines = ["Scores"]
    if baseline is not None:
        lines.append(f"  baseline   {_score(baseline)}   ({trial_label(baseline)})")
    if optimized is not None:
        delta = ""
        if baseline is not None and baseline.score is not None and optimized.score is not None:
            delta = f"   {optimized.score - baseline.score:+.3f}"
        lines.append(f"  optimized  {_score(optimized)}{delta}   ({trial_label(optimized)})")
    if baseline is not None and optimized is not None:
        lines += _wrap(_paired(baseline, optimized), width, "  ", "    ")
    return lines if len(lines) > 1 else []


def _paired(baseline: Trial, optimized: Trial) -> str:
    """The two evaluations compared example by example, or why they cannot be."""
    try:
        c = compare(baseline, optimized)
    except NotComparableError:
        return "not compared: the two were scored on different examples"
    ci = c.interval
    interval = f" (95% CI {ci.low:.3f} to {ci.high:.3f})" if ci.defined else ""
    return (
        f"paired on {c.n} examples: {c.difference:+.3f}{interval}, {c.wins} better, "
        f"{c.losses} worse; {c.test} p={format_p(c.p_value)}"
    )


def _hypothesis(hypothesis: Hypothesis | None, width: int) -> list[str]:
    """The hypothesis, its status and, when the record carries one, its verdict."""
    if hypothesis is None:
        return []
    lines = _wrap(
        f"Hypothesis ({hypothesis.status.value}): {hypothesis.research_question}", width, ""
    )
    verdict = getattr(hypothesis, "verdict", None)
    if verdict is not None:
        lines += _wrap(f"  verdict: {_verdict_text(verdict)}", width, "", "    ")
    return lines


def _verdict_text(verdict: Any) -> str:
    """A stored verdict in one line, whatever fields it has (test, p-value, effect, CI)."""
    if isinstance(verdict, Verdict):
        return verdict_line(verdict)
    data = verdict.model_dump(mode="json") if hasattr(verdict, "model_dump") else verdict
    if not isinstance(data, dict):
        return str(data)
    head = str(data.pop("outcome", data.pop("status", data.pop("verdict", ""))))
    parts = []
    for key, value in data.items():
        if value is None or isinstance(value, dict | list):
            continue
        shown = format_score(value) if isinstance(value, float) else str(value)
        parts.append(f"{key.replace('_', ' ')} {shown}")
    return head + (f" ({', '.join(parts)})" if parts else "")


def _how_built(experiment: Experiment, width: int) -> list[str]:
    _, optimized = evaluated_pair(experiment)
    by_id = {t.id: t for t in experiment.trials}
    best = by_id.get(optimized.parent_trial_ids[0]) if optimized is not None else None
    best = best or experiment.best_trial
    if best is None:
        return []
    optimizer = experiment.optimizer.name if experiment.optimizer else "the optimizer"
    lines = [f"How {optimizer} built it ({len(experiment.trials)} trials; the path to the best)"]
    created = _created(experiment)
    validated = _validations(experiment)
    for trial in lineage_of(experiment, best):
        made = created.get(trial.id)
        strategy = made["strategy"] if made is not None else None
        changes = [describe_change(c) for c in (made["changes"] if made else None) or []]
        if not trial.parent_trial_ids:
            what = "the starting program"
        else:
            what = (f"{strategy}: " if strategy else "") + ("; ".join(changes) or "")
        scores = [_score(trial)] if trial.score is not None else []
        scores += [_score(v) for v in validated.get(trial.id, [])]
        head = f"{trial_label(trial)}: " + (", ".join(scores) or "not scored")
        lines += _wrap(head, width, "  ")
        if what:
            lines += _wrap(what, width, "      ", "        ")
    lines += _chosen_by(experiment, width)
    return lines


def _validations(experiment: Experiment) -> dict[str, list[Trial]]:
    """Candidate trial id -> the trials that scored it again (an optimizer's validation)."""
    found: dict[str, list[Trial]] = {}
    for trial in experiment.trials:
        if trial.metadata.get("role") == "validation" and trial.parent_trial_ids:
            found.setdefault(trial.parent_trial_ids[0], []).append(trial)
    return found


def _chosen_by(experiment: Experiment, width: int) -> list[str]:
    """The optimizer's last decision (which candidate it returned, and why), read from
    the outer compile: a compile nested in it (MIPROv2's demo bootstrapping) returned
    only a step's result."""
    compiles = {t.id for t in experiment.trials if t.metadata.get("role") == "compile"}
    for trial in reversed(experiment.trials):
        if trial.id not in compiles or compiles & set(trial.parent_trial_ids):
            continue
        decisions = [payload_of(e, EventKind.DECISION) for e in trial.events]
        last = next((d for d in reversed(decisions) if d is not None), None)
        if last is not None:
            why = f" ({last['rationale']})" if last["rationale"] else ""
            return _wrap(f"Returned: {last['decision'] or '?'}{why}", width, "  ", "    ")
    return []


def _next_steps(experiment: Experiment, hints: Hints, width: int) -> list[str]:
    if not hints.reachable:
        return _wrap(
            f"Nothing to look at later: {hints.store_url} keeps records only while this "
            "command runs. Run `dspex demo` without --store (or with --store file:///...) "
            "to keep them.",
            width,
            "",
            "",
        )
    _, optimized = evaluated_pair(experiment)
    best = experiment.best_trial
    if optimized is not None and optimized.parent_trial_ids:
        best = next((t for t in experiment.trials if t.id == optimized.parent_trial_ids[0]), best)
    commands = [(hints.command("experiments", "show", experiment.id), "every trial")]
    baseline, _ = evaluated_pair(experiment)
    if baseline is not None and optimized is not None:
        pair = (f"{experiment.id}:{baseline.index}", f"{experiment.id}:{optimized.index}")
        commands.append((hints.command("compare", *pair), "the two side by side"))
    if best is not None:
        trial_args = ("experiments", "show", experiment.id, "--trial", str(best.index), "--full")
        commands.append((hints.command(*trial_args), "the best candidate's timeline"))
    commands.append((hints.command("ui"), "browse it in a web browser"))
    lines = ["Next"]
    for command, what in commands:
        line = f"  {command}   # {what}"
        lines.append(line if len(line) <= width else f"  {command}")
    if hints.password_hidden:  # never print a secret; say how to supply it
        lines += _wrap(
            "(*** stands for the store's password: type it in, or set DSPEX_STORE_URL and "
            "DSPEX_STORE_BACKEND=sql and leave out --store)",
            width,
            "  ",
        )
    return lines


def demo_summary(experiment: Experiment, *, hints: Hints | None = None, width: int = 100) -> str:
    """The demo's result on one screen (see the module docstring)."""
    hints = hints or Hints()
    took = ""
    if experiment.started_at and experiment.completed_at:
        took = f" in {(experiment.completed_at - experiment.started_at).total_seconds():.1f}s"
    sections = [
        _wrap(
            f"Experiment {experiment.id} ({experiment.status.value}{took}): {experiment.name}",
            width,
            "",
        ),
        _hypothesis(experiment.hypothesis, width),
        _scores(experiment, width),
        _how_built(experiment, width),
        retrieval_section(*evaluated_pair(experiment), width),
        _next_steps(experiment, hints, width),
    ]
    return "\n\n".join("\n".join(lines) for lines in sections if lines) + "\n"
