"""The machine side: finding (or installing) wrk, and reading /proc for RSS, CPU and idleness."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A condition that stops the benchmark with a message (no traceback)."""


def say(message: str) -> None:
    """Progress goes to stderr, so ``--json`` keeps stdout to one JSON document."""
    print(message, file=sys.stderr, flush=True)


def ensure_wrk() -> str:
    """The path of ``wrk``; installed from Debian's package with apt-get when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None:
        raise BenchError(
            "wrk is not installed and there is no apt-get to install it: install wrk "
            "(https://github.com/wg/wrk; Debian/Ubuntu: apt-get install wrk, macOS: brew install "
            "wrk) and run again"
        )
    prefix: list[str] = []
    if os.geteuid() != 0:
        sudo = shutil.which("sudo")
        if sudo is None:
            raise BenchError(
                "wrk is not installed and installing it needs root: run "
                "`sudo apt-get install -y wrk` and run again"
            )
        prefix = [sudo, "-n"]
    say("wrk not found: installing it with `apt-get install -y wrk` (Debian package wrk) ...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*prefix, apt, "install", "-y", "-q", "wrk"]
    result = subprocess.run(install, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        say("apt-get install failed; running `apt-get update` first and trying again ...")
        subprocess.run([*prefix, apt, "update", "-q"], env=env, capture_output=True, text=True)
        result = subprocess.run(install, env=env, capture_output=True, text=True)
    found = shutil.which("wrk")
    if found is None:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise BenchError(
            "could not install wrk with apt-get ("
            + (" / ".join(tail) or f"exit {result.returncode}")
            + "): install it yourself (apt-get install wrk) and run again"
        )
    say(f"installed {found}")
    return found


# -- /proc ------------------------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its live descendants (uvicorn's worker processes with --workers N)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may contain spaces, so split after the last ')'.
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, []))
    return out


def pids_named(name: str) -> list[int]:
    """Processes whose command name is ``name`` (e.g. PostgreSQL's backends: ``postgres``)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() == name:
                        out.append(int(entry))
            except OSError:
                continue
    return out


def cpu_by_pid(pids: list[int]) -> dict[int, float]:
    return {pid: cpu_seconds([pid]) for pid in pids}


def rss_kib(pids: list[int]) -> tuple[int, int]:
    """(RSS, private RSS) of ``pids`` in KiB. Private is RssAnon + RssShmem: the processes'
    own memory. The rest of RSS is file pages mapped in, here mostly the GeoIP database that
    the server reads through mmap: shared with the page cache and between workers, reclaimable,
    and bounded by the file's size (about 100 MiB), however many events are stored."""
    total = private = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                    elif line.startswith(("RssAnon:", "RssShmem:")):
                        private += int(line.split()[1])
        except OSError:
            continue
    return total, private


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by ``pids`` (live processes only)."""
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / CLOCK_TICKS


def box_busy_seconds() -> tuple[float, float]:
    """(busy CPU seconds, wall seconds as a monotonic time) summed over every core."""
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    values = [int(v) for v in parts[:8]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / CLOCK_TICKS, time.monotonic()


def cores() -> int:
    return os.cpu_count() or 1


@dataclass
class Usage:
    """What the server's process tree did during one wrk run."""

    peak_rss_kib: int = 0
    start_rss_kib: int = 0
    end_rss_kib: int = 0
    #: The same for private memory (RssAnon + RssShmem; see rss_kib).
    peak_private_kib: int = 0
    start_private_kib: int = 0
    end_private_kib: int = 0
    #: CPU seconds used by the server's processes, by the database server's processes
    #: (PostgreSQL's, when watched), and by every process on the box.
    server_cpu: float = 0.0
    db_cpu: float = 0.0
    box_cpu: float = 0.0
    #: Wall seconds sampled.
    seconds: float = 0.0


class Sampler:
    """Samples the server tree's RSS every ``interval`` s in a thread; CPU from start to stop."""

    def __init__(self, pid: int, interval: float = 0.1, db_process: str = "") -> None:
        self.pid = pid
        self.db_process = db_process
        self.interval = interval
        self.usage = Usage()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-rss", daemon=True)
        self._pids: list[int] = []

    def __enter__(self) -> Sampler:
        self._pids = process_tree(self.pid)
        rss, private = rss_kib(self._pids)
        self.usage.start_rss_kib = self.usage.peak_rss_kib = rss
        self.usage.start_private_kib = self.usage.peak_private_kib = private
        self._cpu0 = cpu_seconds(self._pids)
        self._db0 = cpu_by_pid(pids_named(self.db_process)) if self.db_process else {}
        self._box0, self._t0 = box_busy_seconds()
        self._thread.start()
        return self

    def _run(self) -> None:
        n = 0
        while not self._stop.wait(self.interval):
            n += 1
            if n % 10 == 0:  # workers can be restarted: refresh the tree once a second
                self._pids = process_tree(self.pid)
            self._peak(*rss_kib(self._pids))

    def _peak(self, rss: int, private: int) -> None:
        self.usage.peak_rss_kib = max(self.usage.peak_rss_kib, rss)
        self.usage.peak_private_kib = max(self.usage.peak_private_kib, private)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        pids = process_tree(self.pid)
        box1, t1 = box_busy_seconds()
        wall = max(t1 - self._t0, 1e-9)
        self.usage.end_rss_kib, self.usage.end_private_kib = rss_kib(pids)
        self._peak(self.usage.end_rss_kib, self.usage.end_private_kib)
        self.usage.server_cpu = cpu_seconds(pids) - self._cpu0
        if self.db_process:
            db1 = cpu_by_pid(pids_named(self.db_process))
            self.usage.db_cpu = sum(cpu - self._db0.get(pid, 0.0) for pid, cpu in db1.items())
        self.usage.box_cpu = box1 - self._box0
        self.usage.seconds = wall


def wait_for_idle(threshold: float, max_wait: float, *, quiet: bool = False) -> float:
    """Wait (up to ``max_wait`` s) until the whole box uses less than ``threshold`` cores over
    half a second; return the last busy figure (the caller records it as noise)."""
    deadline = time.monotonic() + max_wait
    told = False
    while True:
        busy0, t0 = box_busy_seconds()
        time.sleep(0.5)
        busy1, t1 = box_busy_seconds()
        busy = (busy1 - busy0) / (t1 - t0)
        if busy < threshold or time.monotonic() >= deadline:
            if busy >= threshold and not quiet:
                say(f"  box still busy ({busy:.2f} cores used by other processes); running anyway")
            return busy
        if not told and not quiet:
            say(f"  waiting for an idle box ({busy:.2f} cores busy) ...")
            told = True
