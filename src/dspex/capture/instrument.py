"""Every change dspex makes to DSPy, listed in one place, applied and undone together.

DSPy has public callbacks for module, LM, adapter, tool, compile and ``dspy.Evaluate``
calls, and dspex uses them (:mod:`dspex.capture.callback`). Everything else it needs (an
LM call's usage, cost and cache hit; its context in DSPy's worker threads; the exception
behind each failed example; why an optimizer did what it did) means replacing something
of DSPy. Every such replacement is a :class:`Patch` in :data:`PATCHES`, in the style of
the field's instrumentors (OpenInference's ``_instrument``/``_uninstrument``, MLflow's
``safe_patch``):

- **applied when needed, undone after.** :func:`acquire` applies every patch when the
  first experiment (or ``autolog()``, or an evaluation of the harness) starts;
  :func:`release` puts back DSPy's exact objects when the last one ends. While applied,
  a patch does nothing for code that runs outside dspex's context: it hands the call to
  DSPy's original at once.
- **never breaks the user's run.** A patched function calls DSPy's original with the
  arguments it received and returns what it returned; dspex's own work around the call
  runs in a guard (:func:`guarded`) that turns a failure into a warning on the
  experiment (the *degraded mode*: :class:`Instrumented`), never into an exception in
  the user's program.
- **says what it could not apply.** A patch whose target is missing in the installed
  DSPy (a renamed function, an older release) is not applied; :func:`unavailable` names
  it with what is not recorded without it, and the hooks that need it record less and
  say so.

Optimizer patches dispatch each call to the hook of the compile running in the calling
context (:data:`HOOKS_KEY` in dspex's context, see :mod:`dspex.capture.context`): the
hooks live in :mod:`dspex.optimizers`, which registers them by optimizer name; this
module knows only the names and the methods it calls.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

from dspex.capture import dspy_retrieval as rag
from dspex.capture.context import carried, lookup, scope

__all__ = [
    "EVALUATE_ERRORS_KEY",
    "HOOKS_KEY",
    "PATCHES",
    "Instrumented",
    "Patch",
    "acquire",
    "add_lm_history_listener",
    "applied",
    "cache_hit_of",
    "guarded",
    "hook_for",
    "instrumented",
    "is_instrumented",
    "release",
    "unavailable",
    "compile_patches",
    "with_hook",
]

logger = logging.getLogger(__name__)

#: Key, in dspex's context, of the hooks of the compiles running there, by optimizer name.
HOOKS_KEY = "hooks"
#: Key, in dspex's context, of a callable that receives ``{example index: exception}`` when
#: a ``dspy.Evaluate`` call run in that context has finished.
EVALUATE_ERRORS_KEY = "evaluate_errors"


# -- the guard: dspex's work never reaches the user's program ---------------------------


class Instrumented(Protocol):
    """What a patch dispatches to (an optimizer hook): it handles calls of one optimizer
    instance and records less, with a warning, when its own code fails."""

    def handles(self, instance: Any) -> bool:
        """Whether a call on ``instance`` (the optimizer, its adapter...) is this hook's."""

    def degrade(self, piece: str, error: BaseException | str) -> None:
        """Record that ``piece`` could not be recorded from now on, and why."""

    def is_degraded(self, piece: str) -> bool: ...


class _Original:
    """DSPy's original, as handed to a hook's handler: calls it once and remembers what
    happened, so that the guard can tell DSPy's exceptions from dspex's."""

    __slots__ = ("function", "called", "result", "error")

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function
        self.called = False
        self.result: Any = None
        self.error: BaseException | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.called = True
        try:
            self.result = self.function(*args, **kwargs)
        except BaseException as exc:
            self.error = exc
            raise
        return self.result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.function, name)


def guarded(
    hook: Instrumented,
    piece: str,
    handler: Callable[..., Any] | str,
    original: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """``handler(original, *args, **kwargs)``, as DSPy's ``original(*args, **kwargs)``
    would behave: an exception of ``original`` propagates unchanged; a failure of
    ``handler``'s own code degrades ``piece`` on ``hook`` and the call returns what the
    original returned (calling it now if the handler had not yet). Once ``piece`` is
    degraded, calls go straight to the original. ``handler`` may be the name of a
    method of ``hook``."""
    if hook.is_degraded(piece):
        return original(*args, **kwargs)
    call = _Original(original)
    try:
        run = getattr(hook, handler) if isinstance(handler, str) else handler
        return run(call, *args, **kwargs)
    except BaseException as exc:
        if call.error is exc or isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        if call.error is not None:  # the handler turned DSPy's exception into another
            raise call.error from None
        hook.degrade(getattr(exc, "piece", None) or piece, exc)
        if call.called:
            return call.result
    return original(*args, **kwargs)


# -- the registry ------------------------------------------------------------------------


@dataclass(frozen=True)
class Patch:
    """One replacement of an attribute of DSPy (or gepa).

    ``module`` and ``attribute`` name the target (``"BaseLM.update_history"`` is the
    attribute of a class of the module); ``replace(original)`` builds what stands in its
    place; ``loses`` says what is not recorded when the patch cannot be applied;
    ``optional`` patches exist only in some DSPy releases (their absence is no loss).
    """

    name: str
    module: str
    attribute: str
    replace: Callable[[Any], Any]
    loses: str
    optional: bool = False
    #: the optimizer whose hook receives the calls (None: dspex's own capture)
    optimizer: str | None = None
    #: the class that holds the attribute, when found by walking classes, not by name
    target: Any = None

    def owner(self) -> Any:
        """The module or class that holds the attribute (AttributeError/ImportError if not)."""
        if self.target is not None:
            return self.target
        owner: Any = importlib.import_module(self.module)
        for part in self.attribute.split(".")[:-1]:
            owner = getattr(owner, part)
        return owner

    @property
    def leaf(self) -> str:
        return self.attribute.rsplit(".", 1)[-1]


@dataclass
class _Applied:
    patch: Patch
    owner: Any
    original: Any  # what the owner's own __dict__ held (the exact object to put back)
    own: bool  # False: the attribute was inherited; undoing deletes ours
    replacement: Any


@dataclass
class _State:
    users: int = 0
    applied: list[_Applied] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)


_state = _State()
_lock = threading.RLock()


def _own_value(owner: Any, name: str) -> tuple[Any, bool]:
    """(the value, whether ``owner`` holds it itself) of ``owner.name``."""
    namespace = getattr(owner, "__dict__", {})
    if name in namespace:
        return namespace[name], True
    return getattr(owner, name), False


_ORIGINAL = "_dspex_original"


def _apply(patch: Patch) -> _Applied | str:
    try:
        owner = patch.owner()
        found, own = _own_value(owner, patch.leaf)
    except (ImportError, AttributeError) as exc:
        return f"{patch.module}.{patch.attribute} is missing ({type(exc).__name__}: {exc})"
    # a replacement of an earlier application that someone put back (a test's monkeypatch
    # restoring what it saw while dspex was applied): wrap DSPy's own object, not ours
    original = found
    while hasattr(original, _ORIGINAL):
        original = getattr(original, _ORIGINAL)
    try:
        replacement = patch.replace(original)
        setattr(replacement, _ORIGINAL, original)
    except Exception as exc:  # noqa: BLE001 - an unexpected shape: not applied, and said
        return f"{patch.module}.{patch.attribute} has changed ({type(exc).__name__}: {exc})"
    setattr(owner, patch.leaf, replacement)
    return _Applied(patch, owner, original, own, replacement)


def _undo(applied: _Applied) -> None:
    owner, leaf = applied.owner, applied.patch.leaf
    current = getattr(owner, "__dict__", {}).get(leaf)
    if current is not applied.replacement:
        # someone replaced dspex's patch in turn (a test's monkeypatch, another tool): putting
        # DSPy's original back would undo theirs; theirs stays, and calls ours only if it does
        logger.debug("dspex: %s was replaced by another patch; left as it is", applied.patch.name)
        return
    if applied.own:
        setattr(owner, leaf, applied.original)
    else:
        delattr(owner, leaf)


def acquire() -> None:
    """One more user of the patches (an experiment, ``autolog()``): the first applies them."""
    with _lock:
        _state.users += 1
        if _state.users > 1:
            return
        for patch in (*PATCHES, *compile_patches()):
            outcome = _apply(patch)
            if isinstance(outcome, str):
                if not patch.optional:
                    _state.unavailable[patch.name] = outcome
                    logger.info("dspex: %s not applied: %s", patch.name, outcome)
            else:
                _state.applied.append(outcome)


def release() -> None:
    """One user fewer: the last one puts every original back."""
    with _lock:
        if _state.users == 0:
            return
        _state.users -= 1
        if _state.users:
            return
        while _state.applied:
            _undo(_state.applied.pop())
        _state.unavailable.clear()


@contextmanager
def instrumented() -> Iterator[None]:
    """The patches applied for the duration of a ``with`` block."""
    acquire()
    try:
        yield
    finally:
        release()


def is_instrumented() -> bool:
    return _state.users > 0


def applied() -> list[str]:
    """Names of the patches in place now."""
    with _lock:
        return [a.patch.name for a in _state.applied]


def unavailable() -> dict[str, str]:
    """Patches that could not be applied in this process, with why, by name."""
    with _lock:
        return dict(_state.unavailable)


def patch_named(name: str) -> Patch:
    return next(p for p in PATCHES if p.name == name)


# -- LM history: usage, cost and cache hits of the LM call in flight --------------------

_history_listeners: list[Callable[[dict[str, Any]], None]] = []
# DSPy 3.4 knows a cache hit in its call's result, not in the history entry dspex reads
_cache_hit: ContextVar[bool | None] = ContextVar("dspex_cache_hit", default=None)


def add_lm_history_listener(listener: Callable[[dict[str, Any]], None]) -> None:
    """Call ``listener(entry)`` with DSPy's history entry of every LM call, from inside it,
    while the patches are applied (``on_lm_end`` receives only the outputs; usage, cost and
    cache hits are in the entry DSPy builds inside the call)."""
    if listener not in _history_listeners:
        _history_listeners.append(listener)


def cache_hit_of(entry: dict[str, Any]) -> bool:
    """Whether the LM call of history ``entry`` was answered from DSPy's cache."""
    flag = _cache_hit.get()
    if flag is not None:
        return flag
    return bool(getattr(entry.get("response"), "cache_hit", False))


def _history_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def update_history(self: Any, entry: dict[str, Any]) -> Any:
        result = original(self, entry)
        for listener in tuple(_history_listeners):
            try:
                listener(entry)
            except Exception:  # capture must never break an LM call
                logger.debug("dspex: an LM history listener failed", exc_info=True)
        return result

    return update_history


def _finalize_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def finalize(lm: Any, call: Any, result: Any, *args: Any, **kwargs: Any) -> Any:
        token = _cache_hit.set(bool(getattr(result, "cache_hit", False)))
        try:
            return original(lm, call, result, *args, **kwargs)
        finally:
            _cache_hit.reset(token)

    return finalize


# -- DSPy 3.2: compiles reported to the callbacks, as DSPy 3.3 and later do themselves ----

_COMPILING: ContextVar[tuple[tuple[int, int, int | None], ...]] = ContextVar(
    "dspex_compiling", default=()
)


def compile_patches() -> tuple[Patch, ...]:
    """With DSPy 3.2, whose optimizers do not report ``compile`` to the callbacks: one
    patch per optimizer class that defines ``compile`` (DSPy's and the user's, as
    subclasses of ``Teleprompter`` at the time the patches are applied), making it call
    ``on_compile_start``/``on_compile_end`` exactly as DSPy 3.3's ``Teleprompter`` does.
    None with DSPy 3.3 and later.

    A class defined after the patches were applied (inside an open experiment) is not
    covered: its compile is recorded as its LM and module calls only."""
    try:
        from dspy.teleprompt.teleprompt import Teleprompter
        from dspy.utils.callback import BaseCallback
    except ImportError:
        return ()
    if hasattr(BaseCallback, "on_compile_start"):
        return ()
    found: list[Patch] = []
    seen: set[type] = set()
    stack = list(Teleprompter.__subclasses__())
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        stack.extend(cls.__subclasses__())
        compile_ = cls.__dict__.get("compile")
        if not callable(compile_) or inspect.iscoroutinefunction(compile_):
            continue
        found.append(
            Patch(
                f"compile callbacks: {cls.__module__}.{cls.__qualname__}",
                cls.__module__,
                f"{cls.__qualname__}.compile",
                _reporting_compile,
                loses=f"the compiles of {cls.__name__} (DSPy 3.2 does not report them)",
                target=cls,
            )
        )
    return tuple(found)


def _invocation_key(instance: Any) -> tuple[int, int, int | None]:
    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None
    return id(instance), threading.get_ident(), id(task) if task is not None else None


def _reporting_compile(original: Callable[..., Any]) -> Callable[..., Any]:
    if not callable(original):
        raise TypeError(f"{original!r} is not callable")
    active_call_id: ContextVar[Any] = importlib.import_module("dspy.utils.callback").ACTIVE_CALL_ID

    @functools.wraps(original)
    def compile(self: Any, *args: Any, **kwargs: Any) -> Any:
        active = _COMPILING.get()
        key = _invocation_key(self)
        if key in active:  # a subclass's compile calling its base's: reported once
            return original(self, *args, **kwargs)
        callbacks = _compile_callbacks(self)
        if not callbacks:
            return original(self, *args, **kwargs)
        try:
            inputs = inspect.getcallargs(original, self, *args, **kwargs)
        except TypeError:
            return original(self, *args, **kwargs)  # raises DSPy's own TypeError
        inputs.pop("self", None)
        call_id = uuid.uuid4().hex
        compiling = _COMPILING.set((*active, key))
        try:
            for callback in callbacks:
                try:
                    callback.on_compile_start(call_id=call_id, instance=self, inputs=inputs)
                except Exception as exc:  # noqa: BLE001 - DSPy's rule: a callback never breaks
                    logger.warning("Error when calling callback %s: %s", callback, exc)
            parent = active_call_id.get()
            active_call_id.set(call_id)
            result: Any = None
            error: BaseException | None = None
            try:
                result = original(self, *args, **kwargs)
                return result
            except BaseException as exc:
                error = exc
                raise
            finally:
                active_call_id.set(parent)
                for callback in callbacks:
                    try:
                        callback.on_compile_end(call_id=call_id, outputs=result, exception=error)
                    except Exception as exc:  # noqa: BLE001 - as above
                        logger.warning("Error when calling callback %s: %s", callback, exc)
        finally:
            _COMPILING.reset(compiling)

    return compile


def _compile_callbacks(instance: Any) -> list[Any]:
    import dspy

    every = [*dspy.settings.get("callbacks", []), *getattr(instance, "callbacks", [])]
    return [c for c in every if callable(getattr(c, "on_compile_start", None))]


# -- DSPy's worker threads: they carry dspex's context -----------------------------------


def _carrying_executor(base: type) -> type:
    if not isinstance(base, type) or not callable(getattr(base, "submit", None)):
        raise TypeError(f"{base!r} is not an executor class")

    class CarryingExecutor(base):  # type: ignore[misc]  # a DSPy class, untyped
        """The executor DSPy's ParallelExecutor uses, unchanged, except that each task
        runs with the submitting thread's dspex context (where its calls are recorded)."""

        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
            return super().submit(carried(fn, scope()), *args, **kwargs)

    CarryingExecutor.__name__ = base.__name__
    CarryingExecutor.__qualname__ = base.__qualname__
    CarryingExecutor.__module__ = base.__module__
    return CarryingExecutor


# -- dspy.Evaluate: the exception behind each failed example -----------------------------


def _reporting_executor(base: type) -> type:
    if not isinstance(base, type) or not callable(getattr(base, "execute", None)):
        raise TypeError(f"{base!r} is not DSPy's ParallelExecutor")

    class ReportingParallelExecutor(base):  # type: ignore[misc]  # a DSPy class, untyped
        """DSPy's executor, unchanged, that also hands the exceptions it caught (program or
        metric, per example) to the dspex evaluation in whose context it ran. DSPy keeps
        only a log line of them, and gives the failed example an empty prediction."""

        def execute(self, function: Any, data: Any) -> Any:
            try:
                return super().execute(function, data)
            finally:
                report = lookup(EVALUATE_ERRORS_KEY)
                exceptions = getattr(self, "exceptions_map", None)
                if report is not None and exceptions:
                    try:
                        report(dict(exceptions))
                    except Exception:  # recording must not break Evaluate
                        logger.debug("dspex: could not report failed examples", exc_info=True)

    ReportingParallelExecutor.__name__ = base.__name__
    ReportingParallelExecutor.__qualname__ = base.__qualname__
    ReportingParallelExecutor.__module__ = base.__module__
    return ReportingParallelExecutor


# -- optimizers: calls go to the hook of the compile running in the calling context -------

_ANY = object()


def hook_for(optimizer: str, instance: Any = _ANY) -> Instrumented | None:
    """The hook of the innermost compile of ``optimizer`` running here (that handles
    ``instance``, when given), or None."""
    hooks = lookup(HOOKS_KEY)
    if not hooks:
        return None
    found: tuple[Instrumented, ...] = tuple(hooks.get(optimizer, ()))
    for hook in found:
        if instance is _ANY:
            return hook
        try:
            if hook.handles(instance):
                return hook
        except Exception:  # a broken hook handles nothing; DSPy's call goes on
            logger.debug("dspex: %s hook could not tell its calls", optimizer, exc_info=True)
    return None


def with_hook(hooks: Any, optimizer: str, hook: Instrumented) -> dict[str, tuple[Any, ...]]:
    """The mapping to put under :data:`HOOKS_KEY` for a compile that starts: ``hook``
    first among the hooks of ``optimizer`` (a compile nested in another of the same
    optimizer, each finding its own)."""
    current = dict(hooks or {})
    current[optimizer] = (hook, *current.get(optimizer, ()))
    return current


def _unhooked(optimizer: str, where: str) -> None:
    """An optimizer's internal ran inside an experiment with no hook of that optimizer:
    a compile dspex did not see start (DSPy did not report it to its callbacks). Say so
    on the experiment, rather than record its calls as direct calls in silence."""
    warn = getattr(lookup("listener"), "warn", None)
    if warn is None:
        return
    try:
        warn(
            f"{optimizer}: {where} ran outside any compile dspex saw start (DSPy did not "
            "report that compile to its callbacks): its steps, decisions and candidates "
            "are not recorded, only its LM and module calls"
        )
    except Exception:  # a warning must not break the optimizer
        logger.debug("dspex: could not warn about %s", where, exc_info=True)


def _dispatcher(optimizer: str, handler: str, where: str, *, method: bool) -> Any:
    """``replace`` of a patch whose calls go to ``hook.<handler>(original, ...)``: a module
    global (and a helper's method: any instance, in the compile's context, is the
    compile's), or with ``method``, a method of an instance the hook must handle."""
    piece = f"{optimizer}: {where}"

    def replace(original: Any) -> Any:
        if not callable(original):
            raise TypeError(f"{original!r} is not callable")

        if method:

            @functools.wraps(original)
            def dispatch_method(self: Any, *args: Any, **kwargs: Any) -> Any:
                hook = hook_for(optimizer, self)
                if hook is None:
                    return original(self, *args, **kwargs)
                bound = functools.partial(original, self)
                return guarded(hook, piece, handler, bound, args, kwargs)

            return dispatch_method

        @functools.wraps(original)
        def dispatch(*args: Any, **kwargs: Any) -> Any:
            hook = hook_for(optimizer)
            if hook is None:
                _unhooked(optimizer, where)
                return original(*args, **kwargs)
            return guarded(hook, piece, handler, original, args, kwargs)

        return dispatch

    return replace


def _optimizer_patch(
    optimizer: str, module: str, attribute: str, handler: str, loses: str, *, method: bool = False
) -> Patch:
    where = f"{module}.{attribute}"
    return Patch(
        f"{optimizer}: {where}",
        module,
        attribute,
        _dispatcher(optimizer, handler, where, method=method),
        loses=loses,
        optimizer=optimizer,
    )


# -- the list ----------------------------------------------------------------------------

PATCHES: tuple[Patch, ...] = (
    Patch(
        "BaseLM.update_history",
        "dspy.clients.base_lm",
        "BaseLM.update_history",
        _history_wrapper,
        loses="the usage, cost and cache hit of LM calls",
    ),
    Patch(
        "execution.finalize",
        "dspy.clients.execution",
        "finalize",
        _finalize_wrapper,
        loses="cache hits of LM calls (DSPy 3.4 marks them on its call result)",
        optional=True,  # DSPy 3.4; earlier releases mark the response itself
    ),
    Patch(
        "ParallelExecutor threads",
        "dspy.utils.parallelizer",
        "ThreadPoolExecutor",
        _carrying_executor,
        loses="calls made in the threads of dspy.Parallel, dspy.Evaluate(num_threads=...) "
        "and program.batch, while several experiments are open",
    ),
    Patch(
        "Evaluate.ParallelExecutor",
        "dspy.evaluate.evaluate",
        "ParallelExecutor",
        _reporting_executor,
        loses="the exception behind each failed example of dspy.Evaluate",
    ),
    # -- retrievers and embedders (dspex.capture.dspy_retrieval): DSPy reports them to no one
    Patch(
        "Embedder.__call__",
        "dspy.clients.embedding",
        "Embedder.__call__",
        rag.embedder_call,
        loses="dspy.Embedder calls",
    ),
    Patch(
        "Embedder.acall",
        "dspy.clients.embedding",
        "Embedder.acall",
        rag.embedder_acall,
        loses="dspy.Embedder's async calls",
    ),
    Patch(
        "embedding._compute_embeddings",
        "dspy.clients.embedding",
        "_compute_embeddings",
        rag.compute_embeddings,
        loses="cache hits of dspy.Embedder calls",
    ),
    Patch(
        "embedding._acompute_embeddings",
        "dspy.clients.embedding",
        "_acompute_embeddings",
        rag.acompute_embeddings,
        loses="cache hits of dspy.Embedder's async calls",
    ),
    Patch(
        "embedding._get_litellm",
        "dspy.clients.embedding",
        "_get_litellm",
        rag.litellm_getter,
        loses="tokens and cost of hosted embedding models",
        optional=True,  # DSPy 3.3 and later
    ),
    Patch(
        "embedding.litellm",
        "dspy.clients.embedding",
        "litellm",
        rag.litellm_module,
        loses="tokens and cost of hosted embedding models",
        optional=True,  # DSPy 3.2 reads the module itself
    ),
    Patch(
        "Embeddings.__init__",
        "dspy.retrievers.embeddings",
        "Embeddings.__init__",
        rag.embeddings_init,
        loses="the index builds of dspy.retrievers.Embeddings",
    ),
    Patch(
        "Embeddings.forward",
        "dspy.retrievers.embeddings",
        "Embeddings.forward",
        rag.embeddings_forward,
        loses="the retrievals of dspy.retrievers.Embeddings",
    ),
    Patch(
        "EmbeddingsWithScores.forward",
        "dspy.retrievers.embeddings",
        "EmbeddingsWithScores.forward",
        rag.embeddings_forward,
        loses="the retrievals of dspy.retrievers.EmbeddingsWithScores",
        optional=True,
    ),
    Patch(
        "Embeddings._batch_forward",
        "dspy.retrievers.embeddings",
        "Embeddings._batch_forward",
        rag.embeddings_batch_forward,
        loses="the scores and query embeddings of dspy.retrievers.Embeddings",
    ),
    Patch(
        "Unbatchify.__call__",
        "dspy.utils.unbatchify",
        "Unbatchify.__call__",
        rag.unbatchify_call,
        loses="the scores and query embeddings of dspy.retrievers.Embeddings",
    ),
    Patch(
        "Retrieve.forward",
        "dspy.retrievers.retrieve",
        "Retrieve.forward",
        rag.retrieve_forward,
        loses="what dspy.Retrieve found",
    ),
    Patch(
        "ColBERTv2.__call__",
        "dspy.dsp.colbertv2",
        "ColBERTv2.__call__",
        rag.colbert_call,
        loses="the retrievals of dspy.ColBERTv2",
    ),
    # -- SIMBA (and SIMBA.strategies, an instance attribute set by the hook per compile)
    _optimizer_patch(
        "SIMBA",
        "dspy.teleprompt.simba",
        "prepare_models_for_resampling",
        "prepare_models",
        loses="SIMBA's steps and trajectory sampling",
    ),
    _optimizer_patch(
        "SIMBA",
        "dspy.teleprompt.simba",
        "wrap_program",
        "wrap_program",
        loses="SIMBA's candidate runs and validations",
    ),
    # -- MIPROv2
    _optimizer_patch(
        "MIPROv2",
        "dspy.teleprompt.mipro_optimizer_v2",
        "MIPROv2._bootstrap_fewshot_examples",
        "on_bootstrap_fewshot_examples",
        loses="MIPROv2's demo sets",
        method=True,
    ),
    _optimizer_patch(
        "MIPROv2",
        "dspy.teleprompt.mipro_optimizer_v2",
        "MIPROv2._propose_instructions",
        "on_propose_instructions",
        loses="MIPROv2's instruction candidates",
        method=True,
    ),
    _optimizer_patch(
        "MIPROv2",
        "dspy.teleprompt.mipro_optimizer_v2",
        "MIPROv2._select_and_insert_instructions_and_demos",
        "on_select_and_insert",
        loses="MIPROv2's optuna trials as candidates",
        method=True,
    ),
    _optimizer_patch(
        "MIPROv2",
        "dspy.teleprompt.mipro_optimizer_v2",
        "eval_candidate_program",
        "evaluate",
        loses="MIPROv2's candidate evaluations",
    ),
    _optimizer_patch(
        "MIPROv2",
        "dspy.propose.grounded_proposer",
        "GroundedProposer.propose_instruction_for_predictor",
        "propose",
        loses="MIPROv2's instruction proposals",
    ),
    # -- COPRO, the random search: their module's Evaluate
    _optimizer_patch(
        "COPRO",
        "dspy.teleprompt.copro_optimizer",
        "Evaluate",
        "evaluator",
        loses="COPRO's candidates and their scores",
    ),
    _optimizer_patch(
        "BootstrapFewShotWithRandomSearch",
        "dspy.teleprompt.random_search",
        "Evaluate",
        "evaluator",
        loses="the random search's candidates and their scores",
    ),
    # -- BootstrapFewShot (also inside MIPROv2, the random search and KNNFewShot)
    _optimizer_patch(
        "BootstrapFewShot",
        "dspy.teleprompt.bootstrap",
        "BootstrapFewShot._bootstrap_one_example",
        "bootstrap_one_example",
        loses="BootstrapFewShot's attempts",
        method=True,
    ),
    # -- GEPA: gepa.optimize (to add dspex's GEPA callback) and the compile's adapter
    _optimizer_patch(
        "GEPA",
        "gepa",
        "optimize",
        "optimize",
        loses="GEPA's iterations, candidates and Pareto front",
    ),
    *(
        _optimizer_patch(
            "GEPA",
            "dspy.teleprompt.gepa.gepa_utils",
            f"DspyAdapter.{name}",
            f"adapter_{name}",
            loses="which GEPA candidate each run belongs to",
            method=True,
        )
        for name in ("evaluate", "build_program", "make_reflective_dataset", "propose_new_texts")
    ),
)
