"""What one connection to ``dspex ui`` may take (no server imported: cheap to read)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Limits"]


@dataclass(frozen=True)
class Limits:
    """The ``ui.*`` settings of the same names (see ``docs/configuration.md``).

    ``max_connections`` open at once; a request's headers within ``header_timeout`` of
    connecting (``keep_alive_timeout`` more after a response); a response's bytes read by
    the client within ``send_timeout``.
    """

    max_connections: int = 256
    header_timeout: float = 10.0
    keep_alive_timeout: float = 5.0
    send_timeout: float = 30.0
