"""Command line: ``retinakit detect | align | anonymize | batch | evaluate | labels | train | export | quantize |
serve``.

A thin layer: each sub-command is a module here with ``add_parser(subparsers)`` and ``run(args)``;
``run`` turns the flags into config fields and calls one library function. Exit status: 0 success,
1 a runtime failure (an input or a file that could not be used), 2 a usage error.

One name per concept across the sub-commands (``-o/--output``, ``--max-side``, ``--model``,
``--threshold``, ``--batch-size``, ``--workers``, ``--threads`` ...); the spellings of earlier
releases are accepted as hidden aliases (see :func:`retinakit.cli.common.alias`).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from types import ModuleType

from retinakit.cli import align, anonymize, batch, detect, evaluate, export, labels, quantize, serve, train
from retinakit.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE

#: Sub-command modules, in the order ``--help`` lists them.
COMMANDS: tuple[ModuleType, ...] = (detect, align, anonymize, batch, evaluate, labels, train, export, quantize, serve)

#: Optional dependency (top-level module) -> (what it is, the extra that installs it).
EXTRAS: dict[str, tuple[str, str]] = {
    "torch": ("PyTorch", "torch"),
    "safetensors": ("safetensors", "torch"),
    "onnx": ("the onnx package", "torch"),
    "openvino": ("OpenVINO", "openvino"),
    "pyarrow": ("pyarrow", "batch"),
    "ray": ("Ray", "ray"),
    "fastapi": ("FastAPI", "serve"),
    "uvicorn": ("uvicorn", "serve"),
    "multipart": ("python-multipart", "serve"),
    "python_multipart": ("python-multipart", "serve"),
    "scipy": ("scipy", "eval"),
    "matplotlib": ("matplotlib", "eval"),
    "pillow_heif": ("pillow-heif", "heif"),
    "PIL": ("Pillow", "heif"),
    "supervision": ("supervision", "supervision"),
}


def build_parser() -> argparse.ArgumentParser:
    from retinakit import __version__

    parser = argparse.ArgumentParser(prog="retinakit", description="RetinaFace face detection.")
    parser.add_argument("--version", action="version", version=f"retinakit {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,  # not in the sub-commands' namespace
        help="with --version: the built-in model's provenance and licence",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def version_text(verbose: bool) -> str:
    """``retinakit --version [--verbose]``: the version, and with ``verbose`` the built-in model's provenance."""
    from retinakit import __version__

    if not verbose:
        return f"retinakit {__version__}"
    import onnxruntime

    from retinakit.config import BUILTIN_MODEL_INFO

    lines = [f"retinakit {__version__} (Python {sys.version.split()[0]}, ONNX Runtime {onnxruntime.__version__})"]
    lines += ["", "built-in model:", *("  " + line for line in BUILTIN_MODEL_INFO.describe().splitlines())]
    return "\n".join(lines)


def missing_extra(command: str, exc: ImportError) -> str | None:
    """``retinakit train needs PyTorch: pip install 'retinakit[torch]'`` when ``exc`` (or what caused it)
    is a known optional module that is not installed."""
    error: BaseException | None = exc
    while error is not None:
        if isinstance(error, ModuleNotFoundError) and (error.name or "").split(".")[0] in EXTRAS:
            what, extra = EXTRAS[(error.name or "").split(".")[0]]
            return f"retinakit {command} needs {what}: pip install 'retinakit[{extra}]'"
        error = error.__cause__ or error.__context__
    return None


def flag_message(sub: argparse.ArgumentParser, message: str, argv: Sequence[str]) -> str:
    """A config field's error in the words of the command line: ``score_threshold must be ...`` ->
    ``--threshold: must be ...`` (the spelling the user typed, when it was an alias)."""
    flags: dict[str, str] = {}
    for action in sub._actions:
        names = [o for o in action.option_strings if o.startswith("--")]
        if not names:
            continue
        typed = [o for o in names if any(a == o or a.startswith(o + "=") for a in argv)]
        visible = names[0] if action.help != argparse.SUPPRESS else None
        flags.setdefault(action.dest, typed[0] if typed else visible or names[0])
        if typed:
            flags[action.dest] = typed[0]
    message = re.sub(r"\s*\(\w+Config\(.*\)\)$", "", message)

    def swap(match: re.Match[str]) -> str:  # a field name: always when it has "_", else before a comparison
        word, after = match.group(0), message[match.end() : match.end() + 5]
        plain = re.match(r" (?:must|needs?|and|>|<|=)|,", after) is not None
        return flags[word] if word in flags and ("_" in word or plain) else word

    lead = re.match(r"(\w+) (must|needs?) ", message)
    if lead and lead.group(1) in flags:
        rest = re.sub(r"\b[a-z]+(?:_[a-z0-9]+)+\b", swap, message[lead.end(1) + 1 :])
        return f"{flags[lead.group(1)]}: {rest}"
    return re.sub(r"\b[a-z]+(?:_[a-z0-9]+)*\b", swap, message)


def main(argv: Sequence[str] | None = None) -> int:
    from retinakit.errors import RetinakitError

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    version = "--version" in argv and not any(a in _command_names(parser) for a in argv)
    args = None if version else parser.parse_args(argv)
    command = "" if args is None else args.command
    try:
        if args is None:
            print(version_text("--verbose" in argv or "-v" in argv))
            return EXIT_OK
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into a command that stopped reading (e.g. head)
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except ImportError as exc:  # an optional dependency that is not installed: name the extra
        print(missing_extra(command, exc) or f"retinakit {command}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (RetinakitError, FileNotFoundError, OSError) as exc:
        print(f"retinakit {command}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (ValueError, KeyError) as exc:  # an option value the configuration rejects: name the flag
        message = str(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc)
        sub = _command_names(parser)[command]
        sub.print_usage(sys.stderr)
        print(f"{sub.prog}: error: {flag_message(sub, message, argv)}", file=sys.stderr)
        return EXIT_USAGE


def _command_names(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Sub-command name -> its parser."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


if __name__ == "__main__":
    sys.exit(main())
