"""The one exception type for problems the user can fix (bad input, bad options)."""


class WdiffError(Exception):
    """A user error: the CLI prints its message as one line on stderr and exits with code 2.

    The message names the file or option at fault and says how to fix it.
    """


class DiskFull(WdiffError):
    """A write refused by a full disk, a quota or a read-only file system; the message names the
    file. A restore's ``advice`` adds what its resume state keeps (``--resume`` continues)."""

    def __init__(
        self, path, reason: str, advice: str = "free some space there or choose another -o"
    ):
        self.path, self.reason = path, reason
        super().__init__(f"{path}: could not be written ({reason}); {advice}")


class Interrupted(Exception):
    """Ctrl-C during long work: the CLI prints ``wdiff: interrupted; <message>`` and exits 130.

    The message says what was kept (the resume state) and how to continue.
    """
