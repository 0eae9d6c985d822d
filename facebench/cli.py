"""The `facebench` command line: a lazy click group so `--help` imports no heavy module."""

from __future__ import annotations

import importlib
import sys

import click

from facebench import __version__
from facebench.errors import InputError

# name -> "module:attribute"; a command whose module is absent is simply not offered.
TOP_COMMANDS: dict[str, str] = {
    "run": "facebench.commands.run:run_command",
    "detectors": "facebench.commands.run:detectors_command",
    "merge": "facebench.commands.run:merge_command",
    "train": "facebench.commands.train:train_command",
    "anchors": "facebench.commands.anchors:anchors_command",
    "leaderboard": "facebench.commands.leaderboard:leaderboard_command",
    "plot": "facebench.commands.plot:plot_command",
    "check": "facebench.commands.check:check_command",
    "export": "facebench.commands.export:export_group",
    "compare": "facebench.commands.compare:compare_command",
    "analyze": "facebench.commands.analyze:analyze_command",
}

EVAL_COMMANDS: dict[str, str] = {
    "widerface": "facebench.commands.eval_widerface:widerface_command",
    "fddb": "facebench.commands.eval_fddb:fddb_command",
    "afw": "facebench.commands.eval_face_eval:afw_command",
    "pascal": "facebench.commands.eval_face_eval:pascal_command",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported only when used."""

    def __init__(self, *args, lazy: dict[str, str] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def _available(self) -> list[str]:
        names = []
        for name, target in self.lazy.items():
            module = target.split(":")[0]
            if importlib.util.find_spec(module) is not None:
                names.append(name)
        return names

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._available()))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is not None or name not in self.lazy:
            return command
        module_name, attr = self.lazy[name].split(":")
        if importlib.util.find_spec(module_name) is None:
            return None
        return getattr(importlib.import_module(module_name), attr)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError:
            import difflib

            name = args[0] if args else ""
            close = difflib.get_close_matches(name, self.list_commands(ctx), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise click.UsageError(f"No such command '{name}'.{hint}", ctx) from None


@click.group(cls=LazyGroup, lazy=TOP_COMMANDS)
@click.version_option(__version__, prog_name="facebench")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Face-detection benchmarks: evaluate, run detectors, compare, gate CI."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


@cli.group(name="eval", cls=LazyGroup, lazy=EVAL_COMMANDS)
def eval_group() -> None:
    """Evaluate predictions in a benchmark's official format."""


def _one_line_warnings() -> None:
    """Library warnings (numpy, matplotlib, ...) print as one 'warning:' line, without source lines."""
    import warnings

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = " ".join(str(message).split())
        click.echo(f"warning: {text} ({category.__name__})", err=True)

    warnings.showwarning = show


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one-line errors (exit 2) unless --debug."""
    args = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in args
    if not debug:
        _one_line_warnings()
    try:
        cli.main(args=args, prog_name="facebench", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except InputError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug, not bad input: still one line unless --debug
        if debug:
            raise
        if isinstance(exc, OSError) and exc.filename is not None:
            # an unwritable output, a folder where a file belongs: the user's paths, not a bug
            click.echo(f"error: {exc.filename}: {exc.strerror or exc}", err=True)
            sys.exit(2)
        if isinstance(exc, RuntimeError) and str(exc).startswith("Symlink loop from "):
            # pathlib's resolve() on a path the user gave that links to itself
            click.echo(f"error: {str(exc)[len('Symlink loop from '):].strip(chr(39))}: symlink loop", err=True)
            sys.exit(2)
        click.echo(f"error: {type(exc).__name__}: {exc} (re-run with --debug for the traceback)", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
