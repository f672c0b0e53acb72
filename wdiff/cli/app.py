"""The Typer app, its global options, and ``command``: how every subcommand is declared.

The global options (``--device``, ``--seed``, ``--debug``, ``--quiet``) are accepted before the
subcommand (``global_options``) or after it: ``command`` adds them to the subcommand and passes
the merged ``GlobalOptions`` to its parameter typed ``GlobalOptions``. ``--device`` is spelled
right or refused at once, without torch; it is resolved (torch imported, the GPU looked for)
only for commands that compute (``needs_device``), before their work: ``info`` never does. A
parameter typed with an option group (a dataclass whose fields are ``Annotated`` Typer options,
e.g. ``options.RestoreOptions``) stands for those options, in field order, and receives them as
one object.

Options renamed for one vocabulary across commands (``Renamed``: ``--method`` became ``--flow``,
``--noise`` or ``--sampler``, finetune's ``--steps`` ``--train-steps``) stay as hidden options
whose use is refused in one line naming the new spelling. Flags show no ``<bool>`` type in
``--help`` (they take no value).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from wdiff import __version__
from wdiff.errors import WdiffError

if TYPE_CHECKING:
    import torch


def _no_flag_types(params: list) -> list:
    """Flags take no value: show none (Typer would show ``<bool>``, yet ``--json true`` is
    refused)."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class _Command(TyperCommand):
    def get_params(self, ctx: typer.Context) -> list:
        return _no_flag_types(super().get_params(ctx))


class _Group(TyperGroup):
    def get_params(self, ctx: typer.Context) -> list:
        return _no_flag_types(super().get_params(ctx))


app = typer.Typer(
    name="wdiff",
    cls=_Group,
    help=(
        "Temporally consistent video restoration with image diffusion models "
        "(Warped Diffusion, Daras et al. 2024).\n\n"
        "Examples:\n\n"
        "  wdiff upscale in.mp4 --scale 8 --guidance 1.0\n\n"
        '  wdiff inpaint in.mp4 --mask mask.mp4 --prompt "a robot sitting on a bench"\n\n'
        "  wdiff info builtin:bunny"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

# the arguments ``main`` is running, after "wdiff" (reports record them; None outside ``main``)
COMMAND_LINE: ContextVar[list[str] | None] = ContextVar("command_line", default=None)

GLOBAL = "Global options"
QUIET_HELP = "Nothing on stderr but errors (output paths still go to stdout)."


@dataclass
class GlobalOptions:
    """Options every subcommand honours; given before or after the subcommand's name."""

    device: str = "auto"
    seed: int = 0
    debug: bool = False
    quiet: bool = False

    def merged(
        self,
        device: str | None = None,
        seed: int | None = None,
        debug: bool = False,
        quiet: bool = False,
    ) -> GlobalOptions:
        """These options overridden by a subcommand's copies (None and False: not given)."""
        return GlobalOptions(
            device=device if device is not None else self.device,
            seed=seed if seed is not None else self.seed,
            debug=self.debug or debug,
            quiet=self.quiet or quiet,
        )

    def check_device(self) -> None:
        """Refuse a malformed ``--device`` without importing torch."""
        from wdiff.devices import check_device

        check_device(self.device)

    def torch_device(self) -> torch.device:
        """The ``--device`` as a torch device that exists here (imports torch)."""
        from wdiff.devices import resolve_device

        return resolve_device(self.device)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"wdiff {__version__}")
        raise typer.Exit()


@app.callback()
def global_options(
    ctx: typer.Context,
    device: Annotated[
        str, typer.Option("--device", help="cpu, cuda, cuda:N, or auto (CUDA when present).")
    ] = "auto",
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    ctx.obj = GlobalOptions(device=device, seed=seed, debug=debug, quiet=quiet)
    ctx.obj.check_device()


def _keyword(
    name: str, annotation: Any, default: Any = inspect.Parameter.empty
) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


# The subcommands' copies of the global options; None and False take the value given before.
SUBCOMMAND_GLOBALS = {
    "device": _keyword(
        "device",
        Annotated[
            str | None,
            typer.Option(
                "--device",
                help="cpu, cuda, cuda:N, or auto (CUDA when torch sees one).",
                rich_help_panel=GLOBAL,
                show_default=False,
            ),
        ],
        None,
    ),
    "seed": _keyword(
        "seed",
        Annotated[
            int | None,
            typer.Option(
                "--seed",
                help="Random seed: same seed, input and device, same output.",
                rich_help_panel=GLOBAL,
                show_default=False,
            ),
        ],
        None,
    ),
    "debug": _keyword(
        "debug",
        Annotated[
            bool, typer.Option("--debug", help="Show tracebacks on errors.", rich_help_panel=GLOBAL)
        ],
        False,
    ),
    "quiet": _keyword(
        "quiet",
        Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP, rich_help_panel=GLOBAL)],
        False,
    ),
}


@dataclass(frozen=True)
class Renamed:
    """An option's old spelling in one command: refused in one line naming ``new`` (and what
    it takes, ``takes``)."""

    old: str
    new: str
    takes: str

    def refusal(self, command: str) -> str:
        return f"{self.old} is now {self.new} in 'wdiff {command}' ({self.takes})"

    def parameter(self, index: int, command: str) -> inspect.Parameter:
        """A hidden option of this spelling (taking a value, as the old one did) whose use
        raises the refusal before the command runs."""

        def refuse(value: str | None) -> None:
            if value is not None:
                raise WdiffError(self.refusal(command))

        option = typer.Option(self.old, hidden=True, callback=refuse)
        return _keyword(f"renamed_{index}", Annotated[str | None, option], None)


# (command, old spelling) -> its Renamed: the refusal of an old spelling given without a value
RENAMED: dict[tuple[str, str], Renamed] = {}


def command(
    name: str | None = None,
    *,
    help: str,
    takes: tuple[str, ...] = tuple(SUBCOMMAND_GLOBALS),
    needs_device: bool = True,
    renamed: tuple[Renamed, ...] = (),
) -> Callable[[Callable], Callable]:
    """Register a subcommand of ``app``. Its own parameters come first, option groups expanded;
    then the global options named in ``takes`` (``degrade`` takes only --debug and --quiet),
    then the hidden old spellings in ``renamed``. The body gets its ``typer.Context`` and
    ``GlobalOptions`` parameters if it declares them. ``needs_device``: the command computes
    with torch, so ``--device`` is resolved before its body runs (a missing GPU fails before
    any work); without it torch is never imported here."""

    def register(body: Callable) -> Callable:
        hints = typing.get_type_hints(body, include_extras=True)
        parameters: list[inspect.Parameter] = []
        groups: dict[str, type] = {}
        passed: dict[Any, str] = {}  # typer.Context / GlobalOptions -> the body's parameter name
        for parameter in inspect.signature(body).parameters.values():
            kind = hints[parameter.name]
            if kind in (typer.Context, GlobalOptions):
                passed[kind] = parameter.name
            elif dataclasses.is_dataclass(kind):
                groups[parameter.name] = kind
                parameters += _group_parameters(kind)
            else:
                parameters.append(_keyword(parameter.name, kind, parameter.default))
        parameters = [_keyword("ctx", typer.Context), *parameters]
        parameters += [SUBCOMMAND_GLOBALS[option] for option in takes]
        shown = name or body.__name__.replace("_", "-")
        parameters += [old.parameter(index, shown) for index, old in enumerate(renamed)]
        RENAMED.update({(shown, old.old): old for old in renamed})

        def run(ctx: typer.Context, **values: Any) -> Any:
            given = {option: values.pop(option) for option in takes}
            for index in range(len(renamed)):
                values.pop(f"renamed_{index}", None)  # never given: its callback refuses it
            options = (ctx.obj or GlobalOptions()).merged(**given)
            options.check_device()
            if needs_device:
                options.torch_device()  # a missing GPU fails before any work
            for parameter, group in groups.items():
                values[parameter] = group(
                    **{field.name: values.pop(field.name) for field in dataclasses.fields(group)}
                )
            special = {typer.Context: ctx, GlobalOptions: options}
            values |= {name: special[kind] for kind, name in passed.items()}
            return body(**values)

        functools.update_wrapper(run, body, updated=())
        del run.__wrapped__  # Typer reads the signature below, not the body's
        run.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in parameters}
        app.command(name, help=help, cls=_Command)(run)
        return body

    return register


def _group_parameters(group: type) -> list[inspect.Parameter]:
    """An option group's fields as keyword parameters (their Annotated types and defaults)."""
    hints = typing.get_type_hints(group, include_extras=True)
    return [
        _keyword(field.name, hints[field.name], field.default)
        for field in dataclasses.fields(group)
    ]
