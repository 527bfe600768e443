"""Limits on what a small input file may make facebone allocate.

A few bytes can describe a huge object: an image header claiming 15000 x 15000 pixels, or a
pickle asking for a multi-gigabyte buffer. Every decoder checks these limits before it
allocates, and says in its message which environment variable raises a limit:

- ``FACEBONE_MAX_IMAGE_PIXELS``: pixels (H x W) of one decoded image (default 4096 x 4096);
- ``FACEBONE_MAX_BIN_BYTES``: bytes of encoded images one ``.bin`` verification set may
  hold once unpickled (default 8 GiB);
- ``FACEBONE_MAX_DECODED_BYTES``: bytes of the decoded uint8 array of one ``.bin`` set
  (default 32 GiB).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from facebone.errors import ConfigError


@dataclass(frozen=True)
class Limit:
    """One limit: its environment variable, default and unit (for messages)."""

    env: str
    default: int
    unit: str

    def value(self) -> int:
        """The limit in force: the environment variable if set, else the default."""
        text = os.environ.get(self.env, "").strip()
        if not text:
            return self.default
        try:
            value = int(float(text))
        except ValueError:
            raise ConfigError(f"{self.env}={text!r}: expected a number of {self.unit}") from None
        if value <= 0:
            raise ConfigError(f"{self.env}={text!r}: must be positive")
        return value

    def hint(self) -> str:
        """How to raise the limit, for the end of a message."""
        return f"the limit is {self.value():,} {self.unit}; set {self.env} to raise it"


MAX_IMAGE_PIXELS = Limit("FACEBONE_MAX_IMAGE_PIXELS", 4096 * 4096, "pixels")
MAX_BIN_BYTES = Limit("FACEBONE_MAX_BIN_BYTES", 8 << 30, "bytes")
MAX_DECODED_BYTES = Limit("FACEBONE_MAX_DECODED_BYTES", 32 << 30, "bytes")
