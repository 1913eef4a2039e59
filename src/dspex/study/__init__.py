"""Studies: one program optimized by several arms at several seeds, into one store, with a
verdict across seeds (see ``docs/studies.md``).

    study = dspex.Study.from_toml("study.toml")            # or dspex.Study(name=..., ...)
    study.run(store="postgresql://db/dspex", engine="ray", address="auto")
    study.results().frame()                                # one row per cell
    study.compare("simba", "mipro")                        # treatment, control
    study.verdict                                          # validated / rejected / inconclusive

Running the same study again resumes it: sealed cells are kept, the others run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dspex.analysis.export import export_study
from dspex.analysis.studies import (
    ArmSummary,
    arm_scores,
    arm_summaries,
    cell_rows,
    compare_arms,
    study_comparisons,
)
from dspex.errors import AnalysisError, DspexError, StudySpecError
from dspex.model.rows import data_frame
from dspex.model.study import ArmComparison, StudyRecord, StudyVerdict
from dspex.store import ResultStore
from dspex.study.runner import Snapshot, StudyRunner
from dspex.study.spec import RunOptions, StudySpec, build_spec, load_spec
from dspex.view.study import study_html

__all__ = ["Snapshot", "Study", "StudyResults", "StudySpec", "build_spec", "load_spec"]


@dataclass(frozen=True)
class StudyResults:
    """A study's results as recorded: per-arm summaries, comparisons, the verdict, and one
    row per cell (:meth:`rows`, :meth:`frame`, :meth:`write`)."""

    record: StudyRecord

    @property
    def arms(self) -> list[ArmSummary]:
        return arm_summaries(self.record)

    @property
    def comparisons(self) -> list[ArmComparison]:
        return study_comparisons(self.record)

    @property
    def verdict(self) -> StudyVerdict | None:
        return self.record.verdict

    def rows(self) -> list[dict[str, Any]]:
        return cell_rows(self.record)

    def frame(self) -> Any:
        """One row per cell as a pandas DataFrame (``pip install 'dspex[analysis]'``)."""
        return data_frame(self.rows())

    def write(self, directory: str | Path, fmt: str = "csv") -> Path:
        """Write the cells to ``directory/<study>.cells.<fmt>`` (csv, jsonl or parquet)."""
        return export_study(self.record, Path(directory), fmt)

    def _repr_html_(self) -> str:
        return study_html(self.record)


class Study:
    """A study to run (from a spec), or to read (from its store)."""

    def __init__(self, spec: StudySpec | Mapping[str, Any] | None = None, /, **fields: Any):
        if spec is None:
            spec = fields
        elif fields:
            raise StudySpecError("give the spec either as one mapping or as keywords, not both")
        self.spec = spec if isinstance(spec, StudySpec) else build_spec(spec)
        self._store: ResultStore | None = None
        self._record: StudyRecord | None = None

    @classmethod
    def from_toml(cls, path: str | Path) -> Study:
        """The study described by the TOML spec at ``path`` (checked before anything runs)."""
        return cls(load_spec(path))

    @property
    def name(self) -> str:
        return self.spec.name

    def run(
        self,
        *,
        store: ResultStore | str | None = None,
        engine: str | None = None,
        address: str | None = None,
        max_concurrent: int | None = None,
        cpus_per_cell: float | None = None,
        retries: int | None = None,
        threads: int | None = None,
        timeout: float | None = None,
        alpha: float | None = None,
        on_progress: Callable[[Snapshot], None] | None = None,
        quiet: bool = True,
    ) -> StudyRecord:
        """Run (or resume) the study into ``store`` (a URL, a ResultStore, or the
        configured store) and return its record. Options given here override the
        spec's ``[run]`` table; Ctrl-C stops it cleanly (every finished cell kept)."""
        self._store = _store_of(store)
        options = self.spec.run.merged(
            engine=engine,
            address=address,
            max_concurrent=max_concurrent,
            cpus_per_cell=cpus_per_cell,
            retries=retries,
            threads=threads,
            timeout=timeout,
        )
        _check_options(options)
        runner = StudyRunner(
            self.spec, self._store, run=options, alpha=alpha, on_progress=on_progress, quiet=quiet
        )
        try:
            self._record = runner.run()
        finally:
            self._record = runner._record or self._record
        return self._record

    @property
    def record(self) -> StudyRecord:
        """The study's record, read again from its store."""
        store = self._store or ResultStore.default()
        self._record = store.get_study(self.name)
        return self._record

    def results(self) -> StudyResults:
        return StudyResults(self.record)

    def compare(self, treatment: str, control: str) -> ArmComparison:
        """``treatment`` against ``control`` across seeds (not corrected for other pairs)."""
        scores = arm_scores(self.record)
        for arm in (treatment, control):
            if arm not in scores:
                known = ", ".join(scores) or "none"
                raise AnalysisError(f"arm {arm!r} has no sealed cell; arms with results: {known}")
        return compare_arms(scores[control], scores[treatment])

    @property
    def verdict(self) -> StudyVerdict | None:
        return self.record.verdict

    def _repr_html_(self) -> str:
        try:
            return study_html(self.record)
        except DspexError:  # not run yet: show the spec's name
            return f"<p>study {self.name!r} (not run yet)</p>"


def _store_of(store: ResultStore | str | None) -> ResultStore:
    if isinstance(store, ResultStore):
        return store
    if isinstance(store, str):
        return ResultStore.open(store)
    return ResultStore.default()


def _check_options(options: RunOptions) -> None:
    from dspex.study.spec import ENGINES

    if options.engine not in ENGINES:
        raise StudySpecError(
            f"engine {options.engine!r} is unknown; use one of {', '.join(ENGINES)}"
        )
