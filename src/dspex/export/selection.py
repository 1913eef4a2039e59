"""Which trials an export sends, and the command that sends the ones it did not.

Trials are named by row number (``Trial.index``, the ``#`` column of every table), in
ranges, so that a thousand trials not sent fit in one short, exact command::

    >>> from datetime import UTC, datetime
    >>> from dspex import Trial, new_id
    >>> exp_id, t0 = new_id("exp"), datetime(2026, 1, 1, tzinfo=UTC)
    >>> trials = [Trial(experiment_id=exp_id, index=i, started_at=t0) for i in range(8)]
    >>> rows = TrialRows.of(trials)
    >>> missed = [trials[i].id for i in (0, 1, 2, 5, 7)]
    >>> rows.spec(missed), rows.shown(missed)
    ('0-2,5,7', '0–2, 5, 7')
    >>> rows.select("0-2,5,7", exp_id) == missed
    True
    >>> resend_command(exp_id, rows, missed, "http://127.0.0.1:6006/v1/traces").split()[4:]
    ['http://127.0.0.1:6006/v1/traces', '--trials', '0-2,5,7']
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from dspex.errors import ExportError
from dspex.model import Trial

__all__ = ["TrialRows", "resend_command"]

_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")


@dataclass(frozen=True)
class TrialRows:
    """The trials of one experiment by id and row number, in the experiment's order."""

    ids: tuple[str, ...]
    rows: tuple[int, ...]

    @classmethod
    def of(cls, trials: Iterable[Trial]) -> TrialRows:
        pairs = [(t.id, t.index) for t in trials]
        return cls(tuple(i for i, _ in pairs), tuple(r for _, r in pairs))

    @property
    def unique(self) -> bool:
        """Whether row numbers name trials one to one (they do in every dspex record)."""
        return len(set(self.rows)) == len(self.rows)

    def spec(self, trial_ids: Collection[str]) -> str:
        """``trial_ids`` as the value of ``dspex export --trials``: row numbers and ranges
        (``0-2,5``), or the ids themselves where rows are ambiguous."""
        wanted = set(trial_ids)
        if not self.unique:
            return ",".join(i for i in self.ids if i in wanted)
        rows = [row for i, row in zip(self.ids, self.rows, strict=True) if i in wanted]
        return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in _runs(rows))

    def shown(self, trial_ids: Collection[str]) -> str:
        """``trial_ids`` as messages name them: ``0–2, 5`` (the # column of the tables)."""
        return self.spec(trial_ids).replace(",", ", ").replace("-", "–")

    def select(self, spec: str, experiment_id: str) -> list[str]:
        """The ids of the trials ``spec`` names (``3,5-9,trl_...``), in order;
        :class:`ExportError` naming a part that names no trial."""
        wanted: set[str] = set()
        for part in (p.strip() for p in spec.split(",")):
            found = self._named(part)
            if not found and part:
                raise self._no_such(part, experiment_id)
            wanted.update(found)
        if not wanted:
            raise ExportError(f"--trials {spec!r} names no trial: give row numbers like 0-2,5")
        return [i for i in self.ids if i in wanted]

    def _named(self, part: str) -> list[str]:
        match = _RANGE.match(part)
        if match is None:
            return [part] if part in self.ids else []
        low, high = int(match.group(1)), int(match.group(2) or match.group(1))
        return [i for i, row in zip(self.ids, self.rows, strict=True) if low <= row <= high]

    def _no_such(self, part: str, experiment_id: str) -> ExportError:
        where = f"rows run {min(self.rows)}–{max(self.rows)}" if self.rows else "it has none"
        return ExportError(
            f"--trials: {part!r} names no trial of experiment {experiment_id} ({where}; give "
            "row numbers, ranges such as 3-9, or trial ids, comma-separated)"
        )


def _runs(numbers: Iterable[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for number in sorted(set(numbers)):
        if runs and number == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], number)
        else:
            runs.append((number, number))
    return runs


def resend_command(
    experiment_id: str,
    rows: TrialRows,
    trial_ids: Collection[str],
    endpoint: str,
    options: Sequence[str] = (),
) -> str:
    """The exact ``dspex export`` command that sends ``trial_ids`` (of the trials in
    ``rows``) to ``endpoint`` (as messages show it: no credential), ``options`` after it.
    Without ``--trials`` when they are all of them."""
    words = ["dspex", "export", experiment_id, "--otlp", endpoint]
    if set(trial_ids) != set(rows.ids):
        words += ["--trials", rows.spec(trial_ids)]
    return shlex.join([*words, *options])
