"""Text from records made safe and cheap to show in a terminal.

Names, tags, prompts and LM responses come from programs, datasets and LMs. Printed raw,
an escape sequence in them would act on the terminal (``ESC ] 52`` writes the clipboard,
``ESC [ 2 J`` clears the screen); :func:`terminal_safe` shows every control character as
a visible placeholder of the same width instead::

    >>> terminal_safe("name\\x1b]52;c;aGk=\\x07 ok\\n")
    'name␛]52;c;aGk=␇ ok\\n'

Wrapping a long text word by word costs far more than printing it, and wrapping one
long word is quadratic (``textwrap`` re-slices what is left at every line). A text of
more than :data:`WRAP_BUDGET` characters is therefore folded: each line cut into pieces
of the width, no word boundaries looked for, in linear time::

    >>> fold_lines("abcdefgh\\nij", 3, limit=2)
    (['abc', 'def'], 4)
"""

from __future__ import annotations

import re

__all__ = ["WRAP_BUDGET", "fold_lines", "terminal_safe"]

WRAP_BUDGET = 100_000
"""Texts up to this many characters are wrapped word by word; longer ones are folded."""


def _placeholders() -> dict[int, str]:
    table = {code: chr(0x2400 + code) for code in range(0x20)}  # ␀ .. ␟: control pictures
    del table[ord("\n")], table[ord("\t")]  # layout, not commands
    table[0x7F] = "␡"
    for code in range(0x80, 0xA0):  # C1 controls (0x9B is a one-byte ESC [)
        table[code] = "\ufffd"
    for code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)):  # bidirectional overrides
        table[code] = "\ufffd"
    return table


_SAFE = _placeholders()
# One regex pass (str.translate looks every character up in a dict: 20x slower on text
# that is not pure ASCII).
_UNSAFE = re.compile("[" + "".join(re.escape(chr(code)) for code in sorted(_SAFE)) + "]")


def terminal_safe(text: str) -> str:
    """``text`` with control characters (but newline and tab) and bidirectional overrides
    replaced by visible one-column placeholders, so that printing it runs no command."""
    return _UNSAFE.sub(lambda match: _SAFE[ord(match.group())], text)


def fold_lines(text: str, width: int, limit: int | None = None) -> tuple[list[str], int]:
    """``text``'s lines cut into pieces of at most ``width`` characters: the first
    ``limit`` pieces (all when None), and how many pieces there are in all."""
    width = max(width, 1)
    pieces: list[str] = []
    total = 0
    for line in text.splitlines() or [""]:
        count = max(1, -(-len(line) // width))
        if limit is None or len(pieces) < limit:
            wanted = count if limit is None else min(count, limit - len(pieces))
            pieces += [line[i * width : (i + 1) * width] for i in range(wanted)]
        total += count
    return pieces, total
