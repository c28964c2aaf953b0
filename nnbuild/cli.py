"""The ``nnbuild`` command: a thin dispatcher over the modules in ``nnbuild.commands``.

Each module in ``nnbuild/commands/`` defines ``register(subparsers)``, which adds its
sub-command(s) and sets ``func`` on the parser to a callable ``func(args) -> int``. Modules are
discovered, so adding a command touches no shared file. User errors (``NNBuildError``) print one
line to stderr and exit with the error's status, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from nnbuild import __version__, commands
from nnbuild.errors import NNBuildError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nnbuild", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"nnbuild {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{commands.__name__}.{info.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except NNBuildError as err:
        print(f"nnbuild: error: {err}", file=sys.stderr)
        return err.exit_code
    except OSError as err:  # read-only or full cache/, a file where a folder goes: one line
        from nnbuild.build.writable import WRITE_ERRNOS, from_os_error

        if err.errno not in WRITE_ERRNOS:
            raise
        print(f"nnbuild: error: {from_os_error(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nnbuild: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `nnbuild zoo | head`: the reader left, nothing to report
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - flushed at exit, never read
        return 0


if __name__ == "__main__":
    sys.exit(main())
