"""The README's quick start, run as written: its first command serves demo data and prints a
curl that succeeds; its second is the command running this suite."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path

from conftest import ROOT, free_port


def quick_start_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None, "README quick start has no sh block"
    return [line.split("#", 1)[0].strip() for line in block[1].splitlines() if line.strip()]


def test_quick_start_is_two_commands() -> None:
    assert quick_start_commands() == ["./scripts/demo", "./scripts/test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./scripts/test" in ci


def test_demo_command_serves_and_its_curl_works(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "GOALLINE_LOG_LEVEL": "warning"}
    process = subprocess.Popen(
        [str(ROOT / "scripts" / "demo"), "--port", str(port)],  # arguments reach serve
        cwd=tmp_path,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        curl = None
        deadline = time.monotonic() + 180
        assert process.stdout is not None
        while time.monotonic() < deadline and curl is None:
            line = process.stdout.readline()
            if not line:
                break
            if line.strip().startswith("curl "):
                curl = line.strip()
        assert curl is not None, "scripts/demo printed no curl"
        assert f"127.0.0.1:{port}" in curl
        reply = None
        while time.monotonic() < deadline:
            out = subprocess.run(shlex.split(curl), capture_output=True, text=True, timeout=10)
            if out.stdout:
                reply = json.loads(out.stdout)
                break
            time.sleep(0.1)
        assert reply is not None and reply["error"] == 0, reply
        assert (tmp_path / "goalline.db").exists()  # the embedded default: SQLite in the cwd
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
        if process.stdout is not None:
            process.stdout.close()
