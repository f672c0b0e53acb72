"""The ``wdiff`` command line: ``app`` (Typer) and ``main`` (the script's entry point).

Exit codes: 0 success, 1 internal error, 2 user error (bad input or options, or a subcommand
that is not built yet), 130 interrupted. User errors print one line on stderr; ``--debug`` adds
the traceback.

One module per command: it parses its options, calls one library function and prints: the
paths it wrote on stdout (or one JSON object), all else on stderr. ``app`` declares the app and
the global options, ``options`` the option declarations commands share, ``printing`` what goes
where, ``entry`` the exit codes. Commands import the library inside their bodies and the device
is resolved only for commands that compute, so ``wdiff --help`` and ``wdiff info`` do not
import torch.
"""

from importlib import import_module

from wdiff.cli.app import app
from wdiff.cli.entry import main

COMMANDS = ("info", "flow", "warp_noise", "restore", "degrade", "evaluate", "finetune")
for _module in COMMANDS:  # importing a command's module registers it; --help lists this order
    import_module(f"wdiff.cli.{_module}")

__all__ = ["app", "main"]
