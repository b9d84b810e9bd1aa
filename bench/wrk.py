"""One wrk invocation: command line, the JSON line its Lua ``done()`` prints, its CPU time."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.system import BenchError

MARKER = "BENCH-RESULT "
#: The longest wait for the replies to requests sent before the end of the load ("the drain"):
#: replies slower than this count as unanswered (errors).
MAX_DRAIN_SECONDS = 30.0


@dataclass
class WrkResult:
    """What the Lua script counted; latencies in µs."""

    sent: int
    responses: int
    ok: int
    not_ok: int
    non2xx: int
    replayed: int
    dup_events: int
    window_ms: float
    connect_errors: int
    read_errors: int
    write_errors: int
    timeouts: int
    p50_us: int
    p90_us: int
    p99_us: int
    p999_us: int
    max_us: int
    mean_us: float
    #: CPU seconds wrk used (user + system), and its -d.
    wrk_cpu: float = 0.0
    wrk_seconds: float = 0.0
    samples: list[str] = field(default_factory=list)

    @property
    def rps(self) -> float:
        """Replies per second over the window from the first thread's start to the last reply."""
        return self.responses / (self.window_ms / 1000) if self.window_ms > 0 else 0.0

    @property
    def socket_errors(self) -> int:
        """Connect, write and timeout errors. Read errors are left out: the server closes
        keep-alive connections that the drain left idle (uvicorn: after 5 s), which wrk counts
        as read errors; a read error that loses a reply shows up as ``unanswered`` instead."""
        return self.connect_errors + self.write_errors + self.timeouts

    @property
    def unanswered(self) -> int:
        """Requests sent but never answered: 0 unless replies took longer than the longest
        drain, or the server dropped connections."""
        return max(0, self.sent - self.responses)

    @property
    def errors(self) -> int:
        """Everything but a success envelope: non-2xx, error != 0, socket errors, no reply."""
        return self.not_ok + self.non2xx + self.socket_errors + self.unanswered


def run_wrk(
    wrk: str,
    script: Path,
    url: str,
    *,
    threads: int,
    connections: int,
    seconds: float,
    base: int,
    rate_per_thread: float = 0.0,
) -> WrkResult:
    """Run ``script``: ``seconds`` of load, then the drain until every thread's requests are
    answered (at most MAX_DRAIN_SECONDS); raise BenchError if wrk fails."""
    total = math.ceil(seconds + MAX_DRAIN_SECONDS)
    # wrk counts a connection as timed out when its last request was *sent* longer ago than
    # --timeout, even when it was answered and the connection is idle (drained): so the timeout
    # is longer than the whole run, and requests never answered are counted as "unanswered".
    timeout = total + 10
    with (
        tempfile.TemporaryDirectory(prefix="wrk-") as markers,
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
    ):
        cmd = [
            wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{total}s",
            "--timeout",
            f"{timeout}s",
            "-s",
            str(script),
            url,
            "--",
            str(base),
            f"{rate_per_thread:.3f}",
            markers,
        ]
        started = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        time.sleep(seconds)
        while proc.poll() is None:
            if len(os.listdir(markers)) >= threads:
                proc.send_signal(signal.SIGINT)  # wrk's own way to end early: done() still runs
                break
            time.sleep(0.02)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    line = next((ln for ln in stdout.splitlines() if ln.startswith(MARKER)), None)
    if proc.returncode != 0 or line is None:
        raise BenchError(
            f"wrk failed (exit {proc.returncode}): {' '.join(cmd)}\n{stdout}\n{stderr}".strip()
        )
    data: dict[str, Any] = json.loads(line[len(MARKER) :])
    data.pop("wrk_requests", None)
    data.pop("wrk_duration_us", None)
    data.pop("status_errors", None)
    result = WrkResult(**data)
    result.wrk_cpu = usage.ru_utime + usage.ru_stime
    result.wrk_seconds = round(wall, 2)
    return result
