"""Command line: ``retinakit detect | align | anonymise | batch | evaluate | labels | train | export | quantize |
serve``.

A thin layer: each sub-command is a module here with ``add_parser(subparsers)`` and ``run(args)``;
``run`` turns the flags into config fields and calls one library function. Exit status: 0 success,
1 a runtime failure (an input or a file that could not be used), 2 a usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

from retinakit.cli import align, anonymise, batch, detect, evaluate, export, labels, quantize, serve, train
from retinakit.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE

#: Sub-command modules, in the order ``--help`` lists them.
COMMANDS: tuple[ModuleType, ...] = (detect, align, anonymise, batch, evaluate, labels, train, export, quantize, serve)


def build_parser() -> argparse.ArgumentParser:
    from retinakit import __version__

    parser = argparse.ArgumentParser(prog="retinakit", description="RetinaFace face detection.")
    parser.add_argument("--version", action="version", version=f"retinakit {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from retinakit.errors import RetinakitError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into a command that stopped reading (e.g. head)
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except (RetinakitError, FileNotFoundError, ImportError, OSError) as exc:
        print(f"retinakit {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (ValueError, KeyError) as exc:  # an option value the configuration rejects
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"retinakit {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
