"""The offline LM's randomness: reproducible per call (seed, prompt, temperature)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

__all__ = ["Draws"]


@dataclass(frozen=True)
class Draws:
    """Reproducible uniform numbers for one call, from a hash of seed, prompt and temperature."""

    key: bytes
    temperature: float

    def uniform(self, label: str) -> float:
        digest = hashlib.sha256(self.key + label.encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def chance(self, label: str, per_temperature: float, cap: float = 0.6) -> bool:
        """True with probability ``min(cap, per_temperature * temperature)``; never at 0."""
        return self.uniform(label) < min(cap, per_temperature * self.temperature)

    def pick(self, label: str, options: list[str]) -> str:
        return options[int(self.uniform(label) * len(options))]
