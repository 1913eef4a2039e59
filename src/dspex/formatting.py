"""How dspex writes numbers for people: scores and p-values, one rule each, everywhere.

    >>> format_score(0.85), format_score(2 / 3), format_score(None)
    ('0.85', '0.6667', 'n/a')
    >>> format_number(2 / 3), format_number(None)
    ('0.666667', '-')
    >>> format_p(0.0039), format_p(0.21), format_p(1e-7)
    ('0.0039', '0.21', '<0.0001')

``format_score`` is what views and the CLI show; ``format_number`` is the shorter form an
optimizer's decisions quote in their rationales (recorded text: it keeps its form).
"""

from __future__ import annotations

__all__ = ["format_number", "format_p", "format_score"]


def format_score(score: float | None) -> str:
    """``0.85`` -> ``'0.85'``; None -> ``'n/a'`` (at most 4 decimals, no trailing zeros)."""
    if score is None:
        return "n/a"
    text = f"{score:.4f}".rstrip("0").rstrip(".")
    return text or "0"


def format_number(value: float | None) -> str:
    """``0.75`` -> ``'0.75'`` (Python's ``g`` form); None -> ``'-'``."""
    return "-" if value is None else f"{value:g}"


def format_p(p: float) -> str:
    """``0.0039``, ``0.21``, ``<0.0001``: enough digits to compare with an alpha."""
    return "<0.0001" if p < 1e-4 else f"{p:.2g}"
