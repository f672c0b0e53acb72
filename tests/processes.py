"""Start ``wdiff`` in a child process that a test can interrupt like a user would."""

import signal
import subprocess
import sys


def _default_sigint() -> None:
    # A shell without job control starts background jobs with SIGINT ignored, and children
    # inherit that: Python then installs no KeyboardInterrupt handler and Ctrl-C does nothing.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_wdiff(args: list[str], **popen_options) -> subprocess.Popen:
    """``python -m wdiff ARGS`` with SIGINT at its default, whatever this process inherited."""
    return subprocess.Popen(
        [sys.executable, "-m", "wdiff", *args], preexec_fn=_default_sigint, **popen_options
    )
