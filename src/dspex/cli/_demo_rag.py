"""``dspex demo --rag``: a recorded RAG program and a GEPA run that changes what it retrieves.

The program (:class:`dspex.offline.rag.HarborRAG`) writes a search query, retrieves three
passages of the bundled harbor corpus with ``dspy.retrievers.Embeddings`` over a local
embedding function, and answers from them with a ``ChainOfThought``; the offline LM answers
every step, so nothing leaves the machine. The run evaluates the program on the dev set,
lets GEPA reflect on the metric's feedback (which says whether the retrieved passages held
the answer) and evaluates what GEPA returns. GEPA's accepted proposal changes the query
module's instruction; the summary then shows, from the record, the examples whose
retrievals changed: the query before and after, the passage ranked first, the score.

:func:`retrieval_section` is the summary's part for any demo whose evaluations retrieved.
"""

from __future__ import annotations

import textwrap
from typing import Any

from dspex.model import EventKind, Trial
from dspex.model.payloads import payload_of
from dspex.view.entries import format_ms
from dspex.view.retrievals import ExampleRetrievals, abridge, rag_stats, retrieval_diff

__all__ = ["RAG_HYPOTHESIS", "retrieval_section", "run_rag"]

RAG_HYPOTHESIS = (
    "GEPA's reflections on the retrieval feedback make the search queries find the right "
    "passages, and the answers follow"
)
_GEPA_SEED = 0
_GEPA_METRIC_CALLS = 36


def run_rag(store: Any, console: Any, *, embedder: Any = None, lm: Any = None) -> Any:
    """Run the RAG demo into ``store``; returns the experiment handle.

    ``embedder`` (the retriever's embedding function, default
    :func:`dspex.offline.rag.embed`) and ``lm`` (default: the offline LM) let a test
    count their calls."""
    import dspy
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    import dspex
    from dspex.cli._demo_setup import configure_lm, quiet_dspy
    from dspex.offline.rag import (
        HarborRAG,
        load_harbor,
        rag_match,
        rag_match_with_feedback,
    )

    train, dev = load_harbor()
    lm = lm if lm is not None else configure_lm()
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    with dspy.context(lm=lm), progress, quiet_dspy():
        task = progress.add_task("Baseline evaluation", total=3)
        with dspex.experiment(
            "demo: GEPA on offline RAG (harbor corpus)",
            hypothesis=RAG_HYPOTHESIS,
            program=HarborRAG(),
            program_name="rag",
            store=store,
            tags=["demo", "rag"],
        ) as exp:
            # its index is built at its first search: in the baseline's trial
            program = HarborRAG(embedder=embedder)
            exp.evaluate(program, dev, rag_match, name="baseline")
            progress.update(task, advance=1, description="Optimizing with GEPA")
            optimizer = dspy.GEPA(
                metric=rag_match_with_feedback,
                max_metric_calls=_GEPA_METRIC_CALLS,
                reflection_lm=lm,
                num_threads=2,
                track_stats=True,
                seed=_GEPA_SEED,
            )
            optimized = optimizer.compile(program, trainset=train[:12], valset=train[12:])
            progress.update(task, advance=1, description="Evaluating the optimized program")
            exp.evaluate(optimized, dev, rag_match, name="optimized")
    return exp


def _passage_texts(trial: Trial) -> dict[str, str]:
    """Passage id (as the views compare them) -> its text, from a trial's retrievals."""
    texts: dict[str, str] = {}
    for event in trial.events:
        found = payload_of(event, EventKind.RETRIEVAL)
        if found is None:
            continue
        for one in found["results"] or []:
            for passage in one or []:
                if isinstance(passage, dict) and passage.get("id") is not None:
                    texts.setdefault(str(passage["id"]), str(passage.get("text") or ""))
    return texts


def _results(trial: Trial) -> dict[int, tuple[float | str, str]]:
    """Example index -> (the metric's value, the example's inputs as one line)."""
    found: dict[int, tuple[float | str, str]] = {}
    for event in trial.events:
        result = payload_of(event, EventKind.EXAMPLE_RESULT)
        if result is not None and isinstance(result["example"], int):
            inputs = result["inputs"] if isinstance(result["inputs"], dict) else {}
            shown = " ".join(str(v) for v in inputs.values()) if len(inputs) == 1 else str(inputs)
            found[result["example"]] = (result["value"], shown)
    return found


def _side(label: str, run: ExampleRetrievals, texts: dict[str, str], width: int) -> list[str]:
    query, _ = abridge(" | ".join(run.queries) or "(no query)", max(20, width - 24))
    first = run.found[0][0] if run.found and run.found[0] else None
    shown = "no passage"
    if first is not None:
        text, _ = abridge(texts.get(first, ""), max(20, width - 26 - len(first)))
        shown = f"#{first} {text}"
    return [f"    {label:<10} query {query!r}", f"    {'':<10} first: {shown}"]


def _score_text(value: float | str | None) -> str:
    if value is None:
        return "?"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _totals(label: str, trial: Trial) -> str | None:
    stats = rag_stats(trial.events)
    if stats is None:
        return None
    parts = [f"{stats.retrievals} retrievals"]
    if stats.latency_p50 is not None:
        parts[0] += f" (p50 {format_ms(stats.latency_p50)})"
    parts.append(f"{stats.embedding_calls} embedding calls ({stats.texts_embedded} texts)")
    if stats.index_builds:
        parts.append(f"{stats.index_builds} index build")
    if stats.embedding_cost:
        parts.append(f"${stats.embedding_cost:.4f}")
    return f"{label:<10} " + ", ".join(parts)


def retrieval_section(
    baseline: Trial | None, optimized: Trial | None, width: int, *, examples: int = 1
) -> list[str]:
    """How the optimized program's retrievals differ from the baseline's, example by
    example (the first ``examples`` shown: the query and the first passage of each, the
    score), and each one's totals; [] when the two evaluations retrieved nothing."""
    if baseline is None or optimized is None:
        return []
    diff = retrieval_diff(baseline, optimized)
    if diff is None:
        return []
    lines = ["Retrievals"]
    lines += _wrap(diff.describe("the optimized program"), width)
    texts = {**_passage_texts(baseline), **_passage_texts(optimized)}
    before, after = _results(baseline), _results(optimized)
    for a, b in diff.differ[:examples]:
        was, question = before.get(a.index, (None, "?"))
        now, _ = after.get(b.index, (None, "?"))
        score = f"score {_score_text(was)} -> {_score_text(now)}"
        head, _ = abridge(question, max(20, width - len(score) - 12))
        lines.append(f"  #{a.index} {head}   {score}")
        lines += _side("baseline", a, texts, width)
        lines += _side("optimized", b, texts, width)
    for label, trial in (("baseline", baseline), ("optimized", optimized)):
        total = _totals(label, trial)
        if total is not None:
            lines += _wrap(total, width)
    return lines


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width=width, initial_indent="  ", subsequent_indent="    ")
