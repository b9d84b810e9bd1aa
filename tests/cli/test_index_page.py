"""`GET /` on a real server: links this server answers (no placeholder address), and the
client as the server sees it, which `--forwarded-allow-ips` decides behind a proxy."""

from __future__ import annotations

import re
from pathlib import Path

import httpx2 as httpx

from conftest import start_server

PROXIED = {"x-forwarded-for": "203.0.113.7", "x-forwarded-proto": "https"}


def test_index_links_resolve_and_name_no_outside_address(tmp_path: Path) -> None:
    server = start_server(str(tmp_path / "g.db"))  # default: a proxy on 127.0.0.1 is trusted
    try:
        reply = httpx.get(server.url + "/", timeout=10)
        assert reply.status_code == 200
        body = reply.json()
        assert not re.search(r"https?://", reply.text), body  # no placeholder URL
        assert body["links"]["openapi"] == "/openapi.json"
        for path in body["links"].values():
            assert httpx.get(server.url + path, timeout=10).status_code == 200, path
        assert body["client"] == {"address": "127.0.0.1", "scheme": "http"}
        proxied = httpx.get(server.url + "/", headers=PROXIED, timeout=10).json()
        assert proxied["client"] == {"address": "203.0.113.7", "scheme": "https"}
    finally:
        server.stop()


def test_forwarded_headers_are_ignored_from_untrusted_peers(tmp_path: Path) -> None:
    server = start_server(str(tmp_path / "g.db"), "--forwarded-allow-ips", "")
    try:
        proxied = httpx.get(server.url + "/", headers=PROXIED, timeout=10).json()
        assert proxied["client"] == {"address": "127.0.0.1", "scheme": "http"}
    finally:
        server.stop()
