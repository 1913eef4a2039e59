"""No secret that capture sees (optimizer settings, the configuration) reaches a record, on
any backend: the stored bytes are searched for it. (LM settings: see
tests/capture/test_callback_events.py; a custom-engine LM refuses keys and tokens.)"""

from __future__ import annotations

from pathlib import Path

import dspy
from dspy.teleprompt import Teleprompter

import dspex
from dspex.offline import ArithQA, exact_match, load_arith

SECRETS = ("sk-wandb-0123456789", "hunter2/with@odd?chars", "tok-ui-987654321")


class CarelessOptimizer(Teleprompter):
    """An optimizer holding secrets among its settings, as GEPA holds ``wandb_api_key``."""

    def __init__(self) -> None:
        super().__init__()
        self.wandb_api_key = SECRETS[0]
        self.results_url = f"postgresql://root:{SECRETS[1]}@db.example/results"
        self.max_steps = 3

    def compile(self, student, *, trainset, **kwargs):
        for example in trainset[:2]:
            student(**example.inputs())
        return student


def _stored_bytes(store: dspex.ResultStore, experiment_id: str) -> bytes:
    """Everything the store holds for the experiment: its record as read back, and every
    file of a file or SQLite store (uncompressed text is searchable there)."""
    data = store.get_experiment(experiment_id).to_json_bytes()
    url = store.url
    if url.startswith("file://"):
        root = Path(url.removeprefix("file://"))
        data += b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())
    elif url.startswith("sqlite:///"):
        data += Path(url.removeprefix("sqlite:///")).read_bytes()
    return data


def test_secrets_never_reach_any_backend(store, monkeypatch):
    monkeypatch.setenv("DSPEX_UI_TOKEN", SECRETS[2])
    dspex.config.reset()
    lm = dspex.offline_lm()
    train, dev = load_arith()
    program = ArithQA()
    with dspy.context(lm=lm), dspex.experiment("careful", program=program, store=store) as run:
        CarelessOptimizer().compile(program, trainset=train)
        program(question=dev[0].question)
        run.evaluate(program, dev[:2], exact_match)
    archived = store.get_experiment(run.id)
    settings = archived.optimizer.settings
    assert settings["wandb_api_key"] == "********" and settings["max_steps"] == 3
    assert settings["results_url"] == "postgresql://root:***@db.example/results"
    assert archived.environment.config["ui"]["token"] == "********"
    stored = _stored_bytes(store, run.id)
    assert b"wandb_api_key" in stored  # the setting is there...
    for secret in SECRETS:
        assert secret.encode() not in stored  # ...its value is not
