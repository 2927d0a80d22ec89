"""Faults on a real multi-node Ray cluster: ``retinakit batch --engine ray`` losing a node, and on one CPU.

    flock /tmp/cpu-heavy.lock python benchmarks/batch_ray_faults.py SOURCE WORK [--shard-size 23]
        [--kill-after 2] [--cpus 1] [--timeout 600] [--stall-timeout S] [--fast-health-check] [--json FILE]

Runs itself inside a fresh network + PID + mount namespace (``unshare -n -p -f --mount-proc``, loopback
only, private ``/tmp/ray`` and ``/dev/shm``; needs root), so every Ray process binds 127.0.0.1 and all
of them end with the script. Scenarios, each timed from outside the job:

1. ``reference``: the local engine over SOURCE, uninterrupted.
2. ``kill``: two ``ray start`` nodes of ``--cpus`` CPUs; the job joins with ``--address``; once
   ``--kill-after`` shards are recorded the worker node's raylet gets SIGKILL. Figures: seconds from
   the kill to the engine's "node(s) ... lost" warning (fault detected) and to the end of the job
   (finished, or stopped with an error), rows then; the same command once more on what is left;
   the table compared with the reference (equal, every input once).
3. ``kill_detector``: the same with a 0-CPU head and two worker nodes, killing the worker that runs
   the detector actor (so the actor and its chunks are lost, and the pool must be re-sized for 1 CPU).
4. ``one_cpu``: a fresh 1-CPU cluster (one node); the job from scratch, bounded by ``--timeout``.

``--src`` runs the nodes and the jobs on another source tree (an older checkout, for a before/after).
``--fast-health-check``: Ray declares a lost node dead after ~3 s instead of its default ~15-30 s.
Prints the figures as JSON (and writes them to ``--json``). Exit status 77: no namespace (not root).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from retinakit.apps.batch.shards import MANIFEST, read_manifest

INSIDE = "RETINAKIT_RAY_FAULTS_NETNS"
PORT = 6390
FAST_HEALTH_CHECK = {
    "RAY_health_check_initial_delay_ms": "1000",
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("source", type=Path, help="directory of images")
    p.add_argument("work", type=Path, help="empty directory for the outputs")
    p.add_argument("--shard-size", type=int, default=23)
    p.add_argument("--kill-after", type=int, default=2, help="shards recorded before the kill")
    p.add_argument("--cpus", type=int, default=1, help="CPUs of each node of the 2-node cluster")
    p.add_argument("--timeout", type=float, default=600, help="seconds each job may run before it is called hung")
    p.add_argument("--stall-timeout", type=float, help="passed to the job (a tree without the flag: leave unset)")
    p.add_argument("--fast-health-check", action="store_true")
    p.add_argument("--scenarios", default="kill,kill_detector,one_cpu")
    p.add_argument("--src", type=Path, default=Path(__file__).resolve().parents[1] / "src")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    if os.environ.get(INSIDE) != "1":
        return _enter_namespace()
    figures = _run(args)
    text = json.dumps(figures, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


def _enter_namespace() -> int:
    setup = "ip link set lo up && mkdir -p /tmp/ray && mount -t tmpfs tmpfs /tmp/ray && mount -t tmpfs tmpfs /dev/shm"
    command = ["unshare", "-n", "-p", "-f", "--mount-proc", "--", "sh", "-c", f'{setup} && exec "$@"', "sh"]
    probe = subprocess.run(["unshare", "-n", "-p", "-f", "--mount-proc", "true"], capture_output=True)
    if probe.returncode != 0:
        print(f"cannot create a namespace (root needed): {probe.stderr.decode().strip()}", file=sys.stderr)
        return 77
    env = {**os.environ, INSIDE: "1"}
    return subprocess.call([*command, sys.executable, *sys.argv], env=env)


def _run(args: argparse.Namespace) -> dict:
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "home").mkdir(exist_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(args.src),
        "HOME": str(args.work / "home"),
        "RAY_AUTH_MODE": "disabled",
        "RAY_USAGE_STATS_ENABLED": "0",
        **(FAST_HEALTH_CHECK if args.fast_health_check else {}),
    }
    figures: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "src": str(args.src)}
    start = time.monotonic()
    run = _job(args, env, args.work / "reference", ["--workers", "0"])
    figures["reference"] = {"rc": run["rc"], "seconds": run["seconds"], "rows": _rows(args.work / "reference")}
    for scenario in args.scenarios.split(","):
        figures[scenario] = {"kill": _kill, "kill_detector": _kill_detector, "one_cpu": _one_cpu}[scenario](args, env)
        figures[scenario]["equal_to_reference"] = _compare(args.work / scenario, args.work / "reference")
    figures["total_seconds"] = round(time.monotonic() - start, 1)
    return figures


def _kill(args: argparse.Namespace, env: dict) -> dict:
    """The reported layout: a head and a worker of ``--cpus`` CPUs each; the worker is killed."""
    return _lose_node(args, env, "kill", args.cpus, 1, PORT)


def _kill_detector(args: argparse.Namespace, env: dict) -> dict:
    """A 0-CPU head and two workers of ``--cpus`` CPUs; the worker that runs a detector actor is killed."""
    return _lose_node(args, env, "kill_detector", 0, 2, PORT + 2)


def _lose_node(args: argparse.Namespace, env: dict, name: str, head_cpus: int, count: int, port: int) -> dict:
    """SIGKILL of a worker's raylet after ``kill_after`` shards; one rerun on what is left."""
    _ray(env, "stop", "--force")
    _ray(env, "start", "--head", f"--port={port}", f"--num-cpus={head_cpus}")
    command = [*_ray_command(), "start", f"--address=127.0.0.1:{port}", f"--num-cpus={args.cpus}", "--block"]
    command += ["--node-ip-address=127.0.0.1", "--object-store-memory=100000000"]
    out = args.work / name
    logs = [args.work / f"{name}-node{i}.log" for i in range(count)]
    workers = []
    for i, log in enumerate(logs):
        # One node after the other: nodes starting together on one address can pick the same socket file
        # for their object store (the second raylet then aborts with "bind: Address already in use").
        # Ports of this scenario's own: processes a killed node leaves behind may still hold an earlier one's.
        ports = _node_ports(20000 + 1000 * (port - PORT) + 100 * i)
        workers.append(subprocess.Popen([*command, *ports], env=env, stdout=log.open("w"), stderr=subprocess.STDOUT))
        _wait_nodes(env, i + 2, port, workers, logs)
    flags = ["--engine", "ray", "--address", f"127.0.0.1:{port}"]
    job = _start_job(args, env, out, flags)
    killed_at = None
    rows_at_kill = raylet = 0
    placement: dict[int, int] = {}
    while job.proc.poll() is None and time.monotonic() - job.start < args.timeout:
        if killed_at is None and _shards(out) >= args.kill_after:
            rows_at_kill = _rows(out)
            placement = _actors_by_raylet()
            raylets = [_raylet_of(worker.pid) for worker in workers]
            raylet = next((r for r in raylets if placement.get(r)), raylets[0])
            os.kill(raylet, signal.SIGKILL)
            killed_at = time.monotonic()
        time.sleep(0.05)
    first = job.finish()
    figures = {
        "killed": killed_at is not None,
        "rows_at_kill": rows_at_kill,
        "detector_actors_on_killed_node": placement.get(raylet, 0),
        "detector_actors_elsewhere": sum(n for r, n in placement.items() if r != raylet),
        "first_run": first,
        "rows_after_first_run": _rows(out),
    }
    if killed_at is not None:
        lost = [(t, line) for t, line in job.lines if "Ray node(s)" in line and t >= killed_at]
        figures["fault_detected_s"] = round(lost[0][0] - killed_at, 1) if lost else None
        figures["fault_message"] = lost[0][1] if lost else None
        figures["job_ended_s_after_kill"] = round(job.ended - killed_at, 1)
    figures["rerun"] = None
    if first["rc"] != 0 or _rows(out) < _rows(args.work / "reference"):
        figures["rerun"] = _start_job(args, env, out, flags).wait()
    figures["rows"] = _rows(out)
    figures["job_log"] = [f"{t - job.start:6.1f} s {line}" for t, line in job.lines][-20:]
    _ray(env, "stop", "--force")
    for worker in workers:
        worker.wait(30)
    return figures


def _one_cpu(args: argparse.Namespace, env: dict) -> dict:
    """A fresh cluster of one node with one CPU: the job from scratch."""
    _ray(env, "stop", "--force")
    _ray(env, "start", "--head", f"--port={PORT + 1}", "--num-cpus=1")
    _wait_nodes(env, 1, PORT + 1)
    out = args.work / "one_cpu"
    figures = _start_job(args, env, out, ["--engine", "ray", "--address", f"127.0.0.1:{PORT + 1}"]).wait()
    figures["rows"] = _rows(out)
    figures["shards"] = _shards(out)
    _ray(env, "stop", "--force")
    return figures


class _Job:
    """A running ``retinakit batch`` whose stderr lines are kept with the time each arrived."""

    def __init__(self, command: list[str], env: dict, timeout: float) -> None:
        self.timeout = timeout
        self.start = time.monotonic()
        self.proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        self.lines: list[tuple[float, str]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.ended = 0.0

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append((time.monotonic(), line.rstrip()))

    def wait(self) -> dict:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(max(self.timeout - (time.monotonic() - self.start), 1))
        return self.finish()

    def finish(self) -> dict:
        hung = self.proc.poll() is None
        if hung:
            self.proc.kill()
        self.proc.wait()
        self.ended = time.monotonic()
        self.reader.join(5)
        last = [line for _, line in self.lines if line.startswith("retinakit")]
        return {"rc": self.proc.returncode, "hung": hung, "seconds": round(self.ended - self.start, 1), "said": last}


def _start_job(args: argparse.Namespace, env: dict, out: Path, flags: list[str]) -> _Job:
    command = [sys.executable, "-m", "retinakit", "batch", str(args.source), str(out), "--no-progress"]
    command += ["--shard-size", str(args.shard_size), *flags]
    if args.stall_timeout is not None and "ray" in flags:
        command += ["--stall-timeout", str(args.stall_timeout)]
    return _Job(command, env, args.timeout)


def _job(args: argparse.Namespace, env: dict, out: Path, flags: list[str]) -> dict:
    return _start_job(args, env, out, flags).wait()


def _ray_command() -> list[str]:
    return [str(Path(sys.executable).with_name("ray"))]


def _ray(env: dict, *words: str) -> None:
    extra = ["--node-ip-address=127.0.0.1", "--object-store-memory=100000000"] if words[0] == "start" else []
    if "--head" in words:
        extra += ["--include-dashboard=false", "--disable-usage-stats"]
    subprocess.run([*_ray_command(), *words, *extra], env=env, check=True, capture_output=True, timeout=120)


def _node_ports(base: int) -> list[str]:
    """Ports of its own for a worker node, so that two nodes on one address do not collide."""
    names = ["node-manager", "object-manager", "metrics-export", "dashboard-agent-listen", "dashboard-agent-grpc"]
    return [f"--{name}-port={base + i}" for i, name in enumerate(names)] + [f"--runtime-env-agent-port={base + 9}"]


def _wait_nodes(
    env: dict, count: int, port: int = PORT, workers: Sequence[subprocess.Popen] = (), logs: Sequence[Path] = ()
) -> None:
    """Until ``count`` nodes are alive; else an error with what the worker nodes said and the Ray logs."""
    code = (
        f"import ray; ray.init(address='127.0.0.1:{port}', log_to_driver=False); "
        "print(sum(1 for n in ray.nodes() if n['Alive']))"
    )
    seen = ""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        seen = done.stdout.strip() or done.stderr.strip()[-500:]
        if seen == str(count):
            return
        if any(worker.poll() is not None for worker in workers):
            break
        time.sleep(1)
    said = [f"node {i} exit={w.poll()}: {_tail(log)}" for i, (w, log) in enumerate(zip(workers, logs, strict=False))]
    ray_logs = sorted(Path("/tmp/ray/session_latest/logs").glob("*.err")) + sorted(
        Path("/tmp/ray/session_latest/logs").glob("raylet*.out")
    )
    said += [f"{log.name}: {_tail(log)}" for log in ray_logs if log.stat().st_size]
    with contextlib.suppress(OSError, IndexError):  # the namespace's /tmp/ray ends with it
        shutil.copytree("/tmp/ray/session_latest/logs", logs[0].parent / f"ray-logs-{port}", dirs_exist_ok=True)
    raise RuntimeError(f"the Ray cluster did not reach {count} nodes (last seen: {seen!r})\n" + "\n".join(said))


def _tail(path: Path, chars: int = 600) -> str:
    with contextlib.suppress(OSError):
        return path.read_text(errors="replace")[-chars:].strip()
    return "(no log)"


def _raylet_of(parent: int) -> int:
    """The raylet started by the ``ray start --block`` process ``parent``."""
    for entry in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent and os.readlink(f"/proc/{entry}/exe").endswith(
                "raylet"
            ):
                return int(entry)
    raise RuntimeError(f"no raylet under process {parent}")


def _parent(pid: str) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]


def _actors_by_raylet() -> dict[int, int]:
    """Detector actor processes (``ray::...DetectActor...``) counted by the raylet they run under."""
    counts: dict[int, int] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError, IndexError):
            if b"DetectActor" not in Path(f"/proc/{entry}/cmdline").read_bytes():
                continue
            pid = entry
            while pid not in ("0", "1") and not os.readlink(f"/proc/{pid}/exe").endswith("raylet"):
                pid = _parent(pid)
            counts[int(pid)] = counts.get(int(pid), 0) + 1
    return counts


def _shards(out: Path) -> int:
    return sum(1 for _ in read_manifest(out / MANIFEST))


def _rows(out: Path) -> int:
    return sum(record.rows for record in read_manifest(out / MANIFEST))


def _compare(out: Path, reference: Path) -> bool:
    """The same rows as the reference, every input once."""
    import pyarrow.dataset as ds

    if not list(out.glob("part-*.parquet")):
        return False
    table = ds.dataset(out, format="parquet").to_table().sort_by("path")
    paths = table.column("path").to_pylist()
    return len(paths) == len(set(paths)) and table.equals(
        ds.dataset(reference, format="parquet").to_table().sort_by("path")
    )


if __name__ == "__main__":
    sys.exit(main())
