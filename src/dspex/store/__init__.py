"""The ResultStore: a durable, queryable record of experiments over pluggable backends.

See :class:`ResultStore` for the API and :mod:`dspex.store.backend` for the contract.
"""

from dspex.store._events import PART_EVENTS, EventPart, encode_parts, json_rows
from dspex.store.backend import DamagedRecord, StoreBackend, register_backend
from dspex.store.query import ExperimentSummary, Query
from dspex.store.service import Page, ResultStore

__all__ = [
    "PART_EVENTS",
    "EventPart",
    "ExperimentSummary",
    "Page",
    "DamagedRecord",
    "Query",
    "ResultStore",
    "StoreBackend",
    "encode_parts",
    "json_rows",
    "register_backend",
]
