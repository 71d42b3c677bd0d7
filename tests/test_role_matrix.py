"""Every endpoint × every role: refused outside the role's scope, allowed inside it.

``ACCESS`` restates the role table (``livebase.api.resources`` and the catalogue, token and live
endpoints) as data; the cases are generated from ``all_endpoints()``, so a new endpoint fails
here until it has a row in ``ACCESS`` (and a body in ``BODIES`` if it takes one).

Scopes: ``base`` = every row of the caller's base, ``own`` = only the caller's own rows (a
merchant's listings and orders, a host's sessions and room, a manager's non-manager tokens),
``-`` = the role may not call it (403). A base or row the caller cannot see answers 404.
"""

from __future__ import annotations

import io
import itertools
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import PIL.Image
import pytest
from aiohttp.test_utils import TestServer
from api_support import Api, World
from orders_support import FakeWooCommerce
from sqlalchemy import select

from livebase.api.app import all_endpoints
from livebase.api.routing import Endpoint
from livebase.api.state import DB_SESSIONS
from livebase.db.models import Model, Role

NONE, OWN, BASE = "-", "own", "base"
EVERYONE = (BASE, BASE, BASE)  # (base_manager, merchant, host); admin may always
MANAGERS = (BASE, NONE, NONE)
ADMIN_ONLY = (NONE, NONE, NONE)
HOST_OWN = (BASE, NONE, OWN)


def _crud(name: str, read: tuple[str, ...], create: tuple[str, ...], write: tuple[str, ...]):
    coll = f"/bases/{{base}}/{name}"
    item = coll + "/{key}"
    return {
        f"GET {coll}": read, f"POST {coll}": create, f"GET {item}": read,
        f"PATCH {item}": write, f"DELETE {item}": write,
    }  # fmt: skip


SESSION = "/bases/{base}/sessions/{key}"
ACCESS: dict[str, tuple[str, str, str]] = {
    "GET /bases": EVERYONE, "POST /bases": ADMIN_ONLY, "GET /bases/{base}": EVERYONE,
    "PATCH /bases/{base}": MANAGERS, "DELETE /bases/{base}": ADMIN_ONLY,
    "GET /themes": EVERYONE, "POST /themes": ADMIN_ONLY, "GET /themes/{theme}": EVERYONE,
    "PATCH /themes/{theme}": ADMIN_ONLY, "DELETE /themes/{theme}": ADMIN_ONLY,
    "POST /tokens": (OWN, NONE, NONE), "GET /tokens": (OWN, NONE, NONE),
    "DELETE /tokens/{token_id}": (OWN, NONE, NONE),
    "POST /bases/{base}/rooms/{key}/stream-key": HOST_OWN,
    "DELETE /bases/{base}/rooms/{key}/stream-key": MANAGERS,
    "GET /bases/{base}/rooms/{key}/ingest": HOST_OWN,
    f"GET {SESSION}/lineup": HOST_OWN, f"PUT {SESSION}/lineup": HOST_OWN,
    f"GET {SESSION}/pins": HOST_OWN, f"POST {SESSION}/pins": HOST_OWN,
    f"POST {SESSION}/pins/{{pin}}/unpin": HOST_OWN,
    **_crud("rooms", read=HOST_OWN, create=MANAGERS, write=MANAGERS),
    **_crud("hosts", read=HOST_OWN, create=MANAGERS, write=MANAGERS),
    **_crud("merchants", read=(BASE, OWN, NONE), create=MANAGERS, write=MANAGERS),
    **_crud("products", read=(BASE, OWN, BASE), create=(BASE, OWN, NONE), write=(BASE, OWN, NONE)),
    "GET /bases/{base}/products/export": (BASE, OWN, BASE),
    "POST /bases/{base}/products/import": (BASE, OWN, NONE),
    "GET /bases/{base}/products/{key}/skus": (BASE, OWN, BASE),
    "PUT /bases/{base}/products/{key}/skus": (BASE, OWN, NONE),
    "PATCH /bases/{base}/products/{key}/skus": (BASE, OWN, NONE),
    "POST /bases/{base}/products/{key}/images": (BASE, OWN, NONE),
    **_crud("sessions", read=HOST_OWN, create=HOST_OWN, write=HOST_OWN),
    **_crud("destinations", read=HOST_OWN, create=MANAGERS, write=MANAGERS),
    **_crud("orders", read=(BASE, OWN, NONE), create=MANAGERS, write=MANAGERS),
    # Analytics: events name their base in the body (tests/test_events.py refuses other bases').
    "POST /events": MANAGERS, "GET /bases/{base}/analytics/live": MANAGERS,
    "GET /bases/{base}/rooms/{key}/live": HOST_OWN,
    "GET /bases/{base}/rankings": MANAGERS, "GET /rankings": ADMIN_ONLY,
    "POST /bases/{base}/imports/douyin-compass": MANAGERS,
    "GET /bases/{base}/reports/daily": MANAGERS, "GET /reports/daily": ADMIN_ONLY,
    **_crud("shops", read=(BASE, OWN, NONE), create=(BASE, OWN, NONE), write=(BASE, OWN, NONE)),
    "GET /bases/{base}/shops/{key}/listings": (BASE, OWN, NONE),
    "PUT /bases/{base}/shops/{key}/listings": (BASE, OWN, NONE),
    "POST /bases/{base}/shops/{key}/pull": (BASE, OWN, NONE),
}  # fmt: skip
PUBLIC = {"GET /themes", "GET /themes/{theme}", "GET /bases"}  # every role; nothing to refuse
SCOPED_ROLES = (Role.BASE_MANAGER, Role.MERCHANT, Role.HOST)
BASES = ("haifeng", "luhe")
THEME = "animation"
COLLS = ("rooms", "hosts", "merchants", "products", "sessions", "destinations", "orders", "shops")
ENDPOINTS: dict[str, Endpoint] = {
    f"{ep.method} {ep.path.removeprefix('/api/v1')}": ep for ep in all_endpoints()
}


# Connected shops point at a local WooCommerce (tests/storefront/fake_woocommerce.py), so that a
# pull really reaches a platform; set per test by the fixture below.
SHOP_API: list[str] = []


@pytest.fixture(autouse=True)
async def _shop_platform() -> AsyncIterator[None]:
    server = TestServer(FakeWooCommerce().app())
    await server.start_server()
    SHOP_API[:] = [str(server.make_url("")).rstrip("/")]
    yield
    await server.close()


@pytest.fixture(autouse=True)
def _no_unhandled_errors(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> Iterator[None]:
    """Nothing may reach the 500 handler, whether or not a test looked at that response."""
    yield
    if request.node.get_closest_marker("xfail") is None:
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert not errors, errors


@dataclass(frozen=True)
class Row:
    id: int
    key: str


@dataclass
class Scene:
    """Rows in both bases: ``own`` belongs to the base's merchant/host, ``other`` does not."""

    world: World
    rows: dict[str, dict[str, dict[str, Row]]] = field(default_factory=dict)
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def row(self, base: str, coll: str, owner: str = "own") -> Row:
        return self.rows[base][coll][owner]

    def n(self) -> int:
        return next(self.counter)


Body = Callable[[Scene, str, str], dict[str, Any]]
CRUD_BODIES: dict[str, tuple[Body, Body]] = {  # (create, update) per collection
    "rooms": (lambda s, b, o: {"slug": f"room-{s.n()}", "name_zh": "新直播间", "name_en": "Room"},
              lambda s, b, o: {"name_en": "Renamed room"}),
    "hosts": (lambda s, b, o: {"display_name": f"主播 {s.n()}",
                               "room_id": s.row(b, "rooms", o).id},
              lambda s, b, o: {"handle": "renamed"}),
    "merchants": (lambda s, b, o: {"name": f"商家 {s.n()}"}, lambda s, b, o: {"name": "renamed"}),
    "products": (lambda s, b, o: {"merchant_id": s.row(b, "merchants", o).id,
                                  "title_zh": "新品", "price_fen": 990, "stock": 5},
                 lambda s, b, o: {"stock": 42}),
    "sessions": (lambda s, b, o: {"room_id": s.row(b, "rooms", o).id,
                                  "host_id": s.row(b, "hosts", o).id, "title": "新场次"},
                 lambda s, b, o: {"title": "renamed"}),
    "destinations": (lambda s, b, o: {"room_id": s.row(b, "rooms", o).id, "name": "抖音",
                                      "platform": "douyin", "url": "rtmp://push.example.com/live",
                                      "stream_key": "platform-key-123456"},
                     lambda s, b, o: {"enabled": False}),
    "orders": (lambda s, b, o: {"platform": "douyin", "platform_order_id": f"DY-{s.n()}",
                                "product_id": s.row(b, "products", o).id,
                                "session_id": s.row(b, "sessions", o).id,
                                "amount_fen": 990, "placed_at": "2025-05-01T12:00:00+08:00"},
               lambda s, b, o: {"status": "refunded"}),
    "shops": (lambda s, b, o: {"platform": "woocommerce", "shop_ref": f"shop-{s.n()}",
                               "api_base_url": SHOP_API[0],
                               "merchant_id": s.row(b, "merchants", o).id,
                               "credentials": {"key": "ck_fake_0f1e2d3c4b5a69788796a5b4c3d2e1f0",
                                               "secret": "cs_fake_9a8b7c6d5e4f30211203f4e5d6c7b8a9",
                                               "webhook_secret": "wc-hook-secret"}},
              lambda s, b, o: {"name": "renamed"}),
}  # fmt: skip
BODIES: dict[str, Body] = {
    "POST /bases": lambda s, b, o: {"slug": f"new-base-{s.n()}", "name_zh": "新", "name_en": "N"},
    "PATCH /bases/{base}": lambda s, b, o: {"name_en": "Renamed base"},
    "POST /themes": lambda s, b, o: {"slug": f"theme-{s.n()}", "name_zh": "新", "name_en": "N"},
    "PATCH /themes/{theme}": lambda s, b, o: {"name_en": "Renamed theme"},
    "POST /tokens": lambda s, b, o: {"role": "merchant", "base": b,
                                     "merchant_id": s.row(b, "merchants", o).id},
    "POST /events": lambda s, b, o: {"events": []},
    f"PUT {SESSION}/lineup": lambda s, b, o: {"product_ids": [s.row(b, "products", o).id]},
    f"POST {SESSION}/pins": lambda s, b, o: {"product_id": s.row(b, "products", o).id},
    **{f"POST /bases/{{base}}/{c}": create for c, (create, _) in CRUD_BODIES.items()},
    **{f"PATCH /bases/{{base}}/{c}/{{key}}": update for c, (_, update) in CRUD_BODIES.items()},
    "PUT /bases/{base}/products/{key}/skus":
        lambda s, b, o: {"skus": [{"sku": "default", "price_fen": 990, "stock": 5}]},
    "PATCH /bases/{base}/products/{key}/skus": lambda s, b, o: {"sku": "default", "stock": 3},
    "PUT /bases/{base}/shops/{key}/listings": lambda s, b, o: {"listings": [
        {"external_product_id": "93", "product_id": s.row(b, "products", o).id}]},
}  # fmt: skip


@dataclass(frozen=True)
class File:
    """A file sent as the raw body, for the endpoints that take one instead of JSON."""

    content_type: str
    data: bytes


def _png() -> bytes:
    out = io.BytesIO()
    PIL.Image.new("RGB", (4, 3), (0, 128, 0)).save(out, "PNG")
    return out.getvalue()


FILES: dict[str, Callable[[Scene, str, str], File]] = {
    "POST /bases/{base}/products/import": lambda s, b, o: File("text/csv", (
        "product,merchant_id,title_zh,sku,price_fen,stock\r\n"
        f"new-{s.n()},{s.row(b, 'merchants', o).id},导入的新品,default,990,5\r\n").encode()),
    "POST /bases/{base}/products/{key}/images": lambda s, b, o: File("image/png", _png()),
    "POST /bases/{base}/imports/douyin-compass": lambda s, b, o: File("text/csv", (
        "主播昵称,开播时间,观看人数,成交金额(元)\r\n"
        f"{b} 主播 {s.n()},2025-05-01 20:00:00,1200,3456.78\r\n").encode()),
}  # fmt: skip


def params(ep_id: str) -> set[str]:
    return set(re.findall(r"{(\w+)}", ep_id))


def keyed(ep_id: str) -> bool:
    return bool(params(ep_id) & {"key", "pin", "token_id"})


def based(ep_id: str) -> bool:
    return bool(params(ep_id) & {"base", "token_id"}) or ep_id == "POST /tokens"


def collection(ep_id: str) -> str:
    parts = ep_id.split(" ", 1)[1].split("/")
    return parts[3] if len(parts) > 3 and parts[2] == "{base}" else parts[1]


@dataclass(frozen=True)
class Actor:
    name: str  # key in World.tokens
    role: Role
    home: str | None


ACTORS = [Actor("admin", Role.ADMIN, None)] + [
    Actor(f"{b}.{k}", r, b)
    for b in BASES
    for k, r in (("manager", Role.BASE_MANAGER), ("merchant", Role.MERCHANT), ("host", Role.HOST))
]


@dataclass(frozen=True)
class Target:
    base: str | None  # the base the addressed rows live in (None: not base-scoped)
    owner: str = "own"
    foreign: bool = False  # addressed under the caller's base though the rows live in `base`


def access_of(ep_id: str, role: Role) -> str:
    return "all" if role is Role.ADMIN else ACCESS[ep_id][SCOPED_ROLES.index(role)]


def targets(ep_id: str, actor: Actor) -> list[Target]:
    if not based(ep_id):
        return [Target(None)]
    owners = ("own", "other") if keyed(ep_id) else ("own",)
    out = [Target(b, o) for b in BASES for o in owners]
    if keyed(ep_id) and "base" in params(ep_id) and actor.home in (None, "haifeng"):
        out.append(Target("luhe", foreign=True))
    return out


def expected(ep_id: str, actor: Actor, t: Target) -> int:
    access = access_of(ep_id, actor.role)
    if access == NONE:
        return 403
    if t.foreign:
        return 404
    if actor.role is Role.ADMIN or t.base is None:
        return ENDPOINTS[ep_id].status
    if t.base != actor.home or (keyed(ep_id) and access == OWN and t.owner == "other"):
        return 404
    return ENDPOINTS[ep_id].status


def positive_target(ep_id: str, actor: Actor) -> Target:
    """One in-scope target per role, distinct per role so that deletes do not collide."""
    if not based(ep_id):
        return Target(None)
    if actor.role is Role.ADMIN:
        return Target("luhe")
    return Target(actor.home, "own" if access_of(ep_id, actor.role) == OWN else "other")


def request_for(scene: Scene, ep_id: str, actor: Actor, t: Target) -> tuple[str, Any]:
    ep = ENDPOINTS[ep_id]
    b = t.base or "haifeng"
    values = {"base": (actor.home or "haifeng") if t.foreign else b, "theme": THEME}
    for name, coll in (("key", collection(ep_id)), ("pin", "pins"), ("token_id", "tokens")):
        if "{" + name + "}" in ep.path:
            values[name] = scene.row(b, coll, t.owner).key
    body = BODIES[ep_id](scene, b, t.owner) if ep.body else None
    if ep_id in FILES:
        body = FILES[ep_id](scene, b, t.owner)
    return ep.path.format(**values), body


async def call(api: Api, method: str, path: str, token: str | None, body: Any = None):
    if isinstance(body, File):
        headers = {"Content-Type": body.content_type}
        status, payload = await api.call(method, path, token, data=body.data, headers=headers)
    else:
        status, payload = await api.call(method, path, token, body)
    assert status != 500, (method, path, payload)
    if status >= 400:
        err = payload["error"]
        assert set(payload) == {"error"} and err["status"] == status, payload
        assert set(err) == {"status", "code", "message", "fields"} and err["message"], payload
    return status, payload


async def ok(api: Api, method: str, path: str, token: str, body: Any = None) -> Any:
    status, payload = await call(api, method, path, token, body)
    assert status < 300, (method, path, status, payload)
    return payload


async def build_scene(world: World) -> Scene:
    api, admin, ids = world.api, world.tokens["admin"], world.ids
    scene = Scene(world)

    async def create(b: str, coll: str, path: str, body: dict[str, Any], o: str) -> Any:
        created = await ok(api, "POST", path, admin, body)
        scene.rows[b][coll][o] = Row(created["id"], str(created["id"]))
        return created

    for b in BASES:
        p = f"/api/v1/bases/{b}"
        rooms = (await ok(api, "GET", p + "/rooms", admin))["items"]
        own_room = next(r for r in rooms if r["id"] == ids[f"{b}.room"])
        other_room = next(r for r in rooms if r["id"] != own_room["id"])
        rows: dict[str, dict[str, Row]] = {c: {} for c in (*COLLS, "pins", "tokens")}
        scene.rows[b] = rows
        rows["rooms"] = {
            "own": Row(own_room["id"], own_room["slug"]),
            "other": Row(other_room["id"], other_room["slug"]),
        }
        for coll, kind in (("hosts", "host"), ("merchants", "merchant")):
            for o, name in (("own", kind), ("other", f"other_{kind}")):
                rows[coll][o] = Row(ids[f"{b}.{name}"], str(ids[f"{b}.{name}"]))

        for o in ("own", "other"):
            product_body = BODIES["POST /bases/{base}/products"](scene, b, o)
            product = await create(b, "products", p + "/products", product_body, o)
            session_body = BODIES["POST /bases/{base}/sessions"](scene, b, o)
            session = await create(b, "sessions", p + "/sessions", session_body, o)
            sp = f"{p}/sessions/{session['id']}"
            await ok(api, "PUT", sp + "/lineup", admin, {"product_ids": [product["id"]]})
            await ok(api, "PATCH", sp, admin, {"status": "live"})
            await create(b, "pins", sp + "/pins", {"product_id": product["id"]}, o)
            # A host sees the destinations of its sessions; "other" hangs on another room.
            where = {"session_id": session["id"]} if o == "own" else {"room_id": other_room["id"]}
            url = "rtmp://push.example.com/live"
            dest_body = {"name": o, "url": url, **where}
            await create(b, "destinations", p + "/destinations", dest_body, o)
            order_body = BODIES["POST /bases/{base}/orders"](scene, b, o)
            await create(b, "orders", p + "/orders", order_body, o)
            shop_body = BODIES["POST /bases/{base}/shops"](scene, b, o)
            await create(b, "shops", p + "/shops", shop_body, o)
            await ok(api, "POST", f"{p}/rooms/{rows['rooms'][o].key}/stream-key", admin)
        # "own": a token the base's manager may revoke; "other": a manager's, which it may not.
        merchant_token = {"role": "merchant", "merchant_id": ids[f"{b}.merchant"], "base": b}
        await create(b, "tokens", "/api/v1/tokens", merchant_token, "own")
        await create(b, "tokens", "/api/v1/tokens", {"role": "base_manager", "base": b}, "other")
    return scene


async def snapshot(scene: Scene) -> dict[str, Any]:
    """Everything an admin can read back through the API."""
    api, admin = scene.world.api, scene.world.tokens["admin"]
    paths = ["/api/v1/bases", "/api/v1/themes", "/api/v1/tokens"]
    for b in BASES:
        paths += [f"/api/v1/bases/{b}/{c}?limit=1000" for c in COLLS]
        for o in ("own", "other"):
            sp = f"/api/v1/bases/{b}/sessions/{scene.row(b, 'sessions', o).id}"
            paths += [sp + "/lineup", sp + "/pins"]
    return {p: await ok(api, "GET", p, admin) for p in paths}


async def db_dump(api: Api) -> dict[str, list[str]]:
    async with api.app[DB_SESSIONS]() as db:
        return {
            t.name: sorted(repr(tuple(r)) for r in (await db.execute(select(t))).all())
            for t in Model.metadata.sorted_tables
        }


def check_listing(scene: Scene, ep_id: str, actor: Actor, t: Target, payload: Any) -> None:
    """An allowed read shows exactly the rows in scope: neither fewer nor more."""
    coll = collection(ep_id)
    access = access_of(ep_id, actor.role)
    if ep_id == "GET /bases":
        slugs = [b["slug"] for b in payload["items"]]
        assert set(slugs) >= set(BASES) if actor.home is None else slugs == [actor.home]
    elif ep_id == "GET /tokens":
        got = {tok["id"] for tok in payload["items"]}
        mine = {b: {scene.row(b, "tokens", o).id for o in ("own", "other")} for b in BASES}
        if actor.home is None:
            assert got >= mine["haifeng"] | mine["luhe"]
        else:
            base_id = scene.world.ids[f"{actor.home}.base"]
            assert scene.row(actor.home, "tokens").id in got
            assert scene.row(actor.home, "tokens", "other").id not in got
            assert all(tok["base_id"] == base_id for tok in payload["items"])
            assert all(tok["role"] in ("merchant", "host") for tok in payload["items"])
    elif ep_id == f"GET /bases/{{base}}/{coll}" and t.base and coll in COLLS:
        rows = scene.rows[t.base][coll]
        want = {rows["own"].id} if access == OWN else {rows["own"].id, rows["other"].id}
        assert {item["id"] for item in payload["items"]} == want, (ep_id, actor)
    elif ep_id.endswith("/pins") and ep_id.startswith("GET") and t.base:
        assert [p["id"] for p in payload["items"]] == [scene.row(t.base, "pins", t.owner).id]
    elif ep_id.endswith("/lineup") and t.base:
        assert payload["product_ids"] == [scene.row(t.base, "products", t.owner).id]
    elif ep_id.endswith("/ingest"):
        assert payload["key_set"] is True and "stream_key" not in payload


def test_role_table_covers_every_endpoint() -> None:
    """Fails when an endpoint is added without a row here, or its declared roles drift."""
    assert set(ACCESS) == set(ENDPOINTS), set(ACCESS) ^ set(ENDPOINTS)
    for ep_id, ep in ENDPOINTS.items():
        allowed = {Role.ADMIN} | {r for r in SCOPED_ROLES if access_of(ep_id, r) != NONE}
        assert allowed == set(ep.roles), ep_id
        assert (ep.body is not None) == (ep_id in BODIES), ep_id
        assert ep.body is None or ep_id not in FILES, ep_id
        assert params(ep_id) <= {"base", "key", "pin", "token_id", "theme"}, ep_id
        cases = [(a, t, expected(ep_id, a, t)) for a in ACTORS for t in targets(ep_id, a)]
        assert any(s < 400 for _, _, s in cases), f"{ep_id}: no positive control"
        refused = [s for _, _, s in cases if s >= 400]
        assert refused or ep_id in PUBLIC, f"{ep_id}: nothing is ever refused"
        assert set(refused) <= {403, 404}


@pytest.mark.parametrize("ep_id", sorted(ENDPOINTS))
async def test_role_matrix(world: World, ep_id: str) -> None:
    scene = await build_scene(world)
    api, tokens = world.api, world.tokens
    ep = ENDPOINTS[ep_id]
    before_api = await snapshot(scene)
    refused = 0
    for actor in ACTORS:
        for t in targets(ep_id, actor):
            want = expected(ep_id, actor, t)
            if want < 400 and ep.method != "GET":
                continue  # writes in scope run once per role below
            path, body = request_for(scene, ep_id, actor, t)
            dump = await db_dump(api) if want >= 400 and ep.method != "GET" else None
            status, payload = await call(api, ep.method, path, tokens[actor.name], body)
            assert status == want, (actor.name, ep.method, path, body, payload)
            if dump is not None:
                assert await db_dump(api) == dump, f"refused {actor.name} {path} changed data"
            if want < 400:
                check_listing(scene, ep_id, actor, t, payload)
            refused += want >= 400
    assert await snapshot(scene) == before_api, "a refused call changed what an admin sees"
    assert refused or ep_id in PUBLIC
    # Positive controls: the in-scope equivalent succeeds for every role that has access.
    for name in ("haifeng.merchant", "haifeng.host", "haifeng.manager", "admin"):
        actor = next(a for a in ACTORS if a.name == name)
        if access_of(ep_id, actor.role) == NONE:
            continue
        t = positive_target(ep_id, actor)
        path, body = request_for(scene, ep_id, actor, t)
        status, payload = await call(api, ep.method, path, tokens[name], body)
        assert status == ep.status, (name, ep.method, path, body, payload)


# --- scope rules inside one base, and references across bases --------------------------------

HF = "/api/v1/bases/haifeng"
MISSING_ID = 999_999_999
Ref = Callable[[Scene], int]
BodyOf = Callable[[Scene, int], dict[str, Any]]


def _luhe(coll: str) -> Ref:
    return lambda s: s.row("luhe", coll).id


def _product(s: Scene, ref: int) -> dict[str, Any]:
    return {"merchant_id": ref, "title_zh": "跨基地", "price_fen": 1}


def _order(s: Scene, ref: int) -> dict[str, Any]:
    return {"platform": "douyin", "platform_order_id": f"X-{s.n()}", "product_id": ref,
            "amount_fen": 1, "placed_at": "2025-05-01T12:00:00+08:00"}  # fmt: skip


def _own_session(s: Scene) -> str:
    return f"{HF}/sessions/{s.row('haifeng', 'sessions').id}"


CROSS_BASE_REFS: list[tuple[str, str, str, Callable[[Scene], str], BodyOf, Ref]] = [
    ("admin", "POST", "merchant_id", lambda s: f"{HF}/products", _product, _luhe("merchants")),
    ("haifeng.manager", "POST", "merchant_id", lambda s: f"{HF}/products", _product,
     _luhe("merchants")),
    ("haifeng.manager", "POST", "room_id", lambda s: f"{HF}/sessions",
     lambda s, ref: {"room_id": ref, "title": "x"}, _luhe("rooms")),
    ("haifeng.manager", "POST", "host_id", lambda s: f"{HF}/sessions",
     lambda s, ref: {"room_id": s.row("haifeng", "rooms").id, "host_id": ref, "title": "x"},
     _luhe("hosts")),
    ("haifeng.manager", "PATCH", "room_id", lambda s: f"{HF}/hosts/{s.row('haifeng', 'hosts').id}",
     lambda s, ref: {"room_id": ref}, _luhe("rooms")),
    ("haifeng.manager", "POST", "session_id", lambda s: f"{HF}/destinations",
     lambda s, ref: {"session_id": ref, "name": "x", "url": "rtmp://a.example/live"},
     _luhe("sessions")),
    ("haifeng.manager", "POST", "product_id", lambda s: f"{HF}/orders", _order, _luhe("products")),
    ("haifeng.manager", "PUT", "product_ids", lambda s: _own_session(s) + "/lineup",
     lambda s, ref: {"product_ids": [ref]}, _luhe("products")),
    ("haifeng.host", "PUT", "product_ids", lambda s: _own_session(s) + "/lineup",
     lambda s, ref: {"product_ids": [ref]}, _luhe("products")),
    ("haifeng.host", "POST", "product_id", lambda s: _own_session(s) + "/pins",
     lambda s, ref: {"product_id": ref}, _luhe("products")),
    ("haifeng.manager", "POST", "merchant_id", lambda s: "/api/v1/tokens",
     lambda s, ref: {"role": "merchant", "base": "haifeng", "merchant_id": ref},
     _luhe("merchants")),
    ("haifeng.manager", "POST", "host_id", lambda s: "/api/v1/tokens",
     lambda s, ref: {"role": "host", "base": "haifeng", "host_id": ref}, _luhe("hosts")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("actor", "method", "field_name", "path", "body", "ref"),
    CROSS_BASE_REFS,
    ids=[f"{c[0]}-{c[1]}-{c[2]}-{i}" for i, c in enumerate(CROSS_BASE_REFS)],
)
async def test_body_reference_into_another_base_is_refused_like_a_missing_one(
    world: World, actor: str, method: str, field_name: str,
    path: Callable[[Scene], str], body: BodyOf, ref: Ref,
) -> None:  # fmt: skip
    scene = await build_scene(world)
    api, token = world.api, world.tokens[actor]
    dump = await db_dump(api)
    answers = []
    for ref_id in (ref(scene), MISSING_ID):
        status, payload = await call(api, method, path(scene), token, body(scene, ref_id))
        err = payload["error"]
        assert status == 422, err
        answers.append((err["code"], [f["field"] for f in err["fields"]]))
        assert await db_dump(api) == dump
    assert answers[0] == answers[1] and field_name in answers[0][1], answers


async def test_merchant_and_host_create_only_for_themselves(world: World) -> None:
    scene = await build_scene(world)
    api, t, ids = world.api, world.tokens, world.ids
    for merchant in (ids["haifeng.other_merchant"], ids["luhe.merchant"]):
        created = await ok(api, "POST", f"{HF}/products", t["haifeng.merchant"],
                           _product(scene, merchant))  # fmt: skip
        assert created["merchant_id"] == ids["haifeng.merchant"]
    body = {"room_id": ids["haifeng.room"], "host_id": ids["haifeng.other_host"], "title": "x"}
    created = await ok(api, "POST", f"{HF}/sessions", t["haifeng.host"], body)
    assert created["host_id"] == ids["haifeng.host"]


MANAGER_LIMITS = [
    ("POST", "/api/v1/tokens", {"role": "admin"}, 403),
    ("POST", "/api/v1/tokens", {"role": "base_manager", "base": "haifeng"}, 403),
    ("POST", "/api/v1/bases", {"slug": "rogue", "name_zh": "x", "name_en": "x"}, 403),
    ("DELETE", f"{HF}", None, 403),
    ("POST", "/api/v1/themes", {"slug": "rogue", "name_zh": "x", "name_en": "x"}, 403),
    ("PATCH", f"/api/v1/themes/{THEME}", {"name_en": "x"}, 403),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), MANAGER_LIMITS)
async def test_base_manager_cannot_do_admin_things(
    world: World, method: str, path: str, body: Any, status: int
) -> None:
    api = world.api
    dump = await db_dump(api)
    got, payload = await call(api, method, path, world.tokens["haifeng.manager"], body)
    assert got == status and payload["error"]["code"] == "forbidden"
    assert await db_dump(api) == dump


def _session_in_other_room(s: Scene, room: int) -> tuple[str, str, dict[str, Any]]:
    return "POST", f"{HF}/sessions", {"room_id": room, "title": "sneaky"}


def _hand_session_over(s: Scene, host: int) -> tuple[str, str, dict[str, Any]]:
    return "PATCH", _own_session(s), {"host_id": host}


HOST_OVERREACH = [
    pytest.param(_session_in_other_room, "rooms", id="plan-session-in-another-room"),
    pytest.param(_hand_session_over, "hosts", id="hand-own-session-to-another-host"),
]


@pytest.mark.parametrize(("make", "coll"), HOST_OVERREACH)
async def test_host_overreach_is_refused_and_changes_nothing(
    world: World, make: Callable[..., Any], coll: str
) -> None:
    scene = await build_scene(world)
    api = world.api
    dump = await db_dump(api)
    method, path, body = make(scene, scene.row("haifeng", coll, "other").id)
    status, _ = await call(api, method, path, world.tokens["haifeng.host"], body)
    assert 400 <= status < 500
    assert await db_dump(api) == dump


@pytest.mark.parametrize(("make", "coll"), HOST_OVERREACH)
async def test_host_overreach_answers_403_or_404(
    world: World, make: Callable[..., Any], coll: str
) -> None:
    scene = await build_scene(world)
    method, path, body = make(scene, scene.row("haifeng", coll, "other").id)
    status, _ = await call(world.api, method, path, world.tokens["haifeng.host"], body)
    assert status in (403, 404)
