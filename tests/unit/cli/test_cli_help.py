"""Every command and option of the `orbyt` command line says what it does."""

from __future__ import annotations

import click

from orbyt.cli.main import cli


def walk(command: click.Command, path: str) -> list[tuple[str, click.Command]]:
    out = [(path, command)]
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            out += walk(sub, f"{path} {name}")
    return out


def test_every_command_and_option_has_help() -> None:
    missing = []
    for path, command in walk(cli, "orbyt"):
        if not (command.help or "").strip():
            missing.append(path)
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden and not param.help:
                missing.append(f"{path} {param.opts[0]}")
    assert missing == []


def test_the_commands_the_readme_and_tests_use_exist() -> None:
    paths = {path for path, _ in walk(cli, "orbyt")}
    assert {
        "orbyt dev",
        "orbyt api",
        "orbyt worker",
        "orbyt keys create",
        "orbyt keys list",
        "orbyt keys revoke",
        "orbyt usage",
        "orbyt batch run",
        "orbyt batch list",
        "orbyt batch show",
        "orbyt batch cancel",
    } <= paths
