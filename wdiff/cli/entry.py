"""``main``, the ``wdiff`` script: runs the app and maps what it raises to an exit code and one
line on stderr, always ``wdiff: error: ...`` (a usage error names the command's ``--help``;
tracebacks only with ``--debug``)."""

from __future__ import annotations

import sys
import traceback

import typer

from wdiff.cli.app import app
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


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``wdiff`` script; returns (and exits with) the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        result = app(args=args, prog_name="wdiff", standalone_mode=False)
        code = result if isinstance(result, int) else 0
        if code == 130:  # Ctrl-C outside the long work: typer turns it into Exit(130), returned
            _say("wdiff: interrupted; no output was written")
    except click_exceptions.NoArgsIsHelpError as error:
        typer.echo(error.ctx.get_help() if error.ctx else "", err=True)
        code = 2
    except click_exceptions.UsageError as error:
        where = error.ctx.command_path if error.ctx else "wdiff"
        _say(f"wdiff: error: {error.format_message()} (see '{where} --help')")
        code = 2
    except (typer.Abort, KeyboardInterrupt):
        _say("wdiff: interrupted; no output was written")
        code = 130
    except Interrupted as interrupted:
        _say(f"wdiff: interrupted; {interrupted}")
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
    if argv is None:
        sys.exit(code)
    return code
