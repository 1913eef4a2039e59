"""Studies: one program optimized by several arms (an optimizer and its options) at several
seeds, each cell an ordinary experiment, and the verdict the seeds give together.

A :class:`StudyRecord` is the study's own record: what was asked (the spec, its arms and
seeds), each cell's attempts (the experiment each one recorded, how it ended and why),
what each sealed cell measured (copied from its experiment, so that the statistics need
not reload every experiment) and the verdict. Unlike an experiment it changes while the
study runs: every save increments ``revision``, and the store refuses a save based on an
older revision (:class:`dspex.errors.StudyConflict`), so two runners never overwrite
each other.

    >>> study = StudyRecord(name="simba-vs-mipro", hypothesis="SIMBA beats MIPROv2")
    >>> study.summary().cells, study.status
    (0, <StudyStatus.DESIGNED: 'designed'>)
    >>> validate_study_name("../etc")
    Traceback (most recent call last):
    ...
    dspex.errors.ValidationError: study name '../etc' ...
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from dspex.errors import ValidationError
from dspex.model._base import ExperimentId, JsonDict, Record, UtcDatetime, utc_now
from dspex.model.hypothesis import VerdictOutcome
from dspex.model.trial import ScoreScope

__all__ = [
    "STUDY_SCHEMA_VERSION",
    "ArmComparison",
    "AttemptOutcome",
    "CellAttempt",
    "CellResult",
    "CellStatus",
    "Seeding",
    "StudyArm",
    "StudyCell",
    "StudyOwner",
    "StudyRecord",
    "StudyStatus",
    "StudySummary",
    "StudyVerdict",
    "validate_study_name",
]

STUDY_SCHEMA_VERSION = 1

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def validate_study_name(name: object) -> str:
    """``name`` when it can name a study: 1-100 letters, digits, ``.``, ``_`` or ``-``,
    starting with a letter or digit (it is a file name in the file store, and a key)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValidationError(
            f"study name {name!r} is not valid: use 1 to 100 letters, digits, '.', '_' or "
            "'-', starting with a letter or digit (for example 'simba-vs-mipro')"
        )
    return name


StudyName = Annotated[str, AfterValidator(validate_study_name)]


class StudyStatus(StrEnum):
    DESIGNED = "designed"  # recorded, nothing ran yet
    RUNNING = "running"
    COMPLETED = "completed"  # every cell sealed
    INCOMPLETE = "incomplete"  # the run ended with cells that failed; run it again to retry
    INTERRUPTED = "interrupted"  # stopped (Ctrl-C, or its runner died); run it again to resume


class CellStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SEALED = "sealed"  # its experiment is sealed as completed: the cell counts
    FAILED = "failed"  # its last attempt failed; a new run retries it
    INTERRUPTED = "interrupted"  # stopped before it finished; a new run retries it


class AttemptOutcome(StrEnum):
    RUNNING = "running"
    SEALED = "sealed"
    FAILED = "failed"  # the program, the optimizer, the data or the LM raised
    CRASHED = "crashed"  # the worker process died while it ran the cell
    TIMEOUT = "timeout"  # the cell ran longer than its time limit; its worker was stopped
    INTERRUPTED = "interrupted"  # the study was stopped (Ctrl-C) while it ran
    LOST = "lost"  # its runner died while it ran; found by the next run


class Seeding(StrEnum):
    """How a study seed reaches an arm's optimizer (see docs/studies.md)."""

    COMPILE = "compile"  # compile(..., seed=s): SIMBA
    CONSTRUCTOR = "constructor"  # Optimizer(..., seed=s): MIPROv2, GEPA
    RANGE = "range"  # candidate seeds [s*k, (s+1)*k): BootstrapFewShotWithRandomSearch
    NONE = "none"  # the optimizer takes no seed: COPRO, LabeledFewShot, BootstrapFewShot...


class StudyArm(Record):
    """One arm: an optimizer (its import path) with constructor and compile options."""

    name: str = Field(min_length=1)
    optimizer: str = Field(min_length=1)
    options: JsonDict = Field(default_factory=dict)
    compile: JsonDict = Field(default_factory=dict)
    seeding: Seeding = Seeding.NONE
    replicates: bool = False
    """For an arm that takes no seed: run it at every seed anyway, as replicates that
    differ only by what is random outside the optimizer (the LM's sampling). Without it
    such an arm runs one cell."""


class CellAttempt(Record):
    """One try at running a cell, and how it ended."""

    number: int = Field(ge=1)
    experiment_id: ExperimentId
    started_at: UtcDatetime = Field(default_factory=utc_now)
    ended_at: UtcDatetime | None = None
    outcome: AttemptOutcome = AttemptOutcome.RUNNING
    cause: str = ""
    worker: str = ""
    host: str = ""
    pid: int | None = None


class CellResult(Record):
    """What a sealed cell measured, copied from its experiment.

    ``values`` and ``baseline_values`` are the optimized and the baseline program's metric
    per evaluation example, in the order of :attr:`StudyRecord.examples` (a failed
    example counts 0, as in its score). ``curve`` is the optimizer's best score so far
    on ``curve_scope`` against seconds since the cell started.
    """

    experiment_id: ExperimentId
    score: float | None = None
    baseline_score: float | None = None
    values: tuple[float, ...] = ()
    baseline_values: tuple[float, ...] = ()
    lm_calls: int = Field(default=0, ge=0)
    tokens: int = Field(default=0, ge=0)
    cost: float | None = None
    wall_s: float = Field(default=0.0, ge=0)
    trials: int = Field(default=0, ge=0)
    curve_scope: str = ""
    curve: tuple[tuple[float, float], ...] = ()


class StudyCell(Record):
    """One arm at one seed: its attempts, and its result once sealed."""

    arm: str = Field(min_length=1)
    seed: int
    status: CellStatus = CellStatus.PENDING
    attempts: tuple[CellAttempt, ...] = ()
    result: CellResult | None = None

    @property
    def key(self) -> tuple[str, int]:
        return (self.arm, self.seed)

    @property
    def experiment_id(self) -> str | None:
        """The experiment of the sealed attempt, else of the latest one."""
        if self.result is not None:
            return self.result.experiment_id
        return self.attempts[-1].experiment_id if self.attempts else None


class ArmComparison(Record):
    """``treatment`` against ``control`` across seeds, paired over the evaluation examples.

    ``effect`` is the difference of the arms' mean scores (treatment minus control);
    ``ci_low``/``ci_high`` its interval by ``ci_method``; ``p_value`` the ``test``'s, and
    ``p_adjusted`` after the correction for the number of comparisons. ``effect_size`` is
    Hedges' g over per-seed scores; ``p_superiority`` the probability that the treatment
    scores higher than the control on a fresh seed of each (ties count half).
    """

    control: str
    treatment: str
    effect: float
    ci_low: float | None = None
    ci_high: float | None = None
    ci_method: str = ""
    confidence: float = Field(default=0.95, gt=0, lt=1)
    test: str = ""
    p_value: float = Field(ge=0, le=1)
    p_adjusted: float = Field(ge=0, le=1)
    effect_size: float | None = None
    p_superiority: float | None = Field(default=None, ge=0, le=1)
    control_seeds: int = Field(ge=0)
    treatment_seeds: int = Field(ge=0)
    n: int = Field(default=0, ge=0)


class StudyVerdict(Record):
    """The study's answer to its hypothesis (treatment beats control), at ``alpha``."""

    outcome: VerdictOutcome
    alpha: float = Field(gt=0, lt=1)
    control: str
    treatment: str
    comparison: ArmComparison
    comparisons: tuple[ArmComparison, ...] = ()
    correction: str = ""
    reason: str = ""
    seeds_needed: int | None = Field(default=None, ge=1)
    decided_at: UtcDatetime = Field(default_factory=utc_now)


class StudyOwner(Record):
    """The process running the study; ``heartbeat_at`` is renewed while it runs."""

    host: str
    pid: int
    token: str
    started_at: UtcDatetime = Field(default_factory=utc_now)
    heartbeat_at: UtcDatetime = Field(default_factory=utc_now)


class StudySummary(Record):
    """A study as a listing shows it: no cells, no spec."""

    name: StudyName
    hypothesis: str = ""
    status: StudyStatus
    created_at: UtcDatetime
    updated_at: UtcDatetime
    arms: tuple[str, ...] = ()
    seeds: int = Field(default=0, ge=0)
    cells: int = Field(default=0, ge=0)
    sealed: int = Field(default=0, ge=0)
    failed: int = Field(default=0, ge=0)
    running: int = Field(default=0, ge=0)
    verdict: VerdictOutcome | None = None
    revision: int = Field(default=0, ge=0)


class StudyRecord(Record):
    """A study: its spec, its cells and their attempts, and its verdict."""

    schema_version: int = STUDY_SCHEMA_VERSION
    name: StudyName
    hypothesis: str = ""
    spec: JsonDict = Field(default_factory=dict)
    fingerprint: str = ""
    """Of what defines the cells (program, data, metric, each arm): a run of a spec with
    another fingerprint under this name is refused instead of mixing two studies."""
    control: str = ""
    treatment: str = ""
    arms: tuple[StudyArm, ...] = ()
    seeds: tuple[int, ...] = ()
    evaluation: ScoreScope | None = None
    examples: tuple[str, ...] = ()
    """The example keys of the evaluation set, in the order of every cell's values."""
    cells: tuple[StudyCell, ...] = ()
    status: StudyStatus = StudyStatus.DESIGNED
    verdict: StudyVerdict | None = None
    warnings: tuple[str, ...] = ()
    created_at: UtcDatetime = Field(default_factory=utc_now)
    updated_at: UtcDatetime = Field(default_factory=utc_now)
    owner: StudyOwner | None = None
    revision: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> StudyRecord:
        if self.schema_version > STUDY_SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {self.schema_version} is newer than this dspex understands "
                f"({STUDY_SCHEMA_VERSION}); upgrade dspex"
            )
        arms = {arm.name for arm in self.arms}
        if len(arms) != len(self.arms):
            raise ValueError("two arms have the same name")
        seen = set()
        for cell in self.cells:
            if arms and cell.arm not in arms:
                raise ValueError(f"cell ({cell.arm}, {cell.seed}) names no arm of the study")
            if cell.key in seen:
                raise ValueError(f"cell ({cell.arm}, {cell.seed}) appears twice")
            seen.add(cell.key)
            if cell.result is not None and len(cell.result.values) not in (0, len(self.examples)):
                raise ValueError(
                    f"cell ({cell.arm}, {cell.seed}) has {len(cell.result.values)} values for "
                    f"{len(self.examples)} evaluation examples"
                )
        return self

    def cell(self, arm: str, seed: int) -> StudyCell:
        for cell in self.cells:
            if cell.key == (arm, seed):
                return cell
        raise KeyError((arm, seed))

    def arm(self, name: str) -> StudyArm:
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise KeyError(name)

    def summary(self) -> StudySummary:
        counts = {status: 0 for status in CellStatus}
        for cell in self.cells:
            counts[cell.status] += 1
        return StudySummary(
            name=self.name,
            hypothesis=self.hypothesis,
            status=self.status,
            created_at=self.created_at,
            updated_at=self.updated_at,
            arms=tuple(arm.name for arm in self.arms),
            seeds=len(self.seeds),
            cells=len(self.cells),
            sealed=counts[CellStatus.SEALED],
            failed=counts[CellStatus.FAILED],
            running=counts[CellStatus.RUNNING],
            verdict=self.verdict.outcome if self.verdict else None,
            revision=self.revision,
        )
