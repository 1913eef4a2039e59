"""The one redaction module: what it hides in records, and what it leaves alone."""

from __future__ import annotations

from dspex.redact import MASK, redact


def test_a_dspy_signature_is_program_text_not_a_secret():
    payload = {
        "module": "qa.predict",
        "signature": "question -> answer",
        "inputs": {"question": "2+2?"},
        "settings": {"api_key": "sk-live", "temperature": 0.0},
    }
    assert redact(payload) == {
        "module": "qa.predict",
        "signature": "question -> answer",
        "inputs": {"question": "2+2?"},
        "settings": {"api_key": MASK, "temperature": 0.0},
    }


def test_secret_keys_nested_anywhere_and_url_passwords_are_hidden():
    value = [{"lm": {"Authorization": "Bearer abc", "base": "https://u:pw@h/v1"}}, ("x",)]
    assert redact(value) == [{"lm": {"Authorization": MASK, "base": "https://u:***@h/v1"}}, ("x",)]
