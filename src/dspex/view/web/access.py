"""Who may read the UI: the checks of its access token, shared by the app and the server."""

from __future__ import annotations

from dspex.errors import ConfigError

__all__ = ["check_token"]


def check_token(token: str | None) -> None:
    """Raise :class:`dspex.ConfigError` for a token of only whitespace (no token is None).

    >>> check_token("  ")
    Traceback (most recent call last):
    ...
    dspex.errors.ConfigError: the dspex UI access token is blank: ...
    """
    if token is not None and not token.strip():
        raise ConfigError(
            "the dspex UI access token is blank: a token of only whitespace protects "
            "nothing; set a real token (ui.token, DSPEX_UI_TOKEN or --token) or none",
            key="ui.token",
        )
