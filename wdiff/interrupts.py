"""Ctrl-C at step boundaries: long work stops after its current step, not in the middle of one.

The command line's first-Ctrl-C handler (``cli/entry.py``) asks ``defer()``: inside an
``at_steps()`` block the stop is recorded and raised as ``KeyboardInterrupt`` by the block's
``check`` (called after each diffusion step and each finished frame), so the run unwinds from a
known place; outside one (or from Python, where no handler asks) Ctrl-C raises at once, as
usual. Signal handlers run in the main thread between two bytecodes, so plain flags do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

_state = {"blocks": 0, "requested": False}


@contextlib.contextmanager
def at_steps() -> Iterator[Callable[[], None]]:
    """Yield ``check``: raises ``KeyboardInterrupt`` once a deferred Ctrl-C came. A request
    left when the block ends (its work was done) is dropped."""
    _state["blocks"] += 1
    try:
        yield check
    finally:
        _state["blocks"] -= 1
        if not _state["blocks"]:
            _state["requested"] = False


def defer() -> bool:
    """Record a Ctrl-C for the next ``check``; False (nothing recorded) outside ``at_steps``."""
    if not _state["blocks"]:
        return False
    _state["requested"] = True
    return True


def check() -> None:
    """Raise ``KeyboardInterrupt`` if a deferred Ctrl-C is waiting."""
    if _state["requested"]:
        _state["requested"] = False
        raise KeyboardInterrupt


def then_check(callback: Callable[..., None], check: Callable[[], None]) -> Callable[..., None]:
    """``callback`` followed by ``check`` (a progress callback that is also a stopping point)."""

    def called(*args) -> None:
        callback(*args)
        check()

    return called
