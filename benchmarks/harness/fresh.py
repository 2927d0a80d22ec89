"""Run one function in a fresh Python process and get back its JSON result.

``run_fresh("benchmarks.speed.latency:measure", {...})`` starts ``python -m benchmarks.harness.fresh``
in the repository root, which imports the module, calls the function with the keyword arguments and
prints its (JSON-able) result on a marked last line. ``src`` puts another source tree's retinakit
first on the child's ``PYTHONPATH`` (A/B of two checkouts); ``address_space`` caps the child's
``RLIMIT_AS`` in bytes. In a fresh process no other path's sessions or thread pools exist, and
peak memory (``VmHWM``) is the child's own.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.harness.data import REPO

MARK = "@@benchmark-result "


class ChildFailed(RuntimeError):
    """A fresh process exited with an error; the message is its last stderr line."""


def run_fresh(
    target: str,
    kwargs: dict[str, Any] | None = None,
    *,
    src: str | None = None,
    address_space: int = 0,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> Any:
    """The result of ``module:function(**kwargs)`` computed in a fresh process (raises :class:`ChildFailed`)."""
    child_env = {**os.environ, **(env or {})}
    path = [str(Path(src).resolve())] if src else []
    child_env["PYTHONPATH"] = os.pathsep.join([*path, str(REPO), child_env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    cmd = [sys.executable, "-m", "benchmarks.harness.fresh", target, json.dumps(kwargs or {}), str(address_space)]
    proc = subprocess.run(cmd, cwd=REPO, env=child_env, capture_output=True, text=True, check=False, timeout=timeout)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or [f"no result (exit {proc.returncode})"])[-1]
        raise ChildFailed(f"{target}: exit {proc.returncode}: {tail[:200]}")
    return json.loads(lines[-1][len(MARK) :])


def peak_rss_mb() -> float:
    """This process's peak resident memory (``VmHWM``, not inherited from the parent), MiB."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024


def rss_mb() -> float:
    """This process's resident memory now, MiB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _main(argv: list[str]) -> None:
    target, kwargs, limit = argv[0], json.loads(argv[1]), int(argv[2]) if len(argv) > 2 else 0
    if limit:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    module, _, name = target.partition(":")
    result = getattr(importlib.import_module(module), name)(**kwargs)
    print(MARK + json.dumps(result), flush=True)


if __name__ == "__main__":
    _main(sys.argv[1:])
