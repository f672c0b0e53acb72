"""The one exception type for problems the user can fix (bad input, bad options)."""


class WdiffError(Exception):
    """A user error: the CLI prints its message as one line on stderr and exits with code 2.

    The message names the file or option at fault and says how to fix it.
    """


class Interrupted(Exception):
    """Ctrl-C during long work: the CLI prints ``wdiff: interrupted; <message>`` and exits 130.

    The message says what was kept (the resume state) and how to continue.
    """
