"""Optional: ``py-spy record`` on the server during one extra run of a scenario, summarised."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench.system import BenchError

_LINE = re.compile(r":\d+\)$")


def find_py_spy() -> str:
    here = Path(sys.executable).parent / "py-spy"
    found = str(here) if here.exists() else shutil.which("py-spy")
    if found is None:
        raise BenchError(
            "--py-spy needs py-spy: install it into the venv with "
            "`.venv/bin/pip install py-spy` and run again"
        )
    return found


def start(py_spy: str, pid: int, seconds: float, output: Path) -> subprocess.Popen[bytes]:
    """Sample ``pid`` and its subprocesses for ``seconds`` into ``output`` (collapsed stacks)."""
    return subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            "--nonblocking",
            "--rate",
            "200",
            "--duration",
            str(max(1, round(seconds))),
            "--format",
            "raw",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _frame(raw: str) -> str:
    """``fn (path/to/file.py:123)`` → ``fn (file.py)``: lines of one function add up."""
    raw = _LINE.sub(")", raw.strip())
    name, _, where = raw.partition(" (")
    if where:
        where = where.rstrip(")")
        parts = Path(where).parts
        short = (
            "goalline/" + where.rsplit("goalline/", 1)[-1]
            if "goalline" in parts
            else "/".join(parts[-2:])
        )
        return f"{name} ({short})"
    return name


def _ours(frame: str) -> bool:
    """Goalline's own functions below the command line (``serve`` is in every stack)."""
    return "(goalline/" in frame and frame.endswith(".py)") and "(goalline/cli.py)" not in frame


def summarise(path: Path, top: int = 12) -> dict[str, list[tuple[str, float]]]:
    """Top frames by own time (where the time goes) and Goalline's functions by total time
    (what calls it), in % of the samples of non-idle threads."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";") if f]
        frames = [f for f in frames if not f.startswith("process ") and not f.startswith("thread ")]
        if not frames:
            continue
        samples += count
        own[frames[-1]] += count
        for name in set(frames):
            if _ours(name):
                total[name] += count
    if samples == 0:
        return {"own": [], "total": []}
    return {
        "own": [(name, 100 * n / samples) for name, n in own.most_common(top)],
        "total": [(name, 100 * n / samples) for name, n in total.most_common(top)],
    }
