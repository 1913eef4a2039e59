"""The one place that decides what is a secret, and hides it.

Everything that leaves the process or reaches a record goes through here: store URLs in
messages and in the configuration snapshot, optimizer and LM settings, the web UI, the
CLI. A secret is a value under a secret-looking key (``api_key``, ``wandb_api_key``,
``access_token``, ``password``, ``client_secret``, ``ui.token``...) or a password in a URL
(``postgresql://root:<password>@host/db``, ``...?password=<password>``).

    >>> redact_url("postgresql://root:p@ss/w0rd@db.example:5432/results?sslmode=require")
    'postgresql://root:***@db.example:5432/results?sslmode=require'
    >>> redact_url("postgresql://root@localhost/test?password=hunter2&application_name=x")
    'postgresql://root@localhost/test?password=***&application_name=x'
    >>> redact_url("postgresql+psycopg://u:a/b@h/db?sslpassword=k")   # '/' in the password
    'postgresql+psycopg://u:***@h/db?sslpassword=***'
    >>> redact({"wandb_api_key": "abc", "max_tokens": 512, "api_base": "https://u:pw@h/v1"})
    {'wandb_api_key': '********', 'max_tokens': 512, 'api_base': 'https://u:***@h/v1'}
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "MASK",
    "URL_MASK",
    "is_secret_key",
    "redact",
    "redact_settings",
    "redact_text",
    "redact_url",
]

MASK = "********"
URL_MASK = "***"

# Words that make a key a secret, matched against the key's words (``wandb_api_key`` ->
# wandb, api, key), not its substrings: ``max_tokens`` and ``keywords`` are not secrets.
_SECRET_WORDS = frozenset(
    {
        "key",
        "apikey",
        "token",
        "secret",
        "password",
        "sslpassword",
        "passwd",
        "pwd",
        "passphrase",
        "credential",
        "credentials",
        "auth",
        "authorization",
        "bearer",
        "cookie",
        "signature",
        "sig",
    }
)
# Keys that hold a program's own text although a word of theirs looks secret: DSPy records
# a predictor's signature ("question -> answer") under ``signature``. In a URL query,
# ``signature=`` still is a secret (a presigned URL's).
_PROGRAM_TEXT_KEYS = frozenset({"signature"})
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://\S+")
# hosts (name, IPv4 or [IPv6]) with optional ports, then the end or the path/query
_ONE_HOST = r"(?:[A-Za-z0-9._~\-]+|\[[0-9A-Fa-f:.]+\])(?::\d*)?"
_HOST = re.compile(rf"{_ONE_HOST}(?:,{_ONE_HOST})*(?:[/?#]|$)")  # libpq takes host lists


@functools.lru_cache(maxsize=4096)
def _secret_name(name: str) -> bool:
    words = {w.lower() for w in _WORD.findall(name)}
    return not words.isdisjoint(_SECRET_WORDS)


def is_secret_key(name: object) -> bool:
    """Whether a setting or field called ``name`` holds a secret.

    >>> [is_secret_key(k) for k in ("api_key", "ui.token", "max_tokens", "OPENAI_API_KEY")]
    [True, True, False, True]
    """
    return isinstance(name, str) and _secret_name(name)


def redact_url(url: str) -> str:
    """``url`` with the password of its user info and secret query values replaced by ``***``.

    Passwords may contain ``/``, ``@``, ``?`` and ``:`` (unencoded, as people type them).
    Strings that are not URLs come back unchanged.
    """
    match = _SCHEME.match(url)
    if match is None:
        return url
    scheme, rest = match.group(0), url[match.end() :]
    if not rest.startswith("/"):
        rest = _redact_userinfo(rest, token_user=scheme.lower() in ("http://", "https://"))
    return scheme + _redact_query(rest)


def _redact_userinfo(rest: str, *, token_user: bool) -> str:
    """``user:password@host/...`` -> ``user:***@host/...``.

    Passwords typed unencoded may hold ``@``, ``/``, ``?`` and ``:``, so the user info
    ends at the *last* ``@`` that a host name follows. An ``@`` in the query
    (``?application_name=a@b``) then hides more than the password, never less. On
    http(s), a user name alone (``https://<token>@host``) is hidden too.
    """
    at = next((i for i in _positions(rest, "@") if _HOST.match(rest, i + 1)), -1)
    if at < 0:
        return rest
    userinfo, host = rest[:at], rest[at + 1 :]
    if ":" not in userinfo:
        # a database user name alone is no secret; on http(s) it is usually a token
        return f"{URL_MASK}@{host}" if token_user else rest
    user = userinfo.split(":", 1)[0]
    return f"{user}:{URL_MASK}@{host}"


def _positions(text: str, char: str) -> list[int]:
    """Where ``char`` occurs in ``text``, last first."""
    return [i for i in range(len(text) - 1, -1, -1) if text[i] == char]


def _redact_query(rest: str) -> str:
    if "?" not in rest:
        return rest
    head, _, query = rest.partition("?")
    query, hash_sign, fragment = query.partition("#")
    parts = []
    for part in query.split("&"):
        name, equals, value = part.partition("=")
        parts.append(f"{name}={URL_MASK}" if equals and value and is_secret_key(name) else part)
    return f"{head}?{'&'.join(parts)}{hash_sign}{fragment}"


def redact_text(text: str) -> str:
    """``text`` with every URL in it redacted (for messages that quote a URL)."""
    if "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)


def redact(value: Any) -> Any:
    """A copy of ``value`` (dicts, lists, tuples, strings) with every secret hidden.

    Values under secret keys become ``********`` (``None`` and empty values stay, so
    that "not set" remains visible); URLs anywhere lose their passwords. A DSPy
    signature is program text, not a secret:

        >>> redact({"signature": "question -> answer", "request_signature": "a1b2"})
        {'signature': 'question -> answer', 'request_signature': '********'}
    """
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: (MASK if _hides(k, v) else redact(v)) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(redact(v) for v in value)
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def redact_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """A flat mapping of settings (an LM's kwargs) without its secrets, cheaply: this runs
    for every recorded LM call. Keys are checked once per name (cached); values only when
    they are text holding a URL."""
    return {
        key: (
            MASK
            if is_secret_key(key) and value not in (None, "")
            else (redact_text(value) if type(value) is str and "://" in value else value)
        )
        for key, value in settings.items()
    }


def _hides(key: object, value: Any) -> bool:
    return is_secret_key(key) and key not in _PROGRAM_TEXT_KEYS and value not in (None, "")
