"""Every command's --help: exit 0, an example, and defaults that rich markup has not eaten."""

import pytest

from wdiff.cli import app, main

COMMANDS = sorted(command.name or command.callback.__name__ for command in app.registered_commands)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_an_example_and_exits_0(command, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    assert "Example" in text and f"wdiff {command}" in text


@pytest.mark.parametrize(
    "command, shown",
    [
        ("upscale", "beside the input: INPUT.xSCALE-SAMPLER-NOISE.mp4"),
        ("inpaint", "beside the input: INPUT.inpainted-SAMPLER-NOISE.mp4"),
        ("flow", "INPUT.flows.safetensors"),
        ("warp-noise", "INPUT.noise-NOISE.safetensors"),
    ],
)
def test_output_defaults_are_shown(command, shown, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    main([command, "--help"])
    assert shown in capsys.readouterr().out
