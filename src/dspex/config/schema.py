"""What can be configured: every setting, its type, default and meaning.

The field descriptions here are the reference; ``docs/configuration.md`` documents
each of them and a test fails when one is missing there. All durations are in
**seconds** (floats allowed).
"""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dspex.redact import redact_url

__all__ = [
    "AnalysisSettings",
    "CaptureSettings",
    "SQL_URL_SCHEMES",
    "EvaluationSettings",
    "ExportSettings",
    "JournalSettings",
    "Settings",
    "StoreBackendName",
    "StoreSettings",
    "UISettings",
    "WorkerAdapterName",
    "WorkersSettings",
    "check_otlp_endpoint",
    "default_python_path",
    "sql_url_problem",
]

SQL_URL_SCHEMES = ("sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg", "postgres")
"""The database URL schemes the sql backend connects with (PostgreSQL through psycopg 3)."""


def sql_url_problem(url: str) -> str | None:
    """What is wrong with ``url`` as a sql store URL, or None when dspex can use it.

    >>> sql_url_problem("postgresql+psycopg://db/x") is None
    True
    >>> sql_url_problem("postgresql+asyncpg://db/x")
    "scheme 'postgresql+asyncpg' is not one dspex connects with: use sqlite:///path.db, ..."
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in SQL_URL_SCHEMES:
        return None
    return (
        f"scheme {scheme or url!r} is not one dspex connects with: use sqlite:///path.db, "
        "postgresql://user@host:5432/db or postgresql+psycopg://... (psycopg 3)"
    )


MAX_POOL_SIZE = 4096
"""The most workers a pool may have (every numeric setting has a range; see
``tests/test_limits.py``)."""
HOUR = 3600.0
WEEK = 7 * 24 * HOUR


def _cpu_count() -> int:
    return min(os.cpu_count() or 1, MAX_POOL_SIZE)


def default_python_path() -> str:
    """``PYTHON_EXECUTABLE`` from the environment, else the running interpreter."""
    return os.environ.get("PYTHON_EXECUTABLE") or sys.executable


class StoreBackendName(StrEnum):
    MEMORY = "memory"
    FILE = "file"
    SQL = "sql"


class WorkerAdapterName(StrEnum):
    THREAD = "thread"
    PROCESS = "process"
    RAY = "ray"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class StoreSettings(_Section):
    backend: StoreBackendName = Field(
        default=StoreBackendName.FILE,
        description="Where the ResultStore keeps experiments: memory, file or sql "
        "(default: file, at store.path; memory when DSPEX_ENV is test).",
    )
    path: Path = Field(
        default=Path("dspex_results"),
        description="Root directory of the file backend (relative paths are taken "
        "from the current directory).",
    )
    url: str | None = Field(
        default=None,
        description="Database URL of the sql backend: sqlite:///path.db or "
        "postgresql://user@host:5432/db. Required when backend is sql.",
    )
    auto_migrate: bool = Field(
        default=True,
        description="Let ResultStore.open() apply pending schema migrations of the sql "
        "backend. Set false in production and run `dspex store migrate` instead.",
    )

    @model_validator(mode="after")
    def _url_for_sql(self) -> StoreSettings:
        if self.backend is StoreBackendName.SQL and not self.url:
            raise ValueError(
                "store.url is required when store.backend is 'sql' "
                "(for example sqlite:///dspex.db or postgresql://localhost/dspex)"
            )
        problem = sql_url_problem(self.url) if self.url else None
        if problem:
            raise ValueError(f"store.url {redact_url(self.url or '')!r}: {problem}")
        return self


class EvaluationSettings(_Section):
    harness_pool_size: int = Field(
        default_factory=_cpu_count,
        ge=1,
        le=MAX_POOL_SIZE,
        description="How many workers the EvaluationHarness evaluates examples on "
        "(default: the CPU count); the kind of worker comes from workers.adapter.",
    )


class AnalysisSettings(_Section):
    alpha: float = Field(
        default=0.05,
        gt=0,
        lt=1,
        description="Significance level of hypothesis verdicts: the final evaluation "
        "validates or rejects the hypothesis when the paired test against the baseline "
        "gives p below alpha; otherwise the verdict is inconclusive.",
    )


class WorkersSettings(_Section):
    adapter: WorkerAdapterName = Field(
        default=WorkerAdapterName.THREAD,
        description="What runs the program: thread (a thread pool in this process), "
        "process (worker processes) or ray (a Ray cluster).",
    )
    pooling_enabled: bool = Field(
        default=True,
        description="When false, everything runs in the calling thread, one example at a time.",
    )
    pool_size: int = Field(
        default_factory=_cpu_count,
        ge=1,
        le=MAX_POOL_SIZE,
        description="Number of workers in the pool (default: the CPU count).",
    )
    pool_startup_timeout: float = Field(
        default=15.0,
        gt=0,
        le=HOUR,
        description="Seconds for every worker of a new pool to be ready.",
    )
    worker_init_timeout: float = Field(
        default=10.0,
        gt=0,
        le=HOUR,
        description="Seconds for one worker to load the program and DSPy settings.",
    )
    worker_shutdown_grace_period: float = Field(
        default=2.0,
        ge=0,
        le=HOUR,
        description="Seconds a worker may take to stop gracefully before it is killed.",
    )
    task_timeout: float | None = Field(
        default=300.0,
        gt=0,
        le=WEEK,
        description="Seconds one example may run on a worker before the worker is "
        "replaced and the example recorded as failed; null for no limit.",
    )
    python_path: str = Field(
        default_factory=default_python_path,
        min_length=1,
        description="Interpreter for process workers (default: PYTHON_EXECUTABLE from "
        "the environment, else the current interpreter).",
    )
    ray_address: str | None = Field(
        default=None,
        description="Address of the Ray cluster (ray://host:10001 or auto); unset "
        "starts a local Ray.",
    )


class UISettings(_Section):
    host: str = Field(
        default="127.0.0.1",
        min_length=1,
        description="Interface `dspex ui` binds. A non-loopback host requires ui.token.",
    )
    port: int = Field(default=8765, ge=0, le=65535, description="Port `dspex ui` listens on.")
    token: str | None = Field(
        default=None,
        description="Access token the web UI requires (as ?token= or a Bearer header); "
        "required to bind a non-loopback host.",
    )

    max_connections: int = Field(
        default=256,
        ge=1,
        le=65_536,
        description="Connections `dspex ui` keeps open at once (also held below the "
        "process's open-file limit). At the limit, the connection that has waited longest "
        "for its request is dropped for a new one; if all are busy, the new one gets 503.",
    )
    header_timeout: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="Seconds a client of `dspex ui` has to send a request's headers after "
        "it connects; a slower one is disconnected.",
    )
    keep_alive_timeout: float = Field(
        default=5.0,
        gt=0,
        le=600,
        description="Seconds `dspex ui` keeps an idle connection open after a response.",
    )
    send_timeout: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Seconds a client of `dspex ui` may leave a response unread before it "
        "is disconnected.",
    )

    cache_mb: int = Field(
        default=256,
        ge=16,
        le=1_048_576,
        description="Megabytes of parsed records and rendered pages `dspex ui` keeps "
        "between requests (measured, least recently used dropped first).",
    )

    @field_validator("token")
    @classmethod
    def _real_token(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError(
                "a token of only whitespace protects nothing; set a real token or unset it"
            )
        return value


def check_otlp_endpoint(value: str) -> str:
    """``value`` if it is an http(s) URL of an OTLP receiver without credentials in it.

    >>> check_otlp_endpoint("http://127.0.0.1:6006/v1/traces")
    'http://127.0.0.1:6006/v1/traces'
    >>> check_otlp_endpoint("localhost:4318")
    Traceback (most recent call last):
    ...
    ValueError: OTLP endpoint 'localhost:4318' is not an http:// or https:// URL ...
    """
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"OTLP endpoint {redact_url(value)!r} is not an http:// or https:// URL with a "
            "host (for example http://127.0.0.1:6006 or http://collector:4318/v1/traces)"
        )
    if redact_url(value) != value:
        # the URL would be kept in every experiment's configuration snapshot
        raise ValueError(
            f"OTLP endpoint {redact_url(value)!r} carries a credential; put it in a header "
            "instead: OTEL_EXPORTER_OTLP_TRACES_HEADERS='Authorization=Basic ...'"
        )
    return value


class CaptureSettings(_Section):
    strict: bool = Field(
        default=False,
        description="When an assumption about DSPy fails while recording (a patch that "
        "cannot be applied, an optimizer's internal that moved or changed meaning), fail "
        "the experiment at the end of its block instead of recording less with a warning "
        "(the compile itself always runs as without dspex). For CI.",
    )
    dspy_output: Literal["auto", "show", "quiet"] = Field(
        default="auto",
        description="DSPy's progress bars and INFO lines inside an experiment block: show "
        "them, quiet them, or auto: shown when standard output is a terminal, one dspex "
        "progress line in a notebook, quiet otherwise (a pipe, a file, CI).",
    )


class JournalSettings(_Section):
    spool_dir: Path | None = Field(
        default=None,
        description="Directory of the write-ahead spool: each running experiment's events "
        "on local disk as they happen, until the store holds them (default: "
        "$XDG_STATE_HOME/dspex/spool, else ~/.local/state/dspex/spool).",
    )
    flush_interval: float = Field(
        default=0.1,
        gt=0,
        le=60,
        description="Seconds between two writes of new events to the spool: what a killed "
        "process can lose at most (plus the time of one write and any pause of the whole "
        "process, such as a full garbage collection).",
    )


class ExportSettings(_Section):
    otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP receiver (Phoenix, Langfuse, MLflow, a collector) that "
        "each trial is sent to as OpenTelemetry traces when it finishes; unset sends "
        "nothing. A base URL gets /v1/traces appended.",
    )
    otlp_project: str = Field(
        default="dspex",
        min_length=1,
        description="Project the exported traces belong to (the resource attribute "
        "openinference.project.name: the Phoenix project).",
    )
    otlp_flush_timeout: float = Field(
        default=5.0,
        ge=0,
        le=600,
        description="Seconds the end of an experiment waits for trials still being sent "
        "to a receiver that answers; a receiver that failed is not waited for.",
    )

    otlp_give_up_after: int = Field(
        default=3,
        ge=1,
        le=1000,
        description="`dspex export --otlp` stops after this many trials in a row could not "
        "reach the receiver (no connection, no answer in time, or 502/503/504), naming the "
        "trials not sent and the command that sends them.",
    )
    otlp_give_up_seconds: float = Field(
        default=20.0,
        gt=0,
        le=HOUR,
        description="`dspex export --otlp` also stops once no trial has reached the receiver "
        "for this many seconds; until then no request waits longer than what remains.",
    )

    @field_validator("otlp_endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return None if value is None else check_otlp_endpoint(value)


class Settings(_Section):
    """The effective dspex configuration. Obtain it with :func:`dspex.config.get_settings`."""

    store: StoreSettings = Field(default_factory=StoreSettings)
    evaluation: EvaluationSettings = Field(default_factory=EvaluationSettings)
    analysis: AnalysisSettings = Field(default_factory=AnalysisSettings)
    workers: WorkersSettings = Field(default_factory=WorkersSettings)
    ui: UISettings = Field(default_factory=UISettings)
    export: ExportSettings = Field(default_factory=ExportSettings)
    capture: CaptureSettings = Field(default_factory=CaptureSettings)
    journal: JournalSettings = Field(default_factory=JournalSettings)


def setting_keys() -> dict[str, str]:
    """Every dotted setting name with its description."""
    keys = {}
    for section_name, section_field in Settings.model_fields.items():
        section_model = section_field.annotation
        assert isinstance(section_model, type) and issubclass(section_model, BaseModel)
        for name, field in section_model.model_fields.items():
            keys[f"{section_name}.{name}"] = field.description or ""
    return keys
