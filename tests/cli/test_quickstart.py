"""The README's quick start, run as written: its first command serves demo data and prints a
curl that succeeds; its second is the command running this suite. Then "Setting up for real",
run as written after the demo: the real set-up gets a store of its own."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx

from conftest import ROOT, free_port


def readme_commands(heading: str) -> list[str]:
    """The commands of the first sh block under ``heading`` in README.md, comments dropped."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split(heading + "\n", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None, f"README {heading!r} has no sh block"
    return [line.split("#", 1)[0].strip() for line in block[1].splitlines() if line.strip()]


def quick_start_commands() -> list[str]:
    return readme_commands("## Quick start")


def test_quick_start_is_two_commands() -> None:
    assert quick_start_commands() == ["./scripts/demo", "./scripts/test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./scripts/test" in ci


def _user_env() -> dict[str, str]:
    """The environment of a user who has set nothing: no GOALLINE_* variable names a store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOALLINE_")}
    return {**env, "GOALLINE_LOG_LEVEL": "warning"}


def _start_demo(cwd: Path, port: int) -> tuple[subprocess.Popen[str], str]:
    """Run ./scripts/demo as the quick start says (in ``cwd``); return it and its curl once
    the curl it printed succeeds."""
    process = subprocess.Popen(
        [str(ROOT / "scripts" / "demo"), "--port", str(port)],  # arguments reach serve
        cwd=cwd,
        env=_user_env(),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
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
    return process, curl


def _stop(process: subprocess.Popen[str]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=20)
    if process.stdout is not None:
        process.stdout.close()


def test_demo_command_serves_and_its_curl_works(tmp_path: Path) -> None:
    process, _ = _start_demo(tmp_path, free_port())
    try:
        # The demo's store is its own file in the cwd; the real default stays untouched.
        assert (tmp_path / "goalline-demo.db").exists()
        assert not (tmp_path / "goalline.db").exists()
    finally:
        _stop(process)


CUSTOMERS = "email,CRM_ID\nreal.customer@example.org,900001\n"


def test_setting_up_for_real_after_the_demo(tmp_path: Path) -> None:
    """The README as a user follows it: the quick start's demo, then every command of "Setting
    up for real" as written (in the same directory, with the demo still running). Each must
    work, the real data must stay out of the demo's store, and the published demo token must
    not reach it."""
    commands = readme_commands("## Setting up for real")
    assert commands[0] == ". .venv/bin/activate"
    assert commands[-1] == "goalline serve --host 0.0.0.0 --port 8080"
    (tmp_path / ".venv").symlink_to(sys.prefix)  # the environment scripts/demo installed into
    (tmp_path / "customers.csv").write_text(CUSTOMERS)

    def run(command: str) -> str:
        out = subprocess.run(
            ["bash", "-c", f"{commands[0]} && {command}"],
            cwd=tmp_path,
            env=_user_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, f"{command!r} failed:\n{out.stdout}{out.stderr}"
        return out.stdout

    demo_port, real_port = free_port(), free_port()
    demo_server, curl = _start_demo(tmp_path, demo_port)
    real_server: subprocess.Popen[str] | None = None
    try:
        outputs = {command: run(command) for command in commands[1:-1]}
        token_out = next(out for command, out in outputs.items() if " token create " in command)
        found = re.search(r"^\s+([0-9a-f]{32})$", token_out, re.M)
        assert found, token_out
        real_token = found[1]

        serve = commands[-1].replace("--host 0.0.0.0 --port 8080", f"--port {real_port}")
        real_server = subprocess.Popen(
            ["bash", "-c", f"{commands[0]} && exec {serve}"],
            cwd=tmp_path,
            env=_user_env(),
            text=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        real = f"http://127.0.0.1:{real_port}"
        _wait_ready(real, real_server)
        demo_url = f"http://127.0.0.1:{demo_port}"
        demo_token = json.loads(shlex.split(curl)[-1])["token"]
        goal = {"db_id": 1, "pixel_id": 7, "email": "real.customer@example.org", "goal": "buy"}
        lookup = {"db_id": 1, "matching": "email", "email": "real.customer@example.org"}

        # The real set-up works: the imported customer is matched on the real server.
        reply = _post(real, "goals/register", token=real_token, **goal)
        assert reply["error"] == 0 and reply["profile_id"], reply
        assert _post(real, "profiles/get", token=real_token, **lookup)["error"] == 0
        # The published demo token is unknown to the real store...
        assert _post(real, "profiles/get", token=demo_token, **lookup)["error"] == 401
        assert _post(real, "goals/register", token=demo_token, **goal)["error"] == 401
        # ...and the demo's store holds none of the real data.
        assert _post(demo_url, "profiles/get", token=demo_token, **lookup)["error"] == 404
        assert _post(demo_url, "profiles/get", token=real_token, **lookup)["error"] == 401
        listed = json.loads(run("goalline db list --json"))["databases"]
        assert [(d["id"], d["name"]) for d in listed] == [(1, "Shop")]
        demo_listed = json.loads(run("goalline db list --json --database goalline-demo.db"))
        assert [(d["id"], d["name"]) for d in demo_listed["databases"]] == [(1, "Demo shop")]
    finally:
        _stop(demo_server)
        if real_server is not None:
            _stop(real_server)


def _post(base: str, method: str, **body: Any) -> dict[str, Any]:
    reply: dict[str, Any] = httpx.post(f"{base}/api/v1.1/{method}", json=body, timeout=10).json()
    return reply


def _wait_ready(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, f"goalline serve exited with {process.returncode}"
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} was not ready in 60 s")
