"""The ``atoll`` command: root group, global options, and the one error-to-exit-code mapping.

Exit codes: 0 success, 1 failure (any :class:`~atoll.errors.AtollError`),
2 usage error (click's own), 3 an alert rule is firing (``monitor check``),
130 interrupted.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import click

from atoll.errors import AtollError
from atoll.settings import Settings


@dataclass
class CliState:
    """Global options, turned into Settings only when a command needs them."""

    project: Path | None

    def settings(self, spec: Path | None = None) -> Settings:
        """Settings of the project: ``-C``, else the directory of ``--spec``, else the cwd.

        The same rule as the Python API, so both register in the same place.
        """
        from atoll.api import project_settings

        if self.project is None and spec is not None:
            return project_settings(spec if spec.is_dir() else spec.parent)
        return project_settings(self.project)


pass_state = click.make_pass_decorator(CliState)
"""Hands a command the global options."""


class AtollFailure(click.ClickException):
    """An AtollError on its way out: printed without a traceback, exit code 1."""

    exit_code = 1

    def show(self, file: IO[Any] | None = None) -> None:
        click.secho(f"error: {self.message}", err=True, fg="red")


class AtollGroup(click.Group):
    """Maps every AtollError (and file-system error) below it to a clean message and exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AtollError as exc:
            raise AtollFailure(str(exc)) from exc
        except OSError as exc:  # a path that is a file, a directory, unwritable...
            where = f": {exc.filename}" if exc.filename else ""
            raise AtollFailure(f"{exc.strerror or exc}{where}") from exc


@click.group(cls=AtollGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--project",
    "-C",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Project directory holding atoll.yaml and .atoll/ (default: the current directory).",
)
@click.version_option(package_name="atoll")
@click.pass_context
def cli(ctx: click.Context, project: Path | None) -> None:
    r"""atoll: from raw rows to a registered, verifiable, served model.

    \b
    Start here:
      atoll demo                     everything on generated data
      atoll init --demo              a project with demo data to explore
      atoll schema infer data.csv    draft the columns of atoll.yaml
      atoll train                    train and register a version
    """
    ctx.obj = CliState(project)


def _register() -> None:
    from atoll.cli import compress, gc, models, monitor, project, schema, serve

    commands = (
        *project.COMMANDS,
        schema.schema,
        models.models,
        *compress.COMMANDS,
        *serve.COMMANDS,
        *gc.COMMANDS,
        *monitor.COMMANDS,
    )
    for command in commands:
        cli.add_command(command)


_register()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        cli.main(args=argv, prog_name="atoll")
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
