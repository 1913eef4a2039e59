"""What a hook reads of DSPy besides its patches, checked when it installs and when it reads.

The patches themselves are listed in :mod:`dspex.capture.instrument`. Hooks also read
attributes of the optimizer and, where a decision lives only there, local variables of
its running ``compile`` (SIMBA's bucket, COPRO's depth and candidate, the random
search's seed). Each helper raises :class:`~dspex.optimizers.base.Unrecognised` naming
the piece, which puts the hook in degraded mode (see :class:`OptimizerHook`)::

    require_locals("SIMBA", SIMBA.compile, ("bucket_idx", ...))     # at install
    local = compile_locals("SIMBA", "batch_indices", ("bucket_idx", ...),
                           kinds={"bucket_idx": int})                # at each use
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Mapping
from typing import Any

from dspex.optimizers.base import Unrecognised

__all__ = ["compile_locals", "require_attribute", "require_locals", "unsupported"]


def unsupported(optimizer: str, piece: str, exc: BaseException | None = None) -> Unrecognised:
    """The error saying that ``piece`` of ``optimizer`` is missing or has changed."""
    error = Unrecognised(f"{piece} is missing or has changed", piece=piece)
    if exc is not None:
        error.__cause__ = exc
    return error


def require_attribute(optimizer_name: str, owner: Any, attribute: str, where: str) -> Any:
    """``getattr(owner, attribute)``, or :class:`Unrecognised` naming ``where``."""
    try:
        return getattr(owner, attribute)
    except AttributeError as exc:
        raise unsupported(optimizer_name, where, exc) from exc


def base_compile(optimizer_name: str, optimizer: Any) -> Any:
    """``compile`` of the DSPy class named ``optimizer_name`` in ``optimizer``'s MRO (a
    subclass may wrap it; the locals read are those of DSPy's own)."""
    base = next((c for c in type(optimizer).__mro__ if c.__name__ == optimizer_name), None)
    return require_attribute(optimizer_name, base, "compile", f"{optimizer_name}.compile")


def require_locals(optimizer_name: str, function: Any, names: tuple[str, ...]) -> None:
    """:class:`Unrecognised` unless ``function`` has all the local ``names``."""
    code = getattr(inspect.unwrap(function), "__code__", None)
    missing = [n for n in names if n not in set(getattr(code, "co_varnames", ()))]
    if missing:
        raise Unrecognised(
            "missing in the installed DSPy",
            piece=f"{optimizer_name}.compile local variable(s) {', '.join(missing)}",
        )


def compile_locals(
    optimizer_name: str,
    marker: str,
    names: tuple[str, ...],
    *,
    kinds: Mapping[str, type | tuple[type, ...]] | None = None,
    optional: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The local ``names`` of the running ``compile`` that has the local ``marker``, each
    of the type ``kinds`` gives it (when given); :class:`Unrecognised` when no such frame
    is on the stack, a name is not set (``optional`` ones are None then), or a value is
    not of its type."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "compile" and marker in frame.f_locals:
            break
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        raise Unrecognised(
            "no running compile with this local variable on the call stack",
            piece=f"{optimizer_name}.compile local variable {marker}",
        )
    found = frame.f_locals
    values: dict[str, Any] = {}
    for name in names:
        if name not in found and name in optional:
            values[name] = None
            continue
        if name not in found:
            raise Unrecognised(
                "not set where dspex reads it",
                piece=f"{optimizer_name}.compile local variable {name}",
            )
        value = values[name] = found[name]
        kind = (kinds or {}).get(name)
        if kind is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise Unrecognised(
                f"holds {type(value).__name__} {value!r:.80}, not the {_kind_name(kind)} "
                "dspex reads from it",
                piece=f"{optimizer_name}.compile local variable {name}",
            )
    return values


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)
