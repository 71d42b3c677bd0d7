"""The OpenAPI document is valid OpenAPI 3.1 and describes every API route."""

from __future__ import annotations

from typing import Any

import aiohttp
from api_support import World
from listings_support import PRODUCTS, ok
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from livebase.api.app import all_endpoints, create_app
from livebase.api.openapi import build
from livebase.listings.tables import XLSX_MEDIA_TYPE
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


FILE_UPLOADS = {
    ("/api/v1/bases/{base}/products/import", "post"): ("text/csv", XLSX_MEDIA_TYPE),
    ("/api/v1/bases/{base}/products/{key}/images", "post"): ("image/png", "image/jpeg"),
    ("/api/v1/bases/{base}/imports/douyin-compass", "post"): ("text/csv", XLSX_MEDIA_TYPE),
}


def test_file_uploads_are_described_as_a_raw_body_or_a_multipart_file() -> None:
    doc = build(all_endpoints())
    described = {
        (path, method)
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        if "multipart/form-data" in op.get("requestBody", {}).get("content", {})
    }
    assert described == set(FILE_UPLOADS)
    for (path, method), media_types in FILE_UPLOADS.items():
        body = doc["paths"][path][method]["requestBody"]
        assert body["required"] is True and "bytes" in body["description"]
        form = body["content"]["multipart/form-data"]["schema"]
        assert form["required"] == ["file"]
        assert form["properties"]["file"] == form["properties"]["file"] | {
            "type": "string",
            "format": "binary",
        }
        for media in media_types:
            raw = body["content"][media]["schema"]
            assert (raw["type"], raw["format"], raw["contentMediaType"]) == (
                "string",
                "binary",
                media,
            )
        assert "413" in doc["paths"][path][method]["responses"]


async def test_each_documented_media_type_is_accepted_and_others_are_not(world: World) -> None:
    api, manager = world.api, world.tokens["haifeng.manager"]
    product = await ok(
        api,
        "POST",
        PRODUCTS,
        manager,
        {"merchant_id": world.ids["haifeng.merchant"], "title_zh": "青梅", "price_fen": 100},
    )
    doc = build(all_endpoints())
    uploads = [ep for ep in all_endpoints() if ep.file is not None]
    assert len(uploads) == len(FILE_UPLOADS)
    for ep in uploads:
        url = ep.path.format(base="haifeng", key=product["id"])
        content = doc["paths"][ep.path][ep.method.lower()]["requestBody"]["content"]
        for media in content:
            if media == "multipart/form-data":
                form = aiohttp.FormData()
                form.add_field("file", b"x", filename="upload")
                status, body = await api.call(ep.method, url, manager, data=form)
            else:
                headers = {"Content-Type": media}
                status, body = await api.call(ep.method, url, manager, data=b"x", headers=headers)
            # Accepted as a file: the bytes are then judged (and here rejected) as content.
            assert status == 422, (url, media, body)
        status, body = await api.call(
            ep.method, url, manager, data=b"x", headers={"Content-Type": "application/json"}
        )
        assert status == 415, (url, body)
