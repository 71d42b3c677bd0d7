"""The OpenAPI document is valid OpenAPI 3.1 and describes every API route."""

from __future__ import annotations

from typing import Any

from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from livebase.api.app import all_endpoints, create_app
from livebase.api.openapi import build
from livebase.settings import Settings


def test_document_validates_as_openapi_3_1() -> None:
    doc = build(all_endpoints())
    assert doc["openapi"] == "3.1.0"
    validate(doc)


def test_every_api_route_is_documented_with_its_models() -> None:
    app = create_app(Settings())
    doc: dict[str, Any] = build(all_endpoints())
    routes = {
        (r.method.lower(), r.resource.canonical)
        for r in app.router.routes()
        if r.resource is not None and r.resource.canonical.startswith("/api/")
    }
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert routes == documented
    for ep in all_endpoints():
        op = doc["paths"][ep.path][ep.method.lower()]
        if ep.body is not None:
            ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"]
        for status, response in op["responses"].items():
            if int(status) >= 400:
                assert response["content"]["application/json"]["schema"]["$ref"].endswith("/Error")


def test_request_models_in_the_document_match_validation() -> None:
    doc = build(all_endpoints())
    product = doc["components"]["schemas"]["ProductCreate"]
    assert product["additionalProperties"] is False
    assert product["properties"]["price_fen"]["minimum"] == 0
    assert set(product["required"]) == {"title_zh", "price_fen"}


def test_a_broken_document_would_fail_validation() -> None:
    doc = build(all_endpoints())
    doc["paths"]["/api/v1/bases"]["get"]["responses"] = "nope"
    try:
        validate(doc)
    except OpenAPIValidationError:
        return
    raise AssertionError("validator accepted a broken document")
