"""The DSPy callback that turns module, LM, adapter and tool calls into TraceEvents.

One :class:`DspexCallback` instance serves every trial: at each call it finds where the
call is recorded (:mod:`dspex.capture.context`): the active trial's recorder; else, for a
call nested in a recorded call, that call's recorder; else the experiment's listener,
which places a top-level call made outside any trial (a direct call in an experiment
block). Compiles and ``dspy.Evaluate`` calls are reported to the listener. With nothing
active every handler returns at once (the no-op fast path).

    import dspy
    from dspex.capture import TrialRecorder, instrumented, recording, shared_callback
    dspy.configure(callbacks=[shared_callback()])
    with instrumented(), recording(TrialRecorder(trial_id)):
        program(question="2+2?")

Pickled with DSPy's settings (``dspy.settings.save()``), the shared callback is saved as
a reference to the process's shared callback: loading the settings back and passing
them to ``dspy.configure`` leaves exactly one dspex callback, which records each call
once.
"""

from __future__ import annotations

import importlib
import threading
import time
import traceback
import weakref
from typing import Any, Final, Literal, NamedTuple, TypedDict, cast, overload

from dspy.clients.base_lm import BaseLM
from dspy.utils.callback import BaseCallback

try:  # DSPy 3.3 and later
    from dspy.utils.callback_context import ACTIVE_CALL_ID
except ImportError:  # DSPy 3.2
    ACTIVE_CALL_ID = importlib.import_module("dspy.utils.callback").ACTIVE_CALL_ID

from dspex.capture import retrieval
from dspex.capture.context import (
    RECORDER_KEY,
    CaptureListener,
    active_listener,
    active_recorder,
    describe_call,
    lookup,
)
from dspex.capture.instrument import add_lm_history_listener, cache_hit_of
from dspex.capture.jsonable import jsonable
from dspex.capture.program import (
    class_path,
    demos_json,
    module_paths,
    predictor_name,
    root_key,
    root_module_name,
)
from dspex.capture.recorder import TrialRecorder
from dspex.model.event import EventKind
from dspex.model.payloads import (
    AdapterPayload,
    AdapterTimes,
    ErrorEventPayload,
    ErrorPayload,
    LmCallPayload,
    LmUsage,
    ModuleEndPayload,
    ModuleStartPayload,
)
from dspex.redact import redact_settings

__all__ = [
    "DspexCallback",
    "Placement",
    "error_event",
    "error_payload",
    "place_call",
    "shared_callback",
]


# Read once: an Enum member looked up on its class costs ~0.1 us, on every call.
_MODULE_START: Final = EventKind.MODULE_START
_MODULE_END: Final = EventKind.MODULE_END
_LM_CALL: Final = EventKind.LM_CALL
_ADAPTER_FORMAT: Final = EventKind.ADAPTER_FORMAT
_ADAPTER_PARSE: Final = EventKind.ADAPTER_PARSE
_TOOL_CALL: Final = EventKind.TOOL_CALL


@overload
def error_payload(exc: BaseException) -> ErrorPayload: ...
@overload
def error_payload(exc: BaseException | None) -> ErrorPayload | None: ...
def error_payload(exc: BaseException | None) -> ErrorPayload | None:
    """The ``error`` of a call that raised ``exc`` (None: it did not), and the payload of
    an ``error`` event."""
    if exc is None:
        return None
    return {
        "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
    }


def error_event(exc: BaseException) -> ErrorEventPayload:
    """The payload of an ``error`` event for ``exc``."""
    error = error_payload(exc)
    return {"type": error["type"], "message": error["message"], "traceback": error["traceback"]}


class _Call:
    __slots__ = (
        "recorder",
        "event_id",
        "parent_id",
        "started",
        "module",
        "extra",
        "listener",
        "adapter",
    )

    def __init__(
        self,
        recorder: TrialRecorder,
        event_id: str | None,
        parent_id: str | None,
        module: str,
        extra: Any,
        listener: CaptureListener | None,
    ) -> None:
        self.recorder = recorder
        self.event_id = event_id
        self.parent_id = parent_id
        self.started = time.perf_counter()
        self.module = module
        self.extra = extra
        # the listener that placed this top-level call, told when it ends
        self.listener = listener
        # a module call's adapter calls that succeeded (recorded on its module_end)
        self.adapter: AdapterTimes | None = None


_Placed = tuple[TrialRecorder, _Call | None, CaptureListener | None]


class DspexCallback(BaseCallback):  # type: ignore[misc]  # DSPy ships no type information
    """Records DSPy calls into the trial they belong to (see the module docs)."""

    def __init__(self) -> None:
        self._calls: dict[str, _Call] = {}
        # compile and dspy.Evaluate calls reported to a listener: it hears their end too
        self._listened: dict[str, CaptureListener] = {}
        # calls that no trial records (several experiments open, a thread without
        # context), with the listener told of them: their nested calls are not told again
        self._unplaced: dict[str, CaptureListener] = {}
        _instances.add(self)
        add_lm_history_listener(_history_to_callbacks)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # What DSPy saves with its settings: the shared callback stays the shared one (no
        # second callback after a reload), another one a fresh, empty callback; the calls
        # in flight (recorders, listeners, locks) are never pickled.
        return (shared_callback, ()) if self is _shared else (DspexCallback, ())

    # -- bookkeeping ----------------------------------------------------------------

    def _place(self, instance: Any, call_id: str | None = None) -> _Placed | None:
        """Where a call starting now is recorded: its recorder, the enclosing recorded call
        (its parent), and the listener that placed it when it is a top-level direct call."""
        parent_call = ACTIVE_CALL_ID.get()
        enclosing = self._calls.get(parent_call) if parent_call else None
        recorder = lookup(RECORDER_KEY)
        if recorder is not None:
            if enclosing is not None and enclosing.recorder.trial_id != recorder.trial_id:
                enclosing = None  # recorded into another trial: not this call's parent
            return recorder, enclosing, None
        if enclosing is not None:
            return enclosing.recorder, enclosing, None
        if parent_call is not None and parent_call in self._unplaced:
            self._inside_unplaced(call_id, instance, self._unplaced[parent_call])
            return None
        listener = active_listener()
        if listener is None:
            return None
        recorder = listener.calls_recorder(instance)
        if recorder is None:
            if call_id is not None:
                self._unplaced[call_id] = listener
            return None
        return recorder, None, listener

    def _inside_unplaced(
        self, call_id: str | None, instance: Any, listener: CaptureListener
    ) -> None:
        """A call inside a call that no trial records (its listener was told of it): the
        listener hears of the LM calls it makes, once each, and of nothing else (its
        adapter and sub-module calls are part of the call it was told of)."""
        if call_id is not None:
            self._unplaced[call_id] = listener
        if isinstance(instance, BaseLM):
            listener.unattributed(describe_call(instance), threading.current_thread().name)

    @staticmethod
    def _module_name(recorder: TrialRecorder, instance: Any, enclosing: _Call | None) -> str:
        name = recorder.module_paths.get(id(instance))
        if name is not None:
            return name
        if enclosing is None:  # a program the trial did not know: name it and its modules
            key = root_key(instance)
            root = recorder.root_names.get(key) or root_module_name(instance)
            return recorder.adopt(instance, module_paths(instance, root), key)
        return predictor_name(instance)

    def _begin(self, call_id: str, placed: _Placed, instance: Any, extra: Any) -> None:
        """Remember a call whose event is emitted when it ends (LM, adapter and tool calls):
        it belongs to the enclosing module call, if any."""
        recorder, enclosing, listener = placed
        if enclosing is None:
            module = recorder.module_paths.get(id(instance)) or type(instance).__name__
            self._calls[call_id] = _Call(recorder, None, None, module, extra, listener)
        else:
            self._calls[call_id] = _Call(
                recorder, None, enclosing.event_id, enclosing.module, extra, None
            )

    def _end(self, call_id: str) -> _Call | None:
        call = self._calls.pop(call_id, None)
        if call is None:
            if self._unplaced:
                self._unplaced.pop(call_id, None)
        elif call.listener is not None:
            call.listener.calls_done(call.recorder)
        return call

    # -- modules --------------------------------------------------------------------

    def on_module_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        placed = self._place(instance, call_id)
        if placed is None:
            return
        recorder, enclosing, listener = placed
        module = self._module_name(recorder, instance, enclosing)
        cls = _class_path(instance)
        signature = _own_attribute(instance, "signature")
        payload: ModuleStartPayload = {
            "module": module,
            "class": cls,
            "signature": _signature_text(signature),
            "inputs": jsonable(inputs.get("kwargs", inputs)),
        }
        if signature is not None:  # a predictor: what it runs with, read as it starts
            payload["instructions"] = _instructions(signature)
            payload["demos"] = _demos_json(_own_attribute(instance, "demos"))
        parent_id = enclosing.event_id if enclosing is not None else None
        event_id = recorder.emit(_MODULE_START, payload, parent_id=parent_id, json_ready=True)
        self._calls[call_id] = _Call(recorder, event_id, parent_id, module, cls, listener)

    def on_module_end(
        self, call_id: str, outputs: Any | None, exception: Exception | None = None
    ) -> None:
        call = self._calls.pop(call_id, None)
        if call is None:
            if self._unplaced:
                self._unplaced.pop(call_id, None)
            return
        payload: ModuleEndPayload = {
            "module": call.module,
            "class": call.extra,
            "outputs": jsonable(outputs) if exception is None else None,
            "error": error_payload(exception),
            "latency_ms": (time.perf_counter() - call.started) * 1000,
            "start_id": call.event_id,
        }
        if call.adapter is not None:
            payload["adapter"] = call.adapter
        call.recorder.emit(_MODULE_END, payload, parent_id=call.parent_id, json_ready=True)
        if call.listener is not None:
            call.listener.calls_done(call.recorder)

    # -- LM calls -------------------------------------------------------------------

    def on_lm_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        placed = self._place(instance, call_id)
        if placed is None:
            return
        kwargs = inputs.get("kwargs") or {}
        messages = inputs.get("messages")
        if messages is None and inputs.get("prompt") is not None:
            messages = [{"role": "user", "content": inputs["prompt"]}]
        settings = {**(getattr(instance, "kwargs", {}) or {}), **kwargs}
        # messages, response and settings are built by DSPy for this one call and never
        # changed afterwards: the recorder turns them into JSON at finish time, off the
        # hot path (module inputs and outputs, which user code may change, are copied now)
        extra = {
            "model": getattr(instance, "model", type(instance).__name__),
            "messages": messages,
            "settings": redact_settings(settings),
        }
        self._begin(call_id, placed, instance, extra)

    def on_lm_end(
        self, call_id: str, outputs: Any | None, exception: Exception | None = None
    ) -> None:
        call = self._end(call_id)
        if call is None:
            return
        history = call.extra.get("history") or {}
        call.recorder.emit(
            _LM_CALL,
            {
                "model": call.extra["model"],
                "module": call.module,
                "messages": call.extra["messages"],
                "response": outputs,
                "settings": call.extra["settings"],
                "usage": history.get("usage"),
                "cost": history.get("cost"),
                "cache_hit": history.get("cache_hit"),
                "latency_ms": (time.perf_counter() - call.started) * 1000,
                "error": error_payload(exception),
            },
            parent_id=call.parent_id,
        )

    def _history_entry(self, entry: dict[str, Any]) -> bool:
        """Called from inside an LM call with DSPy's history entry (usage, cost, cache hit);
        True when the call is one this callback saw start."""
        call_id = ACTIVE_CALL_ID.get() or ""
        call = self._calls.get(call_id)
        if call is None and call_id in self._unplaced:
            return True  # an LM call no trial records, already counted as such
        if call is None or type(call.extra) is not dict or "messages" not in call.extra:
            return False  # not an LM call this callback started
        call.extra["history"] = _usage(entry)
        return True

    # -- adapters and tools ---------------------------------------------------------

    def on_adapter_format_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        placed = self._place(instance, call_id)
        if placed is not None and not _same_adapter_call(placed[1], _ADAPTER_FORMAT):
            extra = (type(instance).__name__, None, _ADAPTER_FORMAT, placed[1])
            self._begin(call_id, placed, instance, extra)

    def on_adapter_format_end(
        self, call_id: str, outputs: Any | None, exception: Exception | None = None
    ) -> None:
        self._adapter_end(call_id, _ADAPTER_FORMAT, exception)

    def on_adapter_parse_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        placed = self._place(instance, call_id)
        if placed is not None and not _same_adapter_call(placed[1], _ADAPTER_PARSE):
            extra = (type(instance).__name__, inputs.get("completion"), _ADAPTER_PARSE, placed[1])
            self._begin(call_id, placed, instance, extra)

    def on_adapter_parse_end(
        self, call_id: str, outputs: Any | None, exception: Exception | None = None
    ) -> None:
        self._adapter_end(call_id, _ADAPTER_PARSE, exception)

    def _adapter_end(
        self,
        call_id: str,
        kind: Literal[EventKind.ADAPTER_FORMAT, EventKind.ADAPTER_PARSE],
        exception: BaseException | None,
    ) -> None:
        call = self._end(call_id)
        if call is None:
            return
        adapter, completion, _, module_call = call.extra
        latency_ms = (time.perf_counter() - call.started) * 1000
        if exception is None and module_call is not None and module_call.event_id is not None:
            # a call that worked, inside a module call: its time goes on the module's end
            times = module_call.adapter
            if times is None:
                times = module_call.adapter = {
                    "adapter": adapter, "formats": 0, "format_ms": 0.0, "parses": 0, "parse_ms": 0.0
                }  # fmt: skip
            times["adapter"] = adapter
            if kind is _ADAPTER_FORMAT:
                times["formats"] += 1
                times["format_ms"] += latency_ms
            else:
                times["parses"] += 1
                times["parse_ms"] += latency_ms
            return
        payload: AdapterPayload = {
            "adapter": adapter,
            "module": call.module,
            "ok": exception is None,
            "error": error_payload(exception),
            "latency_ms": latency_ms,
        }
        if kind is _ADAPTER_PARSE and exception is not None:
            payload["completion"] = jsonable(completion)
        call.recorder.emit(kind, payload, parent_id=call.parent_id, json_ready=True)

    def on_tool_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        placed = self._place(instance, call_id)
        if placed is not None:
            extra = {
                "tool": getattr(instance, "name", type(instance).__name__),
                "args": jsonable(inputs.get("kwargs", inputs)),
            }
            self._begin(call_id, placed, instance, extra)

    def on_tool_end(
        self, call_id: str, outputs: Any | None, exception: Exception | None = None
    ) -> None:
        call = self._end(call_id)
        if call is None:
            return
        call.recorder.emit(
            _TOOL_CALL,
            {
                "tool": call.extra["tool"],
                "module": call.module,
                "args": call.extra["args"],
                "result": jsonable(outputs),
                "error": error_payload(exception),
                "latency_ms": (time.perf_counter() - call.started) * 1000,
            },
            parent_id=call.parent_id,
            json_ready=True,
        )

    # -- compiles and dspy.Evaluate: reported to the experiment's listener ----------

    def on_compile_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        listener = active_listener()
        if listener is not None:
            self._listened[call_id] = listener
            listener.compile_started(call_id, instance, inputs)

    def on_compile_end(
        self, call_id: str, outputs: Any | None, exception: Exception | None = None
    ) -> None:
        listener = self._listened.pop(call_id, None)
        if listener is not None:
            listener.compile_finished(call_id, outputs, exception)

    def on_evaluate_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        listener = active_listener()
        if listener is not None:
            self._listened[call_id] = listener
            listener.evaluate_started(call_id, instance, inputs)

    def on_evaluate_end(
        self, call_id: str, outputs: Any | None, exception: Exception | None = None
    ) -> None:
        listener = self._listened.pop(call_id, None)
        if listener is not None:
            listener.evaluate_finished(call_id, outputs, exception)


_instances: weakref.WeakSet[DspexCallback] = weakref.WeakSet()


def _same_adapter_call(enclosing: _Call | None, kind: EventKind) -> bool:
    """True for a ``format`` (``parse``) call inside a ``format`` (``parse``) call: DSPy
    wraps the method of every adapter class, so an adapter that inherits it (JSONAdapter's
    ``format`` is ChatAdapter's) reports one call twice, nested. The outer one is the call."""
    extra = enclosing.extra if enclosing is not None else None
    return type(extra) is tuple and len(extra) == 4 and extra[2] is kind


def _history_to_callbacks(entry: dict[str, Any]) -> None:
    # only the callback that saw this LM call start holds it in its calls (the shared one,
    # nearly always: it is asked first)
    shared = _shared
    if shared is not None and shared._history_entry(entry):
        return
    for callback in list(_instances):
        if callback is not shared and callback._history_entry(entry):
            return
    _record_unseen_lm_call(entry)


class _History(TypedDict):
    """What an LM call's DSPy history entry adds to its ``lm_call``."""

    usage: LmUsage
    cost: float | None
    cache_hit: bool


def _usage(entry: dict[str, Any]) -> _History:
    """Usage, cost and cache hit of an LM call's history entry. A call answered from
    DSPy's cache cost nothing: no tokens, cost 0 (DSPy 3.4 keeps the original call's cost
    on the entry)."""
    if cache_hit_of(entry):
        return {"usage": {}, "cost": 0.0, "cache_hit": True}
    # the provider's counters: LmUsage's three, and any others it reports
    counters = {k: v for k, v in (entry.get("usage") or {}).items() if v is not None}
    return {
        "usage": cast(LmUsage, counters),
        "cost": entry.get("cost"),
        "cache_hit": False,
    }


def _record_unseen_lm_call(entry: dict[str, Any]) -> None:
    """An LM call no dspex callback saw, made where dspex records: recorded from DSPy's
    history entry, without its module. This happens when ``dspy.configure(callbacks=...)``
    or ``dspy.context(callbacks=...)`` inside an experiment replaced dspex's callback; the
    call is kept (with what the history knows), never silently dropped."""
    recorder, listener = active_recorder(), None
    if recorder is None:
        listener = active_listener()
        recorder = listener.calls_recorder(None) if listener is not None else None
    if recorder is None:
        return
    messages = entry.get("messages")
    if messages is None and entry.get("prompt") is not None:
        messages = [{"role": "user", "content": entry["prompt"]}]
    usage = _usage(entry)
    payload: LmCallPayload = {
        "model": entry.get("model"),
        "module": None,
        "messages": messages,
        "response": entry.get("outputs"),
        "settings": redact_settings(entry.get("kwargs") or {}),
        "usage": usage["usage"],
        "cost": usage["cost"],
        "cache_hit": usage["cache_hit"],
        "latency_ms": None,
        "error": None,
        "recorded_from": "DSPy's LM history: the dspex callback was not active here",
    }
    try:
        recorder.emit(_LM_CALL, payload)
    finally:
        if listener is not None:
            listener.calls_done(recorder)


_shared: DspexCallback | None = None
_shared_lock = threading.Lock()


class Placement(NamedTuple):
    """Where a call that DSPy reports to no callback (a retrieval, an embedding) is
    recorded: as the calls the callback records are (:meth:`DspexCallback._place`)."""

    recorder: TrialRecorder
    parent_id: str | None
    """The event of the enclosing module call (None: a top-level call)."""
    module: str | None
    """The path of the enclosing module (None: called outside any module)."""
    listener: CaptureListener | None
    """The listener that placed this top-level call: tell it when the call ends
    (``listener.calls_done(recorder)``)."""


def place_call(instance: Any) -> Placement | None:
    """Where a call on ``instance`` made here is recorded (None: nowhere), nested under
    the module call the callback saw start in this context, on any thread or task."""
    parent_call = ACTIVE_CALL_ID.get()
    holder = _shared
    if parent_call and (holder is None or parent_call not in holder._calls):
        holder = next((c for c in list(_instances) if parent_call in c._calls), holder)
    if holder is None:
        holder = shared_callback()
    placed = holder._place(instance)
    if placed is None:
        return None
    recorder, enclosing, listener = placed
    if enclosing is None:
        return Placement(recorder, None, None, listener)
    # a call inside a tool call (a ReAct tool that searches) sits in the tool's module: the
    # tool's own event is emitted when it ends, and has no id yet
    return Placement(
        recorder, enclosing.event_id or enclosing.parent_id, enclosing.module, listener
    )


def active_call_id() -> str | None:
    """DSPy's id of the innermost call reported to callbacks, running here."""
    call_id: str | None = ACTIVE_CALL_ID.get()
    return call_id


retrieval.use_placement(place_call, active_call_id)


def shared_callback() -> DspexCallback:
    """The one DspexCallback of this process (every front end installs this one)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = DspexCallback()
        return _shared


# Plain dicts keyed by class (a weak dictionary costs a weakref per lookup, on every
# call); cleared when full, since optimizers create signature classes as they go.
_CACHE_SIZE = 4096
_class_paths: dict[type, str] = {}
_signature_texts: dict[type, str] = {}


def _class_path(instance: Any) -> str:
    cls = type(instance)
    path = _class_paths.get(cls)
    if path is None:
        if len(_class_paths) >= _CACHE_SIZE:
            _class_paths.clear()
        path = _class_paths[cls] = class_path(cls)
    return path


def _own_attribute(instance: Any, name: str) -> Any:
    """``instance.name`` when set on the instance itself, read past DSPy's Python-level
    ``Module.__getattribute__`` (it runs for every attribute of a module, on every call)."""
    try:
        return object.__getattribute__(instance, "__dict__").get(name)
    except AttributeError:
        return getattr(instance, name, None)


_demo_jsons: dict[int, tuple[Any, tuple[int, ...], list[Any]]] = {}
# it keeps the user's demo lists alive: a few hundred candidates' worth is enough to
# serve the calls of the ones running now
_DEMO_CACHE_SIZE = 256
_instruction_texts: dict[Any, tuple[Any, str]] = {}


def _instructions(signature: Any) -> str:
    """A signature's instructions (DSPy cleans its docstring up on every read), cached by
    class and docstring: setting ``instructions`` replaces the docstring, so a changed
    instruction is never served from the cache."""
    try:
        doc = type.__getattribute__(signature, "__doc__")
        cached = _instruction_texts.get(signature)
    except TypeError:  # not a class, or not hashable: read as it is
        return str(getattr(signature, "instructions", "") or "")
    if cached is not None and cached[0] is doc:
        return cached[1]
    text = str(getattr(signature, "instructions", "") or "")
    if len(_instruction_texts) >= _CACHE_SIZE:
        _instruction_texts.clear()
    _instruction_texts[signature] = (doc, text)
    return text


def _demos_json(demos: Any) -> list[Any]:
    """A predictor's demos as :func:`~dspex.capture.program.variables_of` records them.
    Cached by list and items (the same demos run on every call of a candidate); the list
    is kept alive by the cache, so its id is not reused while cached."""
    if not demos or not isinstance(demos, list | tuple):
        return []
    items = tuple(map(id, demos))
    cached = _demo_jsons.get(id(demos))
    if cached is not None and cached[0] is demos and cached[1] == items:
        return cached[2]
    value = demos_json(demos)
    if len(_demo_jsons) >= _DEMO_CACHE_SIZE:
        _demo_jsons.clear()
    _demo_jsons[id(demos)] = (demos, items, value)
    return value


def _signature_text(signature: Any) -> str:
    """``"question -> answer"`` for a signature class; cached, DSPy rebuilds it on each access."""
    if signature is None:
        return ""
    try:
        return _signature_texts[signature]
    except (KeyError, TypeError):
        pass
    text = str(getattr(signature, "signature", ""))
    try:
        if len(_signature_texts) >= _CACHE_SIZE:
            _signature_texts.clear()
        _signature_texts[signature] = text
    except TypeError:  # not hashable: not cached
        pass
    return text
