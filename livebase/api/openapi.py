"""The OpenAPI 3.1 document, generated from the declared endpoints and their pydantic models."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from livebase import __version__
from livebase.api.routing import Endpoint, FileBody

REF = "#/components/schemas/{model}"
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["status", "code", "message", "fields"],
            "properties": {
                "status": {"type": "integer"},
                "code": {"type": "string", "description": "stable, machine-readable"},
                "message": {"type": "string"},
                "fields": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["field", "message"],
                        "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                    },
                },
            },
        }
    },
}
DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing, unknown, expired or revoked token",
    403: "The caller's role may not do this",
    404: "Not found (or not visible to the caller)",
    409: "Conflict with existing data",
    413: "Body too large",
    422: "Validation failed",
}


def _operation_id(ep: Endpoint) -> str:
    words = re.sub(r"[^a-z0-9]+", "_", f"{ep.method.lower()} {ep.path.lower()}").strip("_")
    return words.replace("api_v1_", "")


def _file_body(spec: FileBody) -> dict[str, Any]:
    """Raw body in any accepted media type, or a multipart form whose ``file`` part is the file."""
    binary = {"type": "string", "format": "binary"}
    raw = {media: {"schema": {**binary, "contentMediaType": media}} for media in spec.media_types}
    form = {
        "schema": {
            "type": "object",
            "required": ["file"],
            "properties": {"file": {**binary, "description": "the first part named file or "
                                    "carrying a filename is read"}},
        },
    }  # fmt: skip
    return {
        "required": True,
        "description": f"{spec.description} At most {spec.max_bytes} bytes.",
        "content": {**raw, "multipart/form-data": form},
    }


def build(endpoints: list[Endpoint]) -> dict[str, Any]:
    models: set[type[BaseModel]] = set()
    for ep in endpoints:
        models.update(m for m in (ep.response, ep.body) if m is not None)
    keyed = [
        (m, "validation" if m in {ep.body for ep in endpoints} else "serialization")
        for m in sorted(models, key=lambda m: m.__name__)
    ]
    refs, defs = models_json_schema(keyed, ref_template=REF)  # type: ignore[arg-type]
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    schemas["Error"] = ERROR_SCHEMA
    paths: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        op: dict[str, Any] = {
            "operationId": _operation_id(ep),
            "summary": ep.summary,
            "tags": [ep.tag],
            "description": "Roles: " + ", ".join(sorted(r.value for r in ep.roles)),
            "security": [{"bearer": []}],
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in re.findall(r"{(\w+)}", ep.path)
            ],
            "responses": {},
        }
        if ep.query is not None:
            query_schema = ep.query.model_json_schema(ref_template=REF)
            schemas.update(query_schema.get("$defs", {}))
            for name, field in ep.query.model_fields.items():
                schema = query_schema["properties"][name]
                op["parameters"].append(
                    {
                        "name": name,
                        "in": "query",
                        "required": field.is_required(),
                        "schema": schema,
                    }
                )
        if ep.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(ep.body, "validation")]}},
            }
        elif ep.file is not None:
            op["requestBody"] = _file_body(ep.file)
        ok: dict[str, Any] = {"description": "OK" if ep.status != 201 else "Created"}
        if ep.response is not None:
            ok["content"] = {"application/json": {"schema": refs[(ep.response, "serialization")]}}
        op["responses"][str(ep.status)] = ok
        takes_body = ep.body is not None or ep.file is not None
        for status in (*ep.errors, 413) if takes_body else ep.errors:
            op["responses"][str(status)] = {
                "description": DESCRIPTIONS.get(status, "Error"),
                "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}},
            }
        paths.setdefault(ep.path, {})[ep.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Livebase API",
            "version": __version__,
            "description": "Operations backend for live-streaming e-commerce bases.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
