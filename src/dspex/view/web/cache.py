"""What the web app keeps between requests: parsed experiments, timelines, rendered pages.

A finished experiment in a store is archived, and archived records never change, so
parsing it once serves every later page. A running one is kept with its version
(status and trial count, from the store's index: one cheap query) and read again only
when a trial has landed since::

    cache = ExperimentCache(store)
    version, experiment = cache.versioned(experiment_id)
    body = cache.rendered(("api", experiment_id, version), lambda: to_json(experiment))
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from dspex.model import Experiment, ExperimentStatus, Trial
from dspex.store import ResultStore
from dspex.store.query import MAX_LIMIT
from dspex.view.timeline import Timeline, build_timeline

__all__ = ["ExperimentCache"]


class ExperimentCache:
    """Recently viewed experiments, their timelines and what was rendered from them."""

    def __init__(self, store: ResultStore, size: int = 8) -> None:
        self.store = store
        self.size = size
        self._lock = threading.Lock()
        self._experiments: OrderedDict[str, tuple[str, Experiment]] = OrderedDict()
        self._timelines: OrderedDict[tuple[str, str], Timeline] = OrderedDict()
        self._rendered: OrderedDict[tuple[str, ...], bytes] = OrderedDict()

    def experiment(self, experiment_id: str) -> Experiment:
        return self.versioned(experiment_id)[1]

    def versioned(self, experiment_id: str) -> tuple[str, Experiment]:
        """``(version, experiment)``: the version changes whenever the record does."""
        with self._lock:
            cached = self._experiments.get(experiment_id)
            if cached is not None:
                self._experiments.move_to_end(experiment_id)
        if cached is not None and (
            cached[1].status.is_final or self._running_version(experiment_id) == cached[0]
        ):
            return cached
        experiment = self.store.get_experiment(experiment_id)
        entry = (_version(experiment), experiment)
        with self._lock:
            self._experiments[experiment_id] = entry
            while len(self._experiments) > self.size:
                self._experiments.popitem(last=False)
        return entry

    def _running_version(self, experiment_id: str) -> str | None:
        unfinished = [ExperimentStatus.RUNNING.value, ExperimentStatus.DESIGNED.value]
        page = self.store.query_experiments({"status": unfinished, "limit": MAX_LIMIT})
        for summary in page:
            if summary.id == experiment_id:
                return f"{summary.status.value}:{summary.trial_count}"
        return None  # finished (or gone) since: read it again

    def timeline(self, experiment: Experiment, trial: Trial) -> Timeline:
        key = (experiment.id, trial.id)
        with self._lock:
            if key in self._timelines:
                self._timelines.move_to_end(key)
                return self._timelines[key]
        timeline = build_timeline(trial, experiment)
        if experiment.status.is_final:
            with self._lock:
                self._timelines[key] = timeline
                while len(self._timelines) > self.size * 4:
                    self._timelines.popitem(last=False)
        return timeline

    def rendered(self, key: tuple[str, ...], build: Callable[[], bytes]) -> bytes:
        """``build()``, kept for ``key`` (which must name the experiment's version)."""
        with self._lock:
            if key in self._rendered:
                self._rendered.move_to_end(key)
                return self._rendered[key]
        body = build()
        with self._lock:
            self._rendered[key] = body
            while len(self._rendered) > self.size * 2:
                self._rendered.popitem(last=False)
        return body


def _version(experiment: Experiment) -> str:
    return f"{experiment.status.value}:{len(experiment.trials)}"
