"""The DSPy callback that turns module, LM, adapter and tool calls into TraceEvents.

One :class:`DspexCallback` instance serves every trial: it finds the trial's
recorder through :func:`dspex.capture.context.active_recorder` at each call, so the
same callback attributes concurrent calls from many threads to the right trials.
With no active recorder every handler returns at once (the no-op fast path).

    import dspy
    from dspex.capture import DspexCallback, TrialRecorder, recording
    dspy.configure(callbacks=[DspexCallback()])
    with recording(TrialRecorder(trial_id)):
        program(question="2+2?")
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

from dspy.utils.callback import BaseCallback
from dspy.utils.callback_context import ACTIVE_CALL_ID

from dspex.capture.context import active_journal, active_recorder
from dspex.capture.jsonable import jsonable
from dspex.capture.program import class_path
from dspex.capture.recorder import TrialRecorder

if TYPE_CHECKING:
    from dspex.capture.autolog import AutologHandler

__all__ = ["DspexCallback", "error_payload"]


def error_payload(exc: BaseException | None) -> dict[str, str] | None:
    if exc is None:
        return None
    import traceback

    return {
        "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
    }


class _Call:
    __slots__ = ("recorder", "event_id", "parent_id", "started", "module", "extra")

    def __init__(
        self,
        recorder: TrialRecorder,
        event_id: str | None,
        parent_id: str | None,
        module: str,
        extra: Any,
    ) -> None:
        self.recorder = recorder
        self.event_id = event_id
        self.parent_id = parent_id
        self.started = time.perf_counter()
        self.module = module
        self.extra = extra


class DspexCallback(BaseCallback):
    """Records DSPy calls into the active trial's recorder."""

    def __init__(self) -> None:
        self._calls: dict[str, _Call] = {}
        # Set by dspex.autolog(): records compiles and dspy.Evaluate calls that no
        # dspex.experiment covers. Calls it started stay with it until they end.
        self.autolog: AutologHandler | None = None
        self._autolog_calls: dict[str, AutologHandler] = {}
        _install_history_hook()
        _instances.add(self)

    # -- bookkeeping ----------------------------------------------------------------

    def _enclosing(self) -> _Call | None:
        parent_call = ACTIVE_CALL_ID.get()
        return self._calls.get(parent_call) if parent_call else None

    def _begin(self, call_id: str, recorder: TrialRecorder, instance: Any, extra: Any) -> None:
        """Remember a call whose event is emitted when it ends (LM, adapter and tool calls):
        it belongs to the enclosing module call, if any."""
        enclosing = self._enclosing()
        if enclosing is None:
            module = recorder.module_paths.get(id(instance)) or type(instance).__name__
            self._calls[call_id] = _Call(recorder, None, None, module, extra)
        else:
            self._calls[call_id] = _Call(
                recorder, None, enclosing.event_id, enclosing.module, extra
            )

    # -- modules --------------------------------------------------------------------

    def on_module_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        recorder = active_recorder()
        if recorder is None:
            return
        module = recorder.module_paths.get(id(instance)) or _unregistered_name(instance)
        cls = _class_path(instance)
        payload = {
            "module": module,
            "class": cls,
            "signature": _signature_text(getattr(instance, "signature", None)),
            "inputs": jsonable(inputs.get("kwargs", inputs)),
        }
        enclosing = self._enclosing()
        parent_id = enclosing.event_id if enclosing is not None else None
        event_id = recorder.emit("execution", "module_start", payload, parent_id=parent_id)
        self._calls[call_id] = _Call(recorder, event_id, parent_id, module, cls)

    def on_module_end(
        self, call_id: str, outputs: Any | None, exception: Exception | None = None
    ) -> None:
        call = self._calls.pop(call_id, None)
        if call is None:
            return
        call.recorder.emit(
            "execution",
            "module_end",
            {
                "module": call.module,
                "class": call.extra,
                "outputs": jsonable(outputs) if exception is None else None,
                "error": error_payload(exception),
                "latency_ms": (time.perf_counter() - call.started) * 1000,
                "start_id": call.event_id,
            },
            parent_id=call.parent_id,
        )

    # -- LM calls -------------------------------------------------------------------

    def on_lm_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        recorder = active_recorder()
        if recorder is None:
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
            "settings": {k: v for k, v in settings.items() if not k.startswith("api_")},
        }
        self._begin(call_id, recorder, instance, extra)

    def on_lm_end(
        self, call_id: str, outputs: Any | None, exception: Exception | None = None
    ) -> None:
        call = self._calls.pop(call_id, None)
        if call is None:
            return
        history = call.extra.get("history") or {}
        call.recorder.emit(
            "execution",
            "lm_call",
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

    def _history_entry(self, entry: dict[str, Any]) -> None:
        """Called from inside an LM call with DSPy's history entry (usage, cost, cache hit)."""
        call = self._calls.get(ACTIVE_CALL_ID.get() or "")
        if call is None or type(call.extra) is not dict or "messages" not in call.extra:
            return  # not an LM call this callback started
        response = entry.get("response")
        call.extra["history"] = {
            "usage": {k: v for k, v in (entry.get("usage") or {}).items() if v is not None},
            "cost": entry.get("cost"),
            "cache_hit": bool(getattr(response, "cache_hit", False)),
        }

    # -- adapters and tools ---------------------------------------------------------

    def on_adapter_format_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        recorder = active_recorder()
        if recorder is not None:
            self._begin(call_id, recorder, instance, (type(instance).__name__, None))

    def on_adapter_format_end(
        self, call_id: str, outputs: Any | None, exception: Exception | None = None
    ) -> None:
        self._adapter_end(call_id, "adapter_format", exception, None)

    def on_adapter_parse_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        recorder = active_recorder()
        if recorder is not None:
            extra = (type(instance).__name__, inputs.get("completion"))
            self._begin(call_id, recorder, instance, extra)

    def on_adapter_parse_end(
        self, call_id: str, outputs: Any | None, exception: Exception | None = None
    ) -> None:
        self._adapter_end(call_id, "adapter_parse", exception, outputs)

    def _adapter_end(
        self, call_id: str, kind: str, exception: BaseException | None, outputs: Any
    ) -> None:
        call = self._calls.pop(call_id, None)
        if call is None:
            return
        adapter, completion = call.extra
        payload: dict[str, Any] = {
            "adapter": adapter,
            "module": call.module,
            "ok": exception is None,
            "error": error_payload(exception),
            "latency_ms": (time.perf_counter() - call.started) * 1000,
        }
        if kind == "adapter_parse" and exception is not None:
            payload["completion"] = jsonable(completion)
        call.recorder.emit("execution", kind, payload, parent_id=call.parent_id)

    def on_tool_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        recorder = active_recorder()
        if recorder is not None:
            extra = {
                "tool": getattr(instance, "name", type(instance).__name__),
                "args": jsonable(inputs.get("kwargs", inputs)),
            }
            self._begin(call_id, recorder, instance, extra)

    def on_tool_end(
        self, call_id: str, outputs: Any | None, exception: Exception | None = None
    ) -> None:
        call = self._calls.pop(call_id, None)
        if call is None:
            return
        call.recorder.emit(
            "execution",
            "tool_call",
            {
                "tool": call.extra["tool"],
                "module": call.module,
                "args": call.extra["args"],
                "result": jsonable(outputs),
                "error": error_payload(exception),
                "latency_ms": (time.perf_counter() - call.started) * 1000,
            },
            parent_id=call.parent_id,
        )

    # -- optimizers -----------------------------------------------------------------

    def on_compile_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        journal = active_journal()
        if journal is not None:
            journal.compile_started(call_id, instance, inputs)
        elif self.autolog is not None:
            self._autolog_calls[call_id] = self.autolog
            self.autolog.compile_started(call_id, instance, inputs)

    def on_compile_end(
        self, call_id: str, outputs: Any | None, exception: Exception | None = None
    ) -> None:
        handler = self._autolog_calls.pop(call_id, None)
        if handler is not None:
            handler.compile_finished(call_id, outputs, exception)
            return
        journal = active_journal()
        if journal is not None:
            journal.compile_finished(call_id, outputs, exception)

    # -- evaluation (recorded only under dspex.autolog) -------------------------------

    def on_evaluate_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        if self.autolog is not None:
            self._autolog_calls[call_id] = self.autolog
            self.autolog.evaluate_started(call_id, instance, inputs)

    def on_evaluate_end(
        self, call_id: str, outputs: Any | None, exception: Exception | None = None
    ) -> None:
        handler = self._autolog_calls.pop(call_id, None)
        if handler is not None:
            handler.evaluate_finished(call_id, outputs, exception)


_hook_lock = threading.Lock()
_hook_installed = False


def _install_history_hook() -> None:
    """Let callbacks see DSPy's history entry (usage, cost, cache hit) of the LM call in flight.

    ``on_lm_end`` only receives the outputs; the entry is built inside the call, where
    ACTIVE_CALL_ID names the LM call, so the wrapper hands it to the callback of that call.
    The original method always runs first and unchanged.
    """
    global _hook_installed
    with _hook_lock:
        if _hook_installed:
            return
        from dspy.clients.base_lm import BaseLM

        original = BaseLM.update_history

        def update_history(self: Any, entry: dict[str, Any]) -> Any:
            result = original(self, entry)
            try:
                # only the callback that saw this LM call start holds it in _calls
                for callback in list(_instances):
                    callback._history_entry(entry)
            except Exception:  # noqa: BLE001 - capture must never break an LM call
                pass
            return result

        update_history.__wrapped__ = original  # type: ignore[attr-defined]
        BaseLM.update_history = update_history
        _hook_installed = True


_instances: weakref.WeakSet[DspexCallback] = weakref.WeakSet()

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


def _unregistered_name(instance: Any) -> str:
    """A name for a module outside the trial's program (an optimizer's own predictor):
    its class, with the signature's name when it has one, as in ``Predict(OfferFeedback)``."""
    name = type(instance).__name__
    signature_name = getattr(getattr(instance, "signature", None), "__name__", "")
    if signature_name and signature_name != "StringSignature":
        return f"{name}({signature_name})"
    return name


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
