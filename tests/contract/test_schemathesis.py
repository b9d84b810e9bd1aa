"""Schemathesis against the live ``/openapi.json`` of a real ``goalline serve``, every method.

For each API method, Schemathesis generates request bodies (JSON and XML) from the document's
own request schema, valid and not, sends them to a real server on each store, and checks what
a client relies on: no 5xx, and every reply conforms to the document (its status is a
documented one, its content type too, its headers and its body match the reply schema; an XML
body, which Schemathesis does not read, is checked to be the envelope). The
run is bounded (``MAX_EXAMPLES`` per method, derandomised so a failure repeats) and keeps the
whole module well under a minute. Most cases carry the demo token (database 1, pixel 1),
so valid bodies reach matching and storage instead of stopping at 401 (see TOKENS).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from goalline.demo import DEMO_DB_ID, DEMO_PIXEL_ID, DEMO_TOKEN
from goalline.pipeline.dispatch import METHODS

from conftest import Server, start_server

pytestmark = pytest.mark.server

#: Examples per method and store; GOALLINE_SCHEMATHESIS_EXAMPLES=500 digs deeper, locally.
MAX_EXAMPLES = int(os.environ.get("GOALLINE_SCHEMATHESIS_EXAMPLES", "40"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def live(module_database: str) -> Iterator[Server]:
    server = start_server(module_database, "--demo")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def schema(live: Server) -> Any:
    return schemathesis.openapi.from_url(live.url + "/openapi.json")


#: How a case is sent: as generated; with the demo token; with the demo token and database
#: (so a generated pixel_id reaches the store); with the demo token, database and pixel (so
#: valid bodies reach matching and storage).
TOKENS = ("generated", "demo token", "demo token and database", "demo token and ids")


def with_demo_token(body: Any, how: str) -> Any:
    if how == "generated" or not isinstance(body, dict):
        return body
    body = {**body, "token": DEMO_TOKEN}
    if how == "demo token and ids":
        body.update(
            {k: v for k, v in (("db_id", DEMO_DB_ID), ("pixel_id", DEMO_PIXEL_ID)) if k in body}
        )
    return body


def xml_envelope(status: int, body: bytes) -> None:
    """Schemathesis validates JSON bodies only: an XML reply is checked to be the envelope,
    its code mirrored by the status (405 carries error 400)."""
    root = ET.fromstring(body)
    error, text = root.find("error"), root.find("error_text")
    assert root.tag == "xml" and error is not None and text is not None and text.text, body
    code = int(error.text or "")
    assert status == (code or 200) or (status, code) == (405, 400), (status, body)


@pytest.mark.parametrize("method", list(METHODS))
def test_every_reply_conforms_to_the_document(schema: Any, live: Server, method: str) -> None:
    operation = schema["/api/v1.1/" + method]["POST"]
    cases = st.one_of(
        *(
            operation.as_strategy(mode, media_type=media)
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
            for media in ("application/json", "application/xml")
        )
    )
    failures: list[str] = []

    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    @hypothesis.given(case=cases, how=st.sampled_from(TOKENS))
    def run(case: Any, how: str) -> None:
        case.body = with_demo_token(case.body, how)
        response = case.call(base_url=live.url, timeout=10)
        try:
            case.validate_response(response, checks=CHECKS)
            if "xml" in response.headers.get("content-type", ""):
                xml_envelope(response.status_code, response.content)
        except Exception as exc:  # collect: one failing body must not hide the others
            failures.append(f"{case.media_type} {case.body!r:.300}\n  -> {exc}")

    run()
    assert not failures, f"{len(failures)} replies broke the document:\n" + "\n".join(failures[:10])
