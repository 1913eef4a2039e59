"""The worker process that renders pages of a long trial (see :mod:`dspex.view.web._pages`).

Reads one job as JSON on standard input (store URL, experiment and trial ids, the page
asked for), writes ``{"offset": ..., "pages": {offset: html}}`` (or ``{"missing": ...}``)
on standard output and exits: everything it parsed goes back to the system with it.
"""

from __future__ import annotations

import json
import os
import sys

from dspex.errors import ExperimentNotFound, TrialNotFound
from dspex.store import ResultStore
from dspex.view.timeline import build_timeline
from dspex.view.web._pages import PageRequest, trial_pages
from dspex.view.web.app import page_html


def main() -> int:
    job = json.loads(sys.stdin.buffer.read())
    store = ResultStore.open(job["store"], read_only=True)
    root = str(job["root"])
    try:
        experiment = store.get_experiment(job["experiment"])
        trial = experiment.trial(job["trial"])
    except ExperimentNotFound:
        json.dump({"missing": "experiment", "store": store.url}, sys.stdout)
        return 0
    except TrialNotFound:
        json.dump({"missing": "trial", "store": store.url}, sys.stdout)
        return 0
    request = PageRequest.from_json(job["request"])

    def wrap(title: str, content: object, crumbs: list[tuple[str, str]]) -> bytes:
        return page_html(root, title, content, crumbs).encode()

    offset, pages = trial_pages(
        experiment,
        trial,
        build_timeline(trial, experiment),
        request,
        root=root,
        wrap=wrap,
        ahead=int(job["ahead"]),
    )
    answer = {"offset": offset, "pages": {str(o): page.decode() for o, page in pages.items()}}
    sys.stdout.write(json.dumps(answer))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # now: freeing a long trial object by object would take seconds
