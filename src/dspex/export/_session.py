"""The HTTP session the OTLP exporter sends through, watched for why a request failed.

The OpenTelemetry exporter only answers SUCCESS or FAILURE (and logs the rest); this
session, handed to it through its ``session`` parameter, keeps the reason of the last
failed request (``connection refused``, ``HTTP 404 Not Found: ...``) and tells a
listener at once, while the exporter may still be retrying. Imported with the
``dspex[otel]`` extra only (``requests`` comes with the OTLP exporter).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import requests

from dspex.redact import redact_text

__all__ = ["WatchedSession"]

_OS_ERROR = re.compile(r"\[Errno -?\d+\][^'\")]*")


class WatchedSession(requests.Session):
    """A requests session that remembers (and reports) the reason of a failed request."""

    def __init__(self, on_failure: Callable[[str], None] | None = None) -> None:
        super().__init__()
        self.on_failure = on_failure
        self.last_failure: str | None = None

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            response = super().request(method, url, *args, **kwargs)
        except Exception as exc:
            self._failed(_describe(exc))
            raise
        if response.status_code >= 400:
            body = " ".join((response.text or "").split())[:200]
            detail = f": {body}" if body and body != response.reason else ""
            self._failed(f"HTTP {response.status_code} {response.reason}{detail}")
        return response

    def _failed(self, reason: str) -> None:
        self.last_failure = redact_text(reason)
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
