"""Scores as Arize Phoenix span annotations, so that traces sort and filter by score there.

OTLP carries scores as span attributes, which Phoenix shows but does not sort or filter
by; its annotations it does. When the receiver is Phoenix (``dspex export --otlp URL
--phoenix-annotations``, or found by asking ``/arize_phoenix_version``), each exported
trial's root span gets the annotation ``dspex.score`` (the trial's score, labelled with
what it was measured on, ``minibatch (n=8)``; with the optimizer's outcome in its
explanation) and each evaluated example's span ``dspex.example_score`` (the metric's
value, labelled ``passed`` or ``failed``), through Phoenix's REST API
(``POST /v1/span_annotations``). Annotations have stable identifiers: exporting again
updates them::

    >>> from datetime import UTC, datetime
    >>> from dspex import Trial, new_id
    >>> t = Trial(experiment_id=new_id("exp"), index=0, score=0.5,
    ...           started_at=datetime(2026, 1, 1, tzinfo=UTC))
    >>> [(a["name"], a["result"]["score"]) for a in score_annotations(t)]
    [('dspex.score', 0.5)]
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from dspex.export.spans import span_id_of
from dspex.model import EventKind, Trial
from dspex.model.outcomes import trial_outcome
from dspex.model.payloads import payload_of
from dspex.model.scopes import scope_of

__all__ = [
    "ANNOTATIONS_PATH",
    "is_phoenix",
    "phoenix_base",
    "score_annotations",
    "send_annotations",
]

ANNOTATIONS_PATH = "/v1/span_annotations"
TRACES_PATH = "/v1/traces"


def phoenix_base(traces_url: str) -> str:
    """The server's base URL from its OTLP traces URL (``.../v1/traces``)."""
    return traces_url[: -len(TRACES_PATH)] if traces_url.endswith(TRACES_PATH) else traces_url


def is_phoenix(base: str, headers: Mapping[str, str] | None = None, timeout: float = 3.0) -> bool:
    """Whether ``base`` is an Arize Phoenix server (it answers ``/arize_phoenix_version``)."""
    import requests

    try:
        answer = requests.get(base + "/arize_phoenix_version", headers=headers, timeout=timeout)
    except requests.RequestException:
        return False
    return answer.status_code == 200 and answer.text.strip()[:1].isdigit()


def score_annotations(trial: Trial) -> list[dict[str, Any]]:
    """The annotations of ``trial``'s spans: its score on its root span, each example's
    value on the example's span (span ids as :mod:`dspex.export.mapping` gives them)."""
    found: list[dict[str, Any]] = []
    if trial.score is not None:
        scope = scope_of(trial)
        outcome = trial_outcome(trial)
        found.append(
            _annotation(
                trial.id,
                "dspex.score",
                trial.score,
                f"{scope.name} (n={scope.n})" if scope is not None else None,
                f"optimizer's outcome: {outcome.value}" if outcome is not None else None,
            )
        )
    for event in trial.events:
        scored = payload_of(event, EventKind.EXAMPLE_RESULT)
        if scored is None or not isinstance(scored["value"], int | float):
            continue
        found.append(
            _annotation(
                event.id,
                "dspex.example_score",
                float(scored["value"]),
                "passed" if scored["passed"] else "failed",
                None,
            )
        )
    return found


def _annotation(
    record_id: str, name: str, score: float, label: str | None, explanation: str | None
) -> dict[str, Any]:
    result: dict[str, Any] = {"score": score}
    if label:
        result["label"] = label
    if explanation:
        result["explanation"] = explanation
    return {
        "span_id": f"{span_id_of(record_id):016x}",
        "name": name,
        "annotator_kind": "CODE",
        "result": result,
        "identifier": f"dspex:{record_id}",
        "metadata": {"dspex_id": record_id},
    }


def send_annotations(
    base: str,
    annotations: list[dict[str, Any]],
    *,
    headers: Mapping[str, str] | None = None,
    wait: float = 30.0,
    timeout: float = 10.0,
) -> str | None:
    """Send ``annotations`` (one trial's) to the Phoenix server at ``base``; None when it
    took them, else why not. Phoenix stores spans in the background, so a span it does not
    have yet (404) is asked again until ``wait`` seconds have passed."""
    import requests

    if not annotations:
        return None
    deadline = time.monotonic() + wait
    url = base + ANNOTATIONS_PATH + "?sync=true"
    while True:
        try:
            answer = requests.post(
                url, json={"data": annotations}, headers=headers, timeout=timeout
            )
        except requests.RequestException as exc:
            return f"Phoenix annotations: {type(exc).__name__}: {exc}"
        if answer.status_code < 300:
            return None
        if answer.status_code != 404 or time.monotonic() > deadline:
            return f"Phoenix annotations: HTTP {answer.status_code} {answer.text[:200]}"
        time.sleep(0.5)
