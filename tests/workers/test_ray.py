"""Ray specifics: the session's Ray is reused, and a missing Ray says how to install it."""

from __future__ import annotations

import sys

import pytest

from dspex.config.schema import WorkersSettings
from dspex.errors import MissingExtraError
from dspex.workers import create_pool
from dspex.workers.ray_pool import ensure_ray
from tests.workers import helpers


@pytest.mark.ray
def test_an_initialized_ray_is_reused(ray_session):
    node = ray_session.get_runtime_context().get_node_id()
    assert ensure_ray("ray://unreachable.invalid:10001") is ray_session
    assert ray_session.get_runtime_context().get_node_id() == node
    with create_pool(WorkersSettings(adapter="ray", pool_size=1)) as pool:
        assert [o.value for o in pool.map(helpers.square, [4])] == [16]


def test_without_ray_installed_the_error_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(MissingExtraError, match=r"pip install 'dspex\[ray\]'"):
        create_pool(WorkersSettings(adapter="ray", pool_size=1)).start()
