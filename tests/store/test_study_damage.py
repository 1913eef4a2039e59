"""A damaged study record is an error naming the study, never different data; the file
store's listing leaves it out and the others stay readable."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import create_engine, select, update

from dspex import CorruptRecordError, ResultStore
from dspex.store import _sqltables
from tests.store.test_conformance import make_study


@pytest.mark.parametrize("backend", ["file"])
@pytest.mark.parametrize("where", ["body", "head"])
def test_a_damaged_study_file_is_named_and_left_out_of_the_listing(
    store_url_factory, where, caplog
):
    store = ResultStore.open(store_url_factory()).connect()
    damaged = store.save_study(make_study("damaged"))
    intact = store.save_study(make_study("intact"))
    path = store.backend._studies.path("damaged")
    data = bytearray(path.read_bytes())
    at = data.index(b"\n") + 40 if where == "body" else 20
    data[at] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptRecordError, match="'damaged' is damaged"):
        store.get_study("damaged")
    with caplog.at_level(logging.WARNING):
        listed = store.query_studies()
    assert [s.name for s in listed] == (["intact"] if where == "head" else ["intact", "damaged"])
    assert store.get_study("intact").to_json() == intact.to_json()
    if where == "head":  # a writer does not replace what it cannot read
        with pytest.raises(CorruptRecordError):
            store.save_study(damaged)
        assert "damaged" in caplog.text


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_damaged_study_row_is_named(store_url_factory):
    url = store_url_factory()
    store = ResultStore.open(url).connect()
    store.save_study(make_study("damaged"))
    engine = create_engine(url)
    with engine.begin() as conn:
        table = _sqltables.studies
        payload = bytearray(conn.execute(select(table.c.payload)).scalar_one())
        payload[-3] ^= 0x40
        conn.execute(update(table).values(payload=bytes(payload)))
    engine.dispose()
    with pytest.raises(CorruptRecordError, match="'damaged' is damaged"):
        store.get_study("damaged")
