"""What capture reads from a DSPy program: module paths, variables, identity.

Kept in one place so that every optimizer wrapper and the harness describe
programs the same way (and viewers can diff one trial's variables against another's).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

from dspy.primitives.base_module import BaseModule

from dspex.capture.jsonable import jsonable
from dspex.model import LMSettings, PredictorVariables, ProgramInfo, Variables

__all__ = [
    "class_path",
    "demos_json",
    "module_paths",
    "program_info",
    "predictor_name",
    "predictor_path",
    "predictor_paths",
    "program_name",
    "root_key",
    "root_module_name",
    "sub_modules",
    "variables_of",
]

# LM kwargs worth showing as "settings in effect"; the rest are transport details.
_LM_SETTING_KEYS = ("temperature", "max_tokens", "top_p", "n", "rollout_id", "seed", "stop")


def class_path(obj: Any) -> str:
    cls = obj if isinstance(obj, type) else type(obj)
    module = cls.__module__
    if module.startswith("dspy."):
        return f"dspy.{cls.__qualname__}"
    return f"{module}.{cls.__qualname__}"


def program_name(program: Any) -> str:
    name = getattr(program, "dspex_name", None)
    return str(name) if name else type(program).__name__.lower()


def root_module_name(module: Any) -> str:
    """The name of a module called at the top level that no trial knew: a program (one
    with sub-modules) by :func:`program_name`, as a trial's own program would be; a lone
    predictor by its class and signature, as in ``Predict(OfferFeedback)`` (an optimizer's
    own predictor)."""
    if getattr(module, "dspex_name", None):
        return program_name(module)
    if any(path != "self" for path, _ in sub_modules(module)):
        return program_name(module)
    return predictor_name(module)


def root_key(module: Any) -> tuple[type, Any]:
    """What a program and the copies an optimizer makes of it share: its class and, for a
    predictor, its signature class (two predictors of different signatures differ)."""
    return type(module), getattr(module, "signature", None)


def predictor_name(module: Any) -> str:
    """A module's class, with its signature's name when it has one: ``Predict(OfferFeedback)``."""
    name = type(module).__name__
    signature_name = getattr(getattr(module, "signature", None), "__name__", "")
    if signature_name and signature_name != "StringSignature":
        return f"{name}({signature_name})"
    return name


def predictor_path(root: str, path: str) -> str:
    """A predictor's name in dspex from DSPy's (``named_predictors``, GEPA's components):
    ``qa`` + ``self.predict`` or ``predict`` -> ``qa.predict``; ``self`` is the root."""
    return _join(root, path)


def _join(root: str, path: str) -> str:
    """``qa`` + ``self.predict`` or ``predict`` -> ``qa.predict``; ``self`` is the root."""
    suffix = path[5:] if path == "self" or path.startswith("self.") else path
    return f"{root}.{suffix}" if suffix else root


def predictor_paths(program: Any, root: str) -> list[tuple[str, Any]]:
    """``(path, predictor)`` for each predictor of ``program``, named as
    :func:`variables_of` names them: ``qa.predict``, and ``predict`` for a bare
    ``dspy.Predict`` called ``predict`` (DSPy calls it ``self``).

    >>> import dspy
    >>> [path for path, _ in predictor_paths(dspy.Predict("q -> a"), "predict")]
    ['predict']
    """
    named = getattr(program, "named_predictors", None)
    return [(_join(root, path), p) for path, p in (named() if callable(named) else [])]


def program_info(program: Any, name: str | None = None) -> ProgramInfo:
    return ProgramInfo(name=name or program_name(program), class_path=class_path(program))


# A module's own call history (DSPy appends an entry per LM call, up to
# ``max_history_size``): never holds sub-modules, and walking it would make naming a
# program cost as much as every call it ever made.
_NOT_SUB_MODULES = frozenset({"history"})


def sub_modules(program: Any) -> Iterator[tuple[str, Any]]:
    """``(path, module)`` for ``program`` (``self``) and every module inside it, found as
    DSPy's ``named_sub_modules`` finds them (attributes, lists, tuples and dicts, breadth
    first, each module once) but without walking the modules' call histories. A program
    that defines its own ``named_sub_modules`` is taken at its word.

    >>> import dspy
    >>> [path for path, _ in sub_modules(dspy.ChainOfThought("q -> a"))]
    ['self', 'self.predict']
    """
    if not isinstance(program, BaseModule):
        return
    if type(program).named_sub_modules is not BaseModule.named_sub_modules:
        yield from program.named_sub_modules()  # the program says what its modules are
        return
    queue: deque[tuple[str, Any]] = deque([("self", program)])
    seen = {id(program)}
    while queue:
        name, item = queue.popleft()
        children: Iterator[tuple[str, Any]]
        if isinstance(item, BaseModule):
            yield name, item
            children = (
                (f"{name}.{key}", value)
                for key, value in item.__dict__.items()
                if key not in _NOT_SUB_MODULES
            )
        elif isinstance(item, (list, tuple)):
            children = ((f"{name}[{i}]", value) for i, value in enumerate(item))
        else:
            children = ((f"{name}[{key}]", value) for key, value in item.items())
        for child_name, child in children:
            if isinstance(child, (BaseModule, list, tuple, dict)) and id(child) not in seen:
                seen.add(id(child))
                queue.append((child_name, child))


def module_paths(program: Any, name: str | None = None) -> dict[int, str]:
    """id(module) -> dotted path for the program and every sub-module (``qa.predict``)."""
    root = name or program_name(program)
    paths = {id(program): root}
    for path, module in sub_modules(program):
        paths.setdefault(id(module), _join(root, path))
    return paths


def lm_settings(lm: Any) -> LMSettings | None:
    if lm is None:
        return None
    kwargs = getattr(lm, "kwargs", {}) or {}
    settings = {k: jsonable(kwargs[k]) for k in _LM_SETTING_KEYS if k in kwargs}
    return LMSettings(model=getattr(lm, "model", None), settings=settings)


def variables_of(program: Any, name: str | None = None) -> Variables:
    """The configuration in effect: per predictor its signature, instructions and demos;
    the LM (the first predictor's own LM, else the configured one) and its settings."""
    import dspy

    root = name or program_name(program)
    predictors: dict[str, PredictorVariables] = {}
    first_lm = None
    for path, predictor in predictor_paths(program, root):
        signature = getattr(predictor, "signature", None)
        predictors[path] = PredictorVariables(
            signature=_signature_text(signature),
            instructions=str(getattr(signature, "instructions", "") or ""),
            demos=tuple(demos_json(getattr(predictor, "demos", []) or [])),
        )
        first_lm = first_lm or getattr(predictor, "lm", None)
    return Variables(predictors=predictors, lm=lm_settings(first_lm or dspy.settings.lm))


def demos_json(demos: Any) -> list[Any]:
    """A predictor's demos as JSON data, one dict per demo (how variables record them)."""
    return [jsonable(dict(_demo_items(d))) for d in demos or []]


def _signature_text(signature: Any) -> str:
    if signature is None:
        return ""
    try:
        return str(signature.signature)
    except Exception:  # noqa: BLE001
        return type(signature).__name__


def _demo_items(demo: Any) -> Any:
    to_dict = getattr(demo, "toDict", None)
    if callable(to_dict):
        return to_dict().items()
    return dict(demo).items() if isinstance(demo, dict) else {"demo": repr(demo)}.items()
