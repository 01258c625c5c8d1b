"""The ``cvtools`` command line: a thin click layer over the Python API.

Each subcommand lives in its own module here and is imported only when needed; command
modules import torch inside their functions, so ``cvtools --help`` stays instant.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

import click

from cvtools import __version__

# command name -> "module:attribute"; order is the order shown in --help
COMMANDS = {
    "stylize": "cvtools.cli.stylize:stylize",
    "train-style": "cvtools.cli.train_style:train_style",
    "styles": "cvtools.cli.stylize:styles",
    "dream": "cvtools.cli.dream:dream",
    "visualize": "cvtools.cli.visualize:visualize",
    "classify": "cvtools.cli.classify:classify",
    "backbones": "cvtools.cli.info:backbones",
    "layers": "cvtools.cli.info:layers",
    "bench": "cvtools.cli.bench:bench",
    "export": "cvtools.cli.export:export",
    "ui": "cvtools.cli.ui:ui",
}


class LazyGroup(click.Group):
    """Imports a subcommand's module only when that command (or its help) is asked for."""

    def list_commands(self, ctx):
        return [name for name in COMMANDS if self._available(name)]

    @staticmethod
    def _available(name):
        module = COMMANDS[name].split(":")[0]
        return importlib.util.find_spec(module) is not None

    def resolve_command(self, ctx, args):
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in COMMANDS:
            from cvtools.errors import did_you_mean

            hint = did_you_mean(name, self.list_commands(ctx)) or "; `cvtools --help` lists the commands"
            ctx.fail(f"no command {name!r}{hint}")
        return super().resolve_command(ctx, args)

    def get_command(self, ctx, name):
        target = COMMANDS.get(name)
        if target is None or not self._available(name):
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)

    def invoke(self, ctx):
        """Turn user-facing errors into one line on stderr and a non-zero exit (no traceback).

        CvtoolsError, OSError, MemoryError: ``cvtools: error: <one line>``, exit 1. Ctrl-C:
        exit 130. A closed output pipe (``cvtools classify ... | head``): quiet exit 141, as a
        Unix tool killed by SIGPIPE. Anything else is a bug: one line asking for a report, exit 1
        (``CVTOOLS_DEBUG=1`` shows the traceback).
        """
        import os
        import sys

        from cvtools.errors import CvtoolsError, one_line, safe_path

        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except CvtoolsError as exc:
            from cvtools.cli.errors import cli_message

            raise CliError(one_line(cli_message(exc, ctx))) from None
        except KeyboardInterrupt:
            click.echo("cvtools: interrupted", err=True)
            raise click.exceptions.Exit(130) from None
        except BrokenPipeError:
            try:  # stop Python from complaining again while it flushes stdout at exit
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            except (OSError, ValueError, AttributeError):
                pass
            raise click.exceptions.Exit(141) from None
        except MemoryError:
            raise CliError("out of memory; try a smaller --size or --tile") from None
        except OSError as exc:
            name = f"{safe_path(exc.filename)}: " if getattr(exc, "filename", None) else ""
            raise CliError(one_line(f"{name}{exc.strerror or exc}")) from None
        except Exception as exc:
            if os.environ.get("CVTOOLS_DEBUG"):
                raise
            text = one_line(str(exc), 300) or "(no message)"
            if "out of memory" in text.lower():
                raise CliError(f"out of memory ({text}); try a smaller --size or --tile") from None
            raise CliError(f"internal error: {type(exc).__name__}: {text} "
                           "(run with CVTOOLS_DEBUG=1 for the traceback, and please report it)") from None


class CliError(click.ClickException):
    """Shown as ``cvtools: error: <message>``."""

    def show(self, file=None):
        click.echo(f"cvtools: error: {self.format_message()}", err=True)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="cvtools")
def cli():
    """Image effects and CNN visualization on PyTorch.

    \b
    Examples:
      cvtools stylize photo.jpg --style mona          fast neural style transfer
      cvtools dream photo.jpg                          DeepDream
      cvtools visualize gradcam photo.jpg              where the network looks
      cvtools classify samples/                        ImageNet top-5 for a folder

    Every model command runs on the embedded EfficientNet-Lite0 by default (no download),
    on the GPU when there is one. `cvtools COMMAND --help` explains each command.
    """


def main(argv=None):
    """Run the command line ``argv`` (default ``sys.argv[1:]``); ends in ``SystemExit`` as click does."""
    cli.main(args=argv, prog_name="cvtools")


def console_main():
    """The ``cvtools`` executable and ``python -m cvtools``: :func:`main`, then the process ends
    without the interpreter's teardown (see :func:`_exit_now`). Python callers use :func:`main`."""
    try:
        main()
    except SystemExit as exc:
        if isinstance(exc.code, (int, type(None))) and "torch" in sys.modules \
                and not os.environ.get("CVTOOLS_SLOW_EXIT"):
            _exit_now(exc.code or 0)
        raise


def _exit_now(code: int) -> None:
    """End the process without the interpreter's teardown once the command is done.

    With torch loaded, the teardown after a finished command (freeing every module, torch's
    static destructors and thread pools, the CUDA context) took 0.7-1.0 s of a 5-10 s command
    on an H100 machine and 0.5-0.7 s on its CPU (measured 2026-11-25, ``cvtools bench --cold``,
    the "exit" phase). Every output is written, closed and renamed by then: the batch waits for
    its saves, and writes still under way on other threads (none should be) are waited for or
    their temporary files removed (:func:`cvtools.io.atomic.settle_writes`). The exit handlers
    still run and the standard streams are flushed, so nothing the user sees changes.
    """
    import atexit

    atomic = sys.modules.get("cvtools.io.atomic")
    if atomic is not None:  # worker threads are not waited for here: no save may be cut short
        atomic.settle_writes()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a closed pipe: nothing left to say
            pass
    os._exit(code)
