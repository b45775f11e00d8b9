"""Running the real ``modelshelf`` command in-process, written once for every CLI test.

Each CLI test file used to define its own ``CliRunner().invoke(cli, ["--home", …])``
wrapper, some letting exceptions escape and some catching them; the two
kinds stay distinct here because a test that lets an unexpected exception
escape fails louder than one that only checks the exit code.

Example::

    result = run_cli(home, "list", "--json")
    assert result.exit_code == 0, result.output
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from click.testing import CliRunner, Result

from registry.cli import cli


def run_cli(
    home: Path | str | None,
    *args: str,
    input: str | None = None,
    env: Mapping[str, str | None] | None = None,
    catch_exceptions: bool = True,
) -> Result:
    """``modelshelf --home HOME ARGS…`` (no ``--home`` when ``home`` is None); exceptions kept in the result."""
    home_args = [] if home is None else ["--home", str(home)]
    return CliRunner(env=env).invoke(cli, [*home_args, *args], input=input, catch_exceptions=catch_exceptions)


def run_cli_strict(home: Path | str | None, *args: str, input: str | None = None) -> Result:
    """:func:`run_cli`, but an exception the CLI did not turn into an exit code propagates and fails the test."""
    return run_cli(home, *args, input=input, catch_exceptions=False)


def register_cli(home: Path | str, *args: str) -> Result:
    """``modelshelf --home HOME register ARGS…``: the attack and check tests register through the CLI."""
    return run_cli(home, "register", *args)
