"""A dependency-free progress bar for long work (training, conversion, embedding).

On a terminal it redraws one line; otherwise (logs, CI) it prints a line every
``interval`` seconds, so a long job always shows it is alive.
"""
from __future__ import annotations

import sys
import time
from typing import Any, TextIO


def format_duration(seconds: float) -> str:
    """'1:02:03' style; '?' when unknown."""
    if seconds != seconds or seconds < 0 or seconds == float("inf"):
        return "?"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress:
    """``with Progress(total, "train", unit="samples") as p: p.update(n, loss=0.3)``."""

    def __init__(self, total: int | None, desc: str = "", *, unit: str = "it", stream: TextIO | None = None,
                 interval: float | None = None, enabled: bool = True):
        self.total = total
        self.desc = desc
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval if interval is not None else (0.2 if self.tty else 10.0)
        self.enabled = enabled
        self.count = 0
        self.postfix: dict[str, Any] = {}
        self.start = time.perf_counter()
        self._last = 0.0

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def update(self, n: int = 1, **postfix: Any) -> None:
        """Advance by ``n`` and set the shown values (loss=..., lr=...)."""
        self.count += n
        self.postfix.update(postfix)
        now = time.perf_counter()
        if now - self._last >= self.interval:
            self._last = now
            self._draw(final=False)

    @property
    def rate(self) -> float:
        elapsed = time.perf_counter() - self.start
        return self.count / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        """The current status line."""
        elapsed = time.perf_counter() - self.start
        rate = self.rate
        parts = [self.desc] if self.desc else []
        if self.total:
            pct = 100.0 * self.count / self.total
            parts.append(f"{pct:5.1f}% {self.count}/{self.total}")
            eta = (self.total - self.count) / rate if rate > 0 else float("nan")
            timing = f"{format_duration(elapsed)}<{format_duration(eta)}"
        else:
            parts.append(f"{self.count}")
            timing = format_duration(elapsed)
        parts.append(f"{rate:,.1f} {self.unit}/s")
        parts.append(timing)
        for k, v in self.postfix.items():
            parts.append(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}")
        return " | ".join(parts)

    def _draw(self, final: bool) -> None:
        if not self.enabled:
            return
        text = self.line()
        if self.tty:
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Draw the final line."""
        if self.enabled and self.count:
            self._draw(final=True)
            self.enabled = False
