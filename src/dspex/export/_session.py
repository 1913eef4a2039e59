"""The HTTP session the OTLP exporter sends through, watched for why a request failed.

The OpenTelemetry exporter only answers SUCCESS or FAILURE (and logs the rest); this
session, handed to it through its ``session`` parameter, keeps the reason of the last
failed request (``connection refused``, ``HTTP 404 Not Found: ...``) and tells a
listener at once, while the exporter may still be retrying. Imported with the
``dspex[otel]`` extra only (``requests`` comes with the OTLP exporter).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import requests

from dspex.redact import redact_text

__all__ = ["UNAVAILABLE", "NoRetry", "WatchedSession"]

_OS_ERROR = re.compile(r"\[Errno -?\d+\][^'\")]*")


class NoRetry(requests.RequestException):
    """A failed request that the OTLP exporter must not retry: not a connection error in
    its eyes, so the send fails at once. Raised once the receiver has already failed to
    answer (``deadline`` set): each further trial then costs one attempt, not the
    exporter's whole series of retries."""


UNAVAILABLE = frozenset({502, 503, 504})
"""HTTP answers that say the receiver (behind a gateway) is not there: counted like a
connection that failed."""


class WatchedSession(requests.Session):
    """A requests session that remembers (and reports) the reason of a failed request and
    whether the receiver was reached at all.

    With a ``deadline`` (a :func:`time.monotonic` time: the receiver has been failing)
    no request waits past it, and a request that does not reach the receiver is not
    retried (see :class:`NoRetry`).
    """

    def __init__(self, on_failure: Callable[[str], None] | None = None) -> None:
        super().__init__()
        self.on_failure = on_failure
        self.last_failure: str | None = None
        self.unreachable = False
        self.deadline: float | None = None

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> Any:
        if self.deadline is not None:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                self._failed("gave up waiting for the receiver", unreachable=True)
                raise NoRetry("the time for this receiver ran out")
            given = kwargs.get("timeout")
            kwargs["timeout"] = (
                remaining if not isinstance(given, int | float) else min(given, remaining)
            )
        try:
            response = super().request(method, url, *args, **kwargs)
        except Exception as exc:
            self._failed(_describe(exc), unreachable=True)
            if self.deadline is not None:
                raise NoRetry(self.last_failure) from exc
            raise
        if response.status_code >= 400:
            body = " ".join((response.text or "").split())[:200]
            detail = f": {body}" if body and body != response.reason else ""
            unavailable = response.status_code in UNAVAILABLE
            self._failed(
                f"HTTP {response.status_code} {response.reason}{detail}", unreachable=unavailable
            )
            if unavailable and self.deadline is not None:
                raise NoRetry(self.last_failure)
        return response

    def _failed(self, reason: str, *, unreachable: bool) -> None:
        self.last_failure = redact_text(reason)
        self.unreachable = unreachable
        if self.on_failure is not None:
            self.on_failure(self.last_failure)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    found = _OS_ERROR.search(text)
    if isinstance(exc, requests.ConnectionError) and found:
        return f"could not connect: {found.group(0).strip()}"
    if isinstance(exc, requests.Timeout):
        # the text repeats the URL and a float of the remaining time; one reason reads better
        return "timed out waiting for the receiver to answer"
    return f"{type(exc).__name__}: {text[:300]}"
