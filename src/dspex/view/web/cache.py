"""What the web app keeps between requests, bounded by bytes: parsed experiments,
timelines and rendered pages.

A finished experiment in a store is archived, and archived records never change, so
parsing it once serves every later page. A running one is kept with its version
(status and trial count, from the store's index: one cheap query) and read again only
when a trial has landed since::

    cache = ExperimentCache(store, budget=256 * 2**20)
    version, experiment = cache.versioned(experiment_id)
    body = cache.rendered(("api", experiment_id, version), lambda: to_json(experiment))

Everything kept is measured (:mod:`dspex.view.web._sizes`): rendered bodies by their
length, parsed records by walking them. The least recently used entries go first when
the total passes ``budget``; an entry larger than half the budget is used for its
request and not kept, so one huge trial never pushes out everything else.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from functools import cache
from typing import Any, TypeVar

from dspex.model import Experiment, ExperimentStatus, Trial
from dspex.store import ResultStore
from dspex.store.query import MAX_LIMIT
from dspex.view.timeline import Timeline, build_timeline
from dspex.view.web._sizes import measured_size

__all__ = ["DEFAULT_BUDGET", "ByteCache", "ExperimentCache", "release_memory"]

DEFAULT_BUDGET = 256 * 2**20
"""The default of ``ui.cache_mb``, in bytes."""

T = TypeVar("T")
log = logging.getLogger(__name__)


class ByteCache:
    """A least-recently-used map whose values have a size in bytes, kept under ``budget``.

    >>> c = ByteCache(budget=100)
    >>> c.put("a", b"x" * 40, 40), c.put("b", b"y" * 40, 40), c.put("c", b"z" * 40, 40)
    (True, True, True)
    >>> c.get("a") is None, c.size
    (True, 80)
    >>> c.put("big", b"w" * 60, 60)
    False
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.size = 0
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()

    def get(self, key: Hashable) -> Any:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: Hashable, value: Any, size: int) -> bool:
        """Keep ``value`` (``size`` bytes); False when it is too large to keep."""
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.size -= old[1]
            if size > self.budget // 2:
                return False
            self._entries[key] = (value, size)
            self.size += size
            while self.size > self.budget and self._entries:
                _, (_, dropped) = self._entries.popitem(last=False)
                self.size -= dropped
            return True

    def __len__(self) -> int:
        return len(self._entries)

    def sizes(self) -> dict[Hashable, int]:
        """Every key with its size, least recently used first (for tests and logs)."""
        with self._lock:
            return {key: size for key, (_, size) in self._entries.items()}


class ExperimentCache:
    """Recently viewed experiments, their timelines and what was rendered from them,
    within ``budget`` bytes."""

    def __init__(self, store: ResultStore, budget: int = DEFAULT_BUDGET) -> None:
        self.store = store
        self.entries = ByteCache(budget)

    @property
    def budget(self) -> int:
        return self.entries.budget

    def experiment(self, experiment_id: str) -> Experiment:
        return self.versioned(experiment_id)[1]

    def versioned(self, experiment_id: str, *, events: bool = True) -> tuple[str, Experiment]:
        """``(version, experiment)``: the version changes whenever the record does.

        ``events=False``: the trials may come without their events (each with its
        ``event_summary``), as the experiment page needs them: read so when the whole
        record is not kept already, in a fraction of the time."""
        key = ("experiment", experiment_id)
        cached: tuple[str, Experiment] | None = self.entries.get(key)
        if cached is None and not events:
            key = ("headers", experiment_id)
            cached = self.entries.get(key)
        if cached is not None and (
            cached[1].status.is_final or self._running_version(experiment_id) == cached[0]
        ):
            return cached
        experiment = self.store.get_experiment(experiment_id, events=events)
        entry = (_version(experiment), experiment)
        self._keep(key, entry)
        if experiment.status.is_final:
            self.entries.put(("final", experiment_id), entry[0], sys.getsizeof(entry[0]) + 200)
        return entry

    def known_version(self, experiment_id: str) -> str | None:
        """The version of ``experiment_id`` if it was read finished before (its record
        never changes again): what was rendered from it is served without reading it,
        even when the experiment was too large to keep."""
        found = self.entries.get(("final", experiment_id))
        return found if isinstance(found, str) else None

    def kept_experiment(self, experiment_id: str) -> bool:
        return self.entries.get(("experiment", experiment_id)) is not None

    def _running_version(self, experiment_id: str) -> str | None:
        unfinished = [ExperimentStatus.RUNNING.value, ExperimentStatus.DESIGNED.value]
        page = self.store.query_experiments({"status": unfinished, "limit": MAX_LIMIT})
        for summary in page:
            if summary.id == experiment_id:
                return f"{summary.status.value}:{summary.trial_count}"
        return None  # finished (or gone) since: read it again

    def timeline(self, experiment: Experiment, trial: Trial) -> Timeline:
        key = ("timeline", experiment.id, trial.id)
        cached: Timeline | None = self.entries.get(key)
        if cached is not None:
            return cached
        timeline = build_timeline(trial, experiment)
        if experiment.status.is_final:
            # The timeline shares its trial's events with the cached experiment; measured
            # alone it counts them again, which errs on the side of keeping less.
            self._keep(key, timeline)
        return timeline

    def cached_timeline(self, experiment: Experiment, trial: Trial) -> bool:
        """Whether the timeline of ``trial`` is kept (False: it was too large, or is not
        built yet)."""
        return self.entries.get(("timeline", experiment.id, trial.id)) is not None

    def rendered(self, key: tuple[str, ...], build: Callable[[], bytes]) -> bytes:
        """``build()``, kept for ``key`` (which must name the experiment's version)."""
        cached: bytes | None = self.entries.get(("rendered", *key))
        if cached is not None:
            return cached
        body = build()
        self.entries.put(("rendered", *key), body, sys.getsizeof(body))
        return body

    def kept(self, key: Hashable, build: Callable[[], T]) -> T:
        """``build()`` for ``key``, measured and kept when it fits."""
        cached: T | None = self.entries.get(key)
        if cached is not None:
            return cached
        value = build()
        self._keep(key, value)
        return value

    def _keep(self, key: Hashable, value: Any) -> None:
        size = measured_size(value)
        if not self.entries.put(key, value, size):
            log.info("not cached (%.0f MB, over half of ui.cache_mb): %s", size / 2**20, key)


def _version(experiment: Experiment) -> str:
    return f"{experiment.status.value}:{len(experiment.trials)}"


@cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:  # no C library to ask: memory is returned when the allocator wants
        return None


def release_memory() -> None:
    """Ask the C allocator to give freed memory back to the system (glibc only): after a
    huge record was parsed and dropped, the process's resident size falls back."""
    libc = _libc()
    trim = getattr(libc, "malloc_trim", None)
    if trim is not None:
        trim(0)
