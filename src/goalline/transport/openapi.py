"""The OpenAPI 3.1 document (``GET /openapi.json``), built from the method table and the
request structs themselves, so it cannot drift from what the server accepts."""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec

from goalline import __version__
from goalline.errors import ERROR_CODES
from goalline.pipeline.dispatch import METHODS

ENVELOPE = {
    "type": "object",
    "required": ["error", "error_text"],
    "properties": {
        "error": {"type": "integer", "description": "0 on success, else the error code"},
        "error_text": {"type": "string", "description": "'Successful operation', or the field "
                       "path and the rule broken"},
    },
    "additionalProperties": True,
}  # fmt: skip


@cache
def openapi_document() -> dict[str, Any]:
    methods = list(METHODS.values())
    (_, components) = msgspec.json.schema_components(
        [m.request for m in methods], ref_template="#/components/schemas/{name}"
    )
    components["Envelope"] = ENVELOPE
    paths: dict[str, Any] = {}
    for method in methods:
        ref = {"$ref": f"#/components/schemas/{method.request.__name__}"}
        paths[f"/api/v1.1/{method.name}"] = {
            "post": {
                "summary": method.summary,
                "operationId": method.name.replace("/", "_"),
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": ref},
                        "application/xml": {"schema": {**ref, "xml": {"name": "xml"}}},
                    },
                },
                "responses": {
                    str(code if code else 200): {
                        "description": text,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/Envelope"}
                            }
                        },
                    }
                    for code, text in ERROR_CODES.items()
                },
                "security": [{"bearer": []}, {}],
            }
        }
    for path, text in (
        ("/healthz", "200 while the process is up"),
        ("/readyz", "200 when storage answers, else 503"),
        ("/metrics", "Prometheus metrics of this process"),
    ):
        paths[path] = {"get": {"summary": text, "responses": {"200": {"description": text}}}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Goalline",
            "version": __version__,
            "description": "Goal achievements and goal values for customer profiles, "
            "wire-compatible with the Altcraft Platform API v1.1. The token may also travel "
            "in the body field `token`.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
