"""The event format: one typed payload per :class:`~dspex.model.event.EventKind`.

Producers build payloads as these TypedDicts and hand them to
:meth:`dspex.capture.TrialRecorder.emit`, whose overloads accept, for each kind, only its
payload type: a key that is missing, unknown or renamed fails mypy at the producer.
Consumers (views, export, analysis) read a payload through :func:`payload_of`, typed by
the kind, and index it with ``p["key"]``: mypy checks the key. Never read a payload with
``.get("key")``: mypy does not check the keys of ``.get``.

    >>> from dspex.model.event import EventKind
    >>> PAYLOAD_TYPES[EventKind.DECISION].__name__, SOURCE_OF[EventKind.DECISION].value
    ('DecisionPayload', 'orchestration')
    >>> sorted(DecisionPayload.__required_keys__)
    ['action', 'decision', 'details', 'optimizer', 'rationale', 'step', 'strategy']

Nothing here runs while recording: a TypedDict is a plain dict at run time (emitting
costs what building the dict costs), and :func:`payload_of` is a cast plus a check that
the record holds every required key (an older record that lacks one reads it as None).
Validation, for tests and records from elsewhere, is :func:`payload_problems`.

Format versions (:data:`EVENT_FORMAT`, stored on each trial as ``event_format``):

1. records written before payloads were typed (no ``event_format`` on the trial): the
   same keys, but a producer could write any; a key a format-1 record lacks reads as None.
2. typed payloads: each payload holds its kind's required keys, with values of the
   declared types (JSON data: tuples are lists, and non-finite numbers may be text).
3. as 2, but an adapter call that succeeded inside a module call is no event of its own:
   its time is summed on that call's ``module_end`` (``adapter``, :class:`AdapterTimes`).
   A failed one is an ``adapter_format`` or ``adapter_parse`` event, as before. (Two of
   the five events of every predictor call repeated what the module and LM events say;
   recording them cost about 2% of a DSPy call's instructions.)

Adding a kind: a member of ``EventKind``, a TypedDict here, its entries in
:data:`PAYLOAD_TYPES` and :data:`SOURCE_OF`, an overload of :func:`payload_of` and of
``TrialRecorder.emit``, and a row in ``docs/data-model.md``. ``tests/model/test_payloads.py``
fails until all of them agree.
"""

import functools
from collections.abc import Mapping
from typing import Any, Literal, NotRequired, Protocol, cast, overload

# typing_extensions' TypedDict: pydantic validates it on Python 3.11 (payload_problems)
from typing_extensions import TypedDict

from dspex.model.event import EventKind, EventSource

__all__ = [
    "EVENT_FORMAT",
    "PAYLOAD_TYPES",
    "SOURCE_OF",
    "AdapterPayload",
    "AdapterTimes",
    "CandidateCreatedPayload",
    "CandidateScoredPayload",
    "CandidateScores",
    "Change",
    "Common",
    "DecisionPayload",
    "ErrorEventPayload",
    "EmbeddingPayload",
    "ErrorPayload",
    "ExampleResultExtra",
    "ExampleResultPayload",
    "LmCallPayload",
    "LmUsage",
    "LogPayload",
    "MetricPayload",
    "ModuleEndPayload",
    "ModuleStartPayload",
    "OptimizerEndPayload",
    "OptimizerOutcome",
    "OptimizerStartPayload",
    "Passage",
    "Payload",
    "RetrievalPayload",
    "StepPayload",
    "ToolCallPayload",
    "TrialScorePayload",
    "Event",
    "common_of",
    "payload_of",
    "typed_payload",
    "payload_problems",
]

EVENT_FORMAT = 3
"""The version of the event format this dspex writes (see the module docs)."""

Json = Any
"""JSON data of any shape (what the program, the dataset or the LM gave)."""


# -- shared parts --------------------------------------------------------------------------


class ErrorPayload(TypedDict):
    """An exception: the ``error`` of a call that raised."""

    type: str
    """Qualified class name, ``builtins.ValueError``."""
    message: str
    traceback: str


class ErrorEventPayload(ErrorPayload):
    """The payload of an ``error`` event: the exception, and where the harness saw it."""

    example: NotRequired[int]
    """The index of the example whose worker failed."""
    failure: NotRequired[str | None]
    """How the worker failed (``crashed``, ``timed out``...)."""
    worker: NotRequired[str | None]


class LmUsage(TypedDict, total=False):
    """Token counts as the LM reported them (other counters it reports are kept too)."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class Change(TypedDict):
    """One variable of a predictor that a candidate changed."""

    predictor: str
    field: str
    """``instructions`` or ``demos``."""
    before: Json
    after: Json


# -- orchestration -------------------------------------------------------------------------


class OptimizerStartPayload(TypedDict):
    optimizer: str
    settings: dict[str, Json]


class OptimizerOutcome(TypedDict, total=False):
    """What a hook adds to its ``optimizer_end``."""

    best_candidate: str
    """The trial id of the best candidate."""
    best_score: float | None
    budget: dict[str, Json]
    """GEPA: metric calls used and remaining."""
    pareto_front: list[str]
    """GEPA: trial ids of the candidates on the final Pareto front."""


class OptimizerEndPayload(OptimizerOutcome):
    optimizer: str
    ok: bool
    error: str | None
    """``Type: message`` of the exception the compile raised."""


class StepPayload(TypedDict):
    optimizer: str
    step: int
    batch: list[int]
    """The indices of the training examples the step works on."""
    details: dict[str, Json]
    """Optimizer-specific (see ``docs/optimizers.md``)."""


class DecisionPayload(TypedDict):
    optimizer: str
    step: int | None
    """The step it belongs to (None: the run as a whole)."""
    decision: str
    """What was decided, in one line."""
    strategy: str | None
    rationale: str | None
    """Why, with the numbers the optimizer looked at."""
    action: str | None
    """What it then did."""
    details: dict[str, Json]
    """Optimizer-specific (see ``docs/optimizers.md``)."""


class CandidateCreatedPayload(TypedDict):
    optimizer: str
    candidate: str
    """The trial id of the candidate."""
    name: str
    parents: list[str]
    """Trial ids."""
    strategy: str | None
    changes: list[Change]


class CandidateScores(TypedDict, total=False):
    """What an optimizer's hook adds to its ``candidate_scored`` events: the score the
    optimizer itself computed, next to dspex's."""

    search_score: float | None
    """BootstrapFewShotWithRandomSearch."""
    copro_score: float | None
    optuna_value: float | None
    """MIPROv2: the value reported to Optuna."""
    gepa_score: float | None


class CandidateScoredPayload(CandidateScores):
    candidate: str
    """The trial id of the candidate."""
    score: float | None
    scope: str
    """The scope's name (``minibatch``, ``full``...)."""
    n: int
    fingerprint: NotRequired[str | None]


# -- execution -----------------------------------------------------------------------------


# ``class`` is a keyword: these two are declared in TypedDict's functional form.
ModuleStartPayload = TypedDict(
    "ModuleStartPayload",
    {
        "module": str,  # the module's path in the program (``qa.predict``)
        "class": str,  # the module's class path
        "signature": str,  # ``question -> answer``; empty for a module without one
        "inputs": Json,
        # a predictor's instructions and demos as this call ran with them (what an
        # optimizer proposes later in the same trial is not what ran); absent in records
        # made before they were recorded, and for modules without a signature of their own
        "instructions": NotRequired[str],
        "demos": NotRequired[list[Json]],
    },
)

ModuleEndPayload = TypedDict(
    "ModuleEndPayload",
    {
        "module": str,
        "class": str,
        "outputs": Json,  # None when the call raised
        "error": ErrorPayload | None,
        "latency_ms": float | None,
        "start_id": str | None,  # the id of the matching ``module_start``
        # format 3: the adapter calls of this module call that succeeded (a failed one is
        # an ``adapter_format`` or ``adapter_parse`` event of its own)
        "adapter": NotRequired["AdapterTimes"],
    },
)


class AdapterTimes(TypedDict):
    """A module call's adapter calls that succeeded, on its ``module_end`` (event format 3;
    format 2 recorded each as an ``adapter_format`` or ``adapter_parse`` event)."""

    adapter: str
    """The adapter class that made the last of them (``ChatAdapter``)."""
    formats: int
    format_ms: float
    """The time the ``formats`` prompt formattings took, together."""
    parses: int
    parse_ms: float
    """The time the ``parses`` completion parsings took, together."""


class LmCallPayload(TypedDict):
    model: str | None
    module: str | None
    """The path of the module that made the call (None: recorded without a module)."""
    messages: list[dict[str, Json]] | None
    """Exactly as sent."""
    response: Json
    """The LM's outputs (a list: one per completion)."""
    settings: dict[str, Json]
    """Sent with the call, secrets hidden."""
    usage: LmUsage | None
    cost: float | None
    cache_hit: bool | None
    latency_ms: float | None
    error: ErrorPayload | None
    recorded_from: NotRequired[str]
    """Set when the call was recorded from DSPy's LM history, not from the callback."""


class AdapterPayload(TypedDict):
    """The payload of ``adapter_format`` and ``adapter_parse``."""

    adapter: str
    module: str
    ok: bool
    error: ErrorPayload | None
    latency_ms: float | None
    completion: NotRequired[Json]
    """``adapter_parse`` that failed: the text it could not parse."""


class ToolCallPayload(TypedDict):
    tool: str
    module: str
    args: Json
    result: Json
    error: ErrorPayload | None
    latency_ms: float | None


class Passage(TypedDict):
    """One passage a retriever returned, at its rank."""

    text: str | None
    """The passage's text (``long_text`` for ColBERTv2 and ``dspy.Retrieve``)."""
    id: Json
    """Its id as the retriever gave it: the corpus index (``Embeddings``), the ``pid``
    (ColBERTv2), the ``id`` of a user's search result; None when it gave none."""
    score: float | None
    metadata: NotRequired[dict[str, Json]]
    """Whatever else the retriever returned with it (ColBERTv2's ``rank``, ``prob``...)."""


class RetrievalPayload(TypedDict):
    """One call of a retriever: ``dspy.retrievers.Embeddings``, ``dspy.Retrieve``,
    ``dspy.ColBERTv2``, or a search the user marked with ``dspex.retriever``."""

    retriever: str
    """The retriever's class path, or the qualified name of the user's search function."""
    module: str | None
    """The path of the module that called it (None: called outside any module)."""
    queries: list[Json]
    """The query, or queries, as asked (one result list per query)."""
    k: int | None
    results: list[list[Passage]]
    """Per query, the passages in the order the retriever ranked them."""
    settings: dict[str, Json]
    """The retriever's settings (``k``, its URL, its embedder...), secrets hidden."""
    latency_ms: float | None
    error: ErrorPayload | None
    batched: NotRequired[int]
    """``Embeddings``: how many queries (of any caller) its embedder embedded in one call
    with this one, this one included."""


class EmbeddingPayload(TypedDict):
    """One call of an embedder: every ``dspy.Embedder`` call, and each embedding step of
    ``dspy.retrievers.Embeddings`` (building its index, embedding queries)."""

    model: str
    """The hosted model's name, or the qualified name of the local embedding function."""
    embedder: str
    """The class path of the embedder (``dspy.clients.embedding.Embedder``), or
    ``function`` for a plain function handed to ``Embeddings``."""
    module: str | None
    purpose: str
    """``call`` (a direct call), ``index`` (``Embeddings`` embedding its corpus: one event
    for the whole index) or ``query`` (``Embeddings`` embedding queries)."""
    retriever: str | None
    """The class path of the retriever it embedded for (``index`` and ``query``)."""
    inputs: int
    """How many texts it embedded (the corpus size, for an index)."""
    texts: list[str]
    """The first texts embedded (at most 16; none for an index)."""
    batch_size: int | None
    batches: int | None
    """Requests made, one per batch of ``batch_size`` texts (None: not known)."""
    cache_hits: int | None
    """Batches answered from a cache (DSPy's, or LiteLLM's): no tokens, no cost."""
    dimensions: int | None
    usage: LmUsage | None
    """Tokens, when the provider reports them."""
    cost: float | None
    """In USD, when the provider (LiteLLM's price list) reports it."""
    latency_ms: float | None
    """The call's time (an index: the whole build, its embedding included)."""
    error: ErrorPayload | None
    callers: NotRequired[int]
    """``query``: the retrievals this one call embedded queries for (``Embeddings``
    batches the queries of concurrent callers)."""


class LogPayload(TypedDict):
    level: str
    message: str
    logger: NotRequired[str]


# -- evaluation ----------------------------------------------------------------------------


class ExampleResultExtra(TypedDict, total=False):
    """What an optimizer's hook adds to its ``example_result`` events."""

    feedback: str
    """GEPA: the feedback text the metric returned."""
    candidate: str | None
    """The trial id of the candidate that ran."""
    candidate_name: str
    temperature: float | None
    """SIMBA trajectory sampling: the LM copy's temperature."""
    rollout_id: int | None
    phase: str
    """GEPA: which evaluation of the iteration (``before``, ``after``, ``valset``)."""


class ExampleResultPayload(ExampleResultExtra):
    example: int
    """The example's index in the evaluated set."""
    inputs: dict[str, Json]
    labels: dict[str, Json]
    prediction: dict[str, Json] | None
    metric: str
    value: float | str
    """The metric's value (text when it is not finite: ``"nan"``)."""
    passed: bool
    latency_ms: float | None
    error: dict[str, Json] | None
    """An :class:`~dspex.model.ErrorInfo` as data, when the program or the metric raised."""


class MetricPayload(TypedDict):
    metric: str
    value: Json
    example: NotRequired[int]


class TrialScorePayload(TypedDict):
    score: float | None
    metric: str
    n: int
    failures: int
    scope: str
    """The scope's name."""
    fingerprint: NotRequired[str | None]


Payload = (
    OptimizerStartPayload
    | OptimizerEndPayload
    | StepPayload
    | DecisionPayload
    | CandidateCreatedPayload
    | CandidateScoredPayload
    | ModuleStartPayload
    | ModuleEndPayload
    | LmCallPayload
    | AdapterPayload
    | ToolCallPayload
    | RetrievalPayload
    | EmbeddingPayload
    | LogPayload
    | ExampleResultPayload
    | MetricPayload
    | TrialScorePayload
    | ErrorEventPayload
)
"""Any event's payload."""


class Common(TypedDict, total=False):
    """Keys that several kinds share, for reading an event of any kind (:func:`common_of`).

    Read them with ``.get``: a kind may lack any of them. ``tests/model/test_payloads.py``
    pins which kinds declare each one, so that a key renamed in one kind fails there.
    """

    module: str | None
    error: ErrorPayload | dict[str, Json] | str | None
    """A call's exception (``optimizer_end``: its ``Type: message`` text)."""
    latency_ms: float | None
    optimizer: str
    metric: str
    candidate: str | None
    strategy: str | None


def common_of(event: "Event") -> Common:
    """``event``'s payload, read through the keys several kinds share."""
    return cast(Common, event.payload)


K = EventKind
PAYLOAD_TYPES: Mapping[EventKind, type[Any]] = {
    K.OPTIMIZER_START: OptimizerStartPayload,
    K.OPTIMIZER_END: OptimizerEndPayload,
    K.STEP: StepPayload,
    K.DECISION: DecisionPayload,
    K.CANDIDATE_CREATED: CandidateCreatedPayload,
    K.CANDIDATE_SCORED: CandidateScoredPayload,
    K.MODULE_START: ModuleStartPayload,
    K.MODULE_END: ModuleEndPayload,
    K.LM_CALL: LmCallPayload,
    K.ADAPTER_FORMAT: AdapterPayload,
    K.ADAPTER_PARSE: AdapterPayload,
    K.TOOL_CALL: ToolCallPayload,
    K.RETRIEVAL: RetrievalPayload,
    K.EMBEDDING: EmbeddingPayload,
    K.LOG: LogPayload,
    K.EXAMPLE_RESULT: ExampleResultPayload,
    K.METRIC: MetricPayload,
    K.TRIAL_SCORE: TrialScorePayload,
    K.ERROR: ErrorEventPayload,
}
"""The payload type of each kind."""

_O, _X, _V = EventSource.ORCHESTRATION, EventSource.EXECUTION, EventSource.EVALUATION
SOURCE_OF: Mapping[EventKind, EventSource] = {
    K.OPTIMIZER_START: _O,
    K.OPTIMIZER_END: _O,
    K.STEP: _O,
    K.DECISION: _O,
    K.CANDIDATE_CREATED: _O,
    K.CANDIDATE_SCORED: _O,
    K.MODULE_START: _X,
    K.MODULE_END: _X,
    K.LM_CALL: _X,
    K.ADAPTER_FORMAT: _X,
    K.ADAPTER_PARSE: _X,
    K.TOOL_CALL: _X,
    K.RETRIEVAL: _X,
    K.EMBEDDING: _X,
    K.LOG: _X,
    K.EXAMPLE_RESULT: _V,
    K.METRIC: _V,
    K.TRIAL_SCORE: _V,
    K.ERROR: _O,
}
"""The source an event of each kind comes from, unless its producer says otherwise
(``error`` and ``log`` events come from any source)."""


class Event(Protocol):
    """What :func:`payload_of` reads: a :class:`~dspex.model.TraceEvent`, or a recorder's
    :class:`~dspex.capture.RawEvent` before its trial is sealed."""

    @property
    def kind(self) -> str: ...

    @property
    def payload(self) -> Mapping[str, Any]: ...


_REQUIRED: dict[str, frozenset[str]] = {
    kind.value: frozenset(cls.__required_keys__) for kind, cls in PAYLOAD_TYPES.items()
}


# fmt: off
@overload
def payload_of(event: Event, kind: Literal[K.OPTIMIZER_START]) -> OptimizerStartPayload | None: ...
@overload
def payload_of(event: Event, kind: Literal[K.OPTIMIZER_END]) -> OptimizerEndPayload | None: ...
@overload
def payload_of(event: Event, kind: Literal[K.STEP]) -> StepPayload | None: ...
@overload
def payload_of(event: Event, kind: Literal[K.DECISION]) -> DecisionPayload | None: ...
@overload
def payload_of(event: Event, kind: Literal[K.CANDIDATE_CREATED]) -> CandidateCreatedPayload | None: ...  # noqa: E501
@overload
def payload_of(event: Event, kind: Literal[K.CANDIDATE_SCORED]) -> CandidateScoredPayload | None: ...  # noqa: E501
@overload
def payload_of(event: Event, kind: Literal[K.MODULE_START]) -> ModuleStartPayload | None: ...
@overload
def payload_of(event: Event, kind: Literal[K.MODULE_END]) -> ModuleEndPayload | None: ...
@overload
def payload_of(event: Event, kind: Literal[K.LM_CALL]) -> LmCallPayload | None: ...
@overload
def payload_of(event: Event, kind: Literal[K.ADAPTER_FORMAT, K.ADAPTER_PARSE]) -> AdapterPayload | None: ...  # noqa: E501
@overload
def payload_of(event: Event, kind: Literal[K.TOOL_CALL]) -> ToolCallPayload | None: ...
@overload
def payload_of(event: Event, kind: Literal[K.RETRIEVAL]) -> RetrievalPayload | None: ...
@overload
def payload_of(event: Event, kind: Literal[K.EMBEDDING]) -> EmbeddingPayload | None: ...
@overload
def payload_of(event: Event, kind: Literal[K.LOG]) -> LogPayload | None: ...
@overload
def payload_of(event: Event, kind: Literal[K.EXAMPLE_RESULT]) -> ExampleResultPayload | None: ...
@overload
def payload_of(event: Event, kind: Literal[K.METRIC]) -> MetricPayload | None: ...
@overload
def payload_of(event: Event, kind: Literal[K.TRIAL_SCORE]) -> TrialScorePayload | None: ...
@overload
def payload_of(event: Event, kind: Literal[K.ERROR]) -> ErrorEventPayload | None: ...
# fmt: on
def payload_of(event: Event, kind: EventKind) -> Payload | None:
    """``event``'s payload typed as ``kind``'s, or None when ``event`` is of another kind.

    Every required key is there: one that an older record lacks reads as None. The
    values are as recorded (records from elsewhere may hold any JSON: validate those
    with :func:`payload_problems` when they must be trusted).
    """
    if event.kind != kind:
        return None
    payload = event.payload
    required = _REQUIRED[kind]
    if not required <= payload.keys():
        payload = {**dict.fromkeys(required), **payload}
    return cast(Payload, payload)


def typed_payload(event: Event) -> Payload:
    """``event``'s payload typed as its own kind's (every required key there, as in
    :func:`payload_of`): for tables of one reader per kind."""
    payload = event.payload
    required = _REQUIRED.get(event.kind, frozenset())
    if not required <= payload.keys():
        payload = {**dict.fromkeys(required), **payload}
    return cast(Payload, payload)


def payload_problems(kind: EventKind | str, payload: Mapping[str, Any]) -> list[str]:
    """What in ``payload`` does not follow ``kind``'s type: missing required keys, keys the
    type does not declare, values of another type. Empty when it follows it.

    >>> for problem in payload_problems(
    ...     "trial_score", {"score": 0.5, "metric": "accuracy", "n": "2", "failures": 0,
    ...                     "scpoe": "dev"}):
    ...     print(problem)
    missing key 'scope'
    unknown key 'scpoe'
    n: Input should be a valid integer
    """
    kind = EventKind(kind)
    cls = PAYLOAD_TYPES[kind]
    declared = cls.__required_keys__ | cls.__optional_keys__
    problems = [f"missing key {k!r}" for k in sorted(cls.__required_keys__ - payload.keys())]
    problems += [f"unknown key {k!r}" for k in payload if k not in declared]
    known = {k: v for k, v in payload.items() if k in declared}
    problems += _type_problems(kind, known)
    return problems


def _type_problems(kind: EventKind, payload: dict[str, Any]) -> list[str]:
    from pydantic import ValidationError

    try:
        _adapter(kind).validate_python(payload, strict=True)
    except ValidationError as exc:
        return [
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
            for error in exc.errors(include_url=False)
            if error["type"] != "missing"
        ]
    return []


@functools.cache
def _adapter(kind: EventKind) -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(PAYLOAD_TYPES[kind])
