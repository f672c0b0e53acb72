"""``main``, the ``wdiff`` script: runs the app and maps what it raises to an exit code and one
line on stderr, always ``wdiff: error: ...`` (a usage error names the command's ``--help``;
tracebacks only with ``--debug``).

Ctrl-C: the first stops the sampling after its current diffusion step (``interrupts``; other
work at once), and the run unwinds cleanly (temporaries removed, the resume state of the
frames finished kept) to one ``wdiff: interrupted; ...`` line and exit 130. A second one,
before that step ends, during the cleanup or the interpreter's shutdown, exits 130 at once:
one line if none was said yet, never a traceback.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import traceback

import typer

from wdiff.cli.app import COMMAND_LINE, RENAMED, app
from wdiff.errors import Interrupted, WdiffError

try:  # Typer >= 0.2x carries its own copy of click; older ones use click itself.
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover
    from click import exceptions as click_exceptions


def _one_line(error: Exception) -> str:
    """A user error's message on one line, whatever a library it quotes put in it."""
    return " ".join(str(error).split())


def _say(line: str) -> None:
    """One line on stderr, as given (no markup, no wrapping)."""
    typer.echo(line, err=True)


# the interrupted run's line: being printed, printed; a second Ctrl-C came while printing it
_interrupt = {"saying": False, "said": False, "again": False}


def _first_interrupt(signum, frame) -> None:
    from wdiff import interrupts

    signal.signal(signal.SIGINT, _second_interrupt)
    if not interrupts.defer():  # else the sampling stops after its current step
        raise KeyboardInterrupt


def _second_interrupt(signum, frame) -> None:
    """Exit 130 now, without unwinding: what was finished is on disk already (every write is
    atomic), temporaries are removed by the next run, its lock taken over."""
    if _interrupt["saying"] and not _interrupt["said"]:
        _interrupt["again"] = True  # the line is being printed: exit right after it
        return
    if not _interrupt["said"]:
        os.write(2, b"wdiff: interrupted again; stopped at once (finished frames are kept)\n")
    _exit_now()


def _exit_now() -> None:
    with contextlib.suppress(Exception):  # interrupted inside a write to stdout, say
        sys.stdout.flush()
    os._exit(130)


def _say_interrupted(line: str) -> None:
    """The interrupted run's one line; a Ctrl-C while it is printed exits once it is out.
    (Python runs signal handlers in the main thread between two bytecodes, so flags do.)"""
    _interrupt["saying"] = True
    _say(line)
    _interrupt["said"] = True
    if _interrupt["again"]:
        _exit_now()


def _handle_interrupts() -> bool:
    """Take over Ctrl-C in the script's main thread (not when SIGINT is ignored, as in a
    background job); whether it was."""
    if threading.current_thread() is not threading.main_thread():
        return False
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return False
    signal.signal(signal.SIGINT, _first_interrupt)
    return True


def _no_hidden_suggestions(error: Exception) -> None:
    """A mistyped option is not told to try a hidden one (an old spelling, refused)."""
    possible = getattr(error, "possibilities", None)
    context = getattr(error, "ctx", None)
    if not possible or context is None:
        return
    hidden = {
        name
        for param in context.command.get_params(context)
        if getattr(param, "hidden", False)
        for name in (*param.opts, *param.secondary_opts)
    }
    error.possibilities = [name for name in possible if name not in hidden]


def _renamed(error: Exception, args: list[str]) -> str | None:
    """An old spelling given without a value ("--method requires an argument"): its refusal."""
    option = getattr(error, "option_name", None)
    names = {c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands}
    command = next((arg for arg in args if arg in names), None)  # the first is the subcommand
    old = RENAMED.get((command, option))
    return old.refusal(command) if old else None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``wdiff`` script; returns (and exits with) the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    handled = argv is None and _handle_interrupts()
    command_line = COMMAND_LINE.set(["wdiff", *args])
    try:
        result = app(args=args, prog_name="wdiff", standalone_mode=False)
        code = result if isinstance(result, int) else 0
        if code == 130:  # Ctrl-C outside the long work: typer turns it into Exit(130), returned
            _say_interrupted("wdiff: interrupted; no output was written")
    except click_exceptions.NoArgsIsHelpError as error:
        typer.echo(error.ctx.get_help() if error.ctx else "", err=True)
        code = 2
    except click_exceptions.UsageError as error:
        where = error.ctx.command_path if error.ctx else "wdiff"
        _no_hidden_suggestions(error)
        renamed = _renamed(error, args)
        if renamed:
            _say(f"wdiff: error: {renamed}")
        else:
            _say(f"wdiff: error: {error.format_message()} (see '{where} --help')")
        code = 2
    except (typer.Abort, KeyboardInterrupt):
        _say_interrupted("wdiff: interrupted; no output was written")
        code = 130
    except Interrupted as interrupted:
        _say_interrupted(f"wdiff: interrupted; {interrupted}")
        code = 130
    except WdiffError as error:
        if debug:
            traceback.print_exc()
        _say(f"wdiff: error: {_one_line(error)}")
        code = 2
    except typer.Exit as done:
        code = done.exit_code
    except Exception as error:  # internal error: one line, traceback with --debug
        if debug:
            traceback.print_exc()
        _say(
            f"wdiff: error: internal error: {type(error).__name__}: {error} "
            "(rerun with --debug for the traceback and report it)"
        )
        code = 1
    COMMAND_LINE.reset(command_line)
    if handled:  # from here on (the interpreter's shutdown) Ctrl-C ends it at once
        signal.signal(signal.SIGINT, _second_interrupt)
        _interrupt["said"] = _interrupt["said"] or code != 130
    if argv is None:
        sys.exit(code)
    return code
