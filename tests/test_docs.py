"""Documentation stays in step with the code."""

from __future__ import annotations

import re
from pathlib import Path

from dspex.config import setting_keys

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_setting_is_documented():
    text = (DOCS / "configuration.md").read_text()
    documented = set(re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \|", text, flags=re.M))
    assert set(setting_keys()) - documented == set(), "undocumented settings"
    assert documented - set(setting_keys()) == set(), "documented settings that do not exist"
