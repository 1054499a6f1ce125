"""The routes: the lab's `/api/Balance/...`, ours beside them, Prometheus, OpenAPI and Swagger UI.

Handlers only read store snapshots (no Kafka call, no wait on the worker). The lab's paths
are matched case-insensitively, as ASP.NET does; path values (customer ids) keep their case.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from importlib.resources import files
from typing import Annotated, Any

from fastapi import FastAPI, Header, Path, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry
from starlette.convertors import Convertor, register_url_convertor

from balance_tui import __version__
from balance_tui.api import documents, exact_json, schemas
from balance_tui.api.prometheus import build_registry, exposition
from balance_tui.api.store import ApiStore, StreamEvent
from balance_tui.core.assignment import utc_now

PREFIX = "/api/Balance"
#: The lab's endpoints and ours under PREFIX, as their canonical (lower-case) first segment.
ENDPOINTS = ("balances", "metrics", "rebalancing-history", "health", "group", "partitions", "events")
#: Other paths, matched case-insensitively too.
TOP_LEVEL_PATHS = ("/swagger", "/swagger/index.html", "/swagger/v1/swagger.json", "/openapi.json", "/metrics",
                   "/livez")
#: The consumer thread posts a snapshot every 1/refresh_hz s in every state (idle, paused, joining,
#: rebalancing); its longest legitimate silence is a changelog flush before a commit (30 s at most).
LIVENESS_STALL_SECONDS = 60.0
#: Live event streams served at once; more get 503 (each holds a connection and a queue).
MAX_STREAMS = 16
#: Event batches queued for one stream client; a client that reads slower is dropped (`overflow`).
STREAM_QUEUE = 256
PING_SECONDS = 15.0
#: `/balances` is re-encoded at most this often while balances change (10,000 customers: ~40 ms each).
BALANCES_REFRESH_SECONDS = 0.5
SWAGGER_ASSETS = "/swagger/assets"

DESCRIPTION = """\
One member of the consumer group, as the lab's EBankingBalanceAPI: the balances of the customers
on its partitions, its partitions and offsets, its rebalancing history and health. Every member
answers for itself: scale the deployment and ask each pod.

Amounts are exact JSON numbers written from Decimal (e.g. `3800.00`), never through a float.
Beyond the lab: `/api/Balance/group`, `/api/Balance/partitions`, a live event stream at
`/api/Balance/events` (server-sent events), Prometheus at `/metrics`, liveness at `/livez`.
"""

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_CANONICAL_TOP = {path.translate(_ASCII_LOWER): path for path in TOP_LEVEL_PATHS}
_PREFIX_LOWER = (PREFIX + "/").translate(_ASCII_LOWER)


def canonical_path(path: str) -> str:
    """`/API/balance/Balances/CUST-001` -> `/api/Balance/balances/CUST-001`; unknown paths unchanged."""
    lowered = path.translate(_ASCII_LOWER)
    if lowered in _CANONICAL_TOP:
        return _CANONICAL_TOP[lowered]
    if not lowered.startswith(_PREFIX_LOWER):
        return path
    rest = path[len(_PREFIX_LOWER):]
    name, separator, tail = rest.partition("/")
    folded = name.translate(_ASCII_LOWER)
    if folded not in ENDPOINTS:
        return path
    return f"{PREFIX}/{folded}{separator}{tail}"


class CaseInsensitivePaths:
    """ASGI middleware: route the lab's paths whatever their case, as ASP.NET routing does."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path = canonical_path(scope["path"])
            if path != scope["path"]:
                scope = {**scope, "path": path, "raw_path": path.encode("utf-8")}
        await self.app(scope, receive, send)


class CustomerIdConvertor(Convertor[str]):
    """The rest of the path, newlines and slashes included: every customer id gets the lab's 404 body.

    Starlette's `path` convertor stops at a newline (`.*`), which would leave such ids to the
    router's own 404 instead.
    """

    regex = "(?s:.+)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("customer_id", CustomerIdConvertor())


class ExactJSONResponse(JSONResponse):
    """JSON with Decimal amounts as exact numbers (`exact_json`)."""

    def render(self, content: Any) -> bytes:
        return exact_json.dumps(content)


class _StreamClient:
    __slots__ = ("closed", "overflowed", "queue")

    def __init__(self) -> None:
        self.queue: asyncio.Queue[list[StreamEvent] | None] = asyncio.Queue(maxsize=STREAM_QUEUE)
        self.overflowed = False
        self.closed = False


class StreamHub:
    """Fans the store's new events out to the stream clients, inside the server's event loop."""

    def __init__(self, store: ApiStore, max_clients: int = MAX_STREAMS) -> None:
        self.store = store
        self.max_clients = max_clients
        self._clients: set[_StreamClient] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start relaying (called in the server's loop before it serves)."""
        self._loop = loop
        self.store.subscribe(self._from_updater)

    def detach(self) -> None:
        self.store.unsubscribe(self._from_updater)
        for client in self._clients:
            client.closed = True
            try:
                client.queue.put_nowait(None)
            except asyncio.QueueFull:
                pass  # it wakes on the batches already queued and sees `closed`

    def _from_updater(self, events: list[StreamEvent]) -> None:
        # On the store's updater thread: hand over to the loop and return at once.
        loop = self._loop
        if loop is None or not self._clients:
            return
        try:
            loop.call_soon_threadsafe(self._publish, events)
        except RuntimeError:  # the loop is closed: the server is stopping
            pass

    def _publish(self, events: list[StreamEvent]) -> None:
        for client in self._clients:
            if client.overflowed:
                continue
            try:
                client.queue.put_nowait(events)
            except asyncio.QueueFull:
                client.overflowed = True

    def connect(self) -> _StreamClient | None:
        if len(self._clients) >= self.max_clients:
            return None
        client = _StreamClient()
        self._clients.add(client)
        return client

    def disconnect(self, client: _StreamClient) -> None:
        self._clients.discard(client)


def _sse(event: str, data: dict[str, Any], event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return head.encode() + f"event: {event}\n".encode() + b"data: " + exact_json.dumps(data) + b"\n\n"


def create_app(store: ApiStore, hub: StreamHub | None = None, *,
               clock: Callable[[], datetime] = utc_now,
               stall_seconds: float = LIVENESS_STALL_SECONDS) -> FastAPI:
    """The FastAPI application over `store`; `hub` relays live events (made here if not given)."""
    hub = hub or StreamHub(store)
    app = FastAPI(title="E-Banking Balance API (balance-tui)", version=__version__, description=DESCRIPTION,
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    app.state.hub = hub
    registry = build_registry(store)
    # In this order: it is the order of the paths in the OpenAPI document.
    _add_lab_routes(app, store, clock)
    _add_our_routes(app, store, hub)
    _add_operations_routes(app, store, registry, stall_seconds)
    _add_swagger_routes(app)
    app.add_middleware(CaseInsensitivePaths)
    return app


def _json_response(document: dict[str, Any], status_code: int = 200) -> Response:
    return ExactJSONResponse(document, status_code=status_code)


def _add_lab_routes(app: FastAPI, store: ApiStore, clock: Callable[[], datetime]) -> None:
    """The lab's EBankingBalanceAPI endpoints (tag "Balance")."""
    # (rows, body, built at): a client polling /balances makes at most 2 encodings a second, so it
    # cannot take the interpreter from the consumer thread for long.
    balances_cache: list[Any] = [None, b"", -1e9]

    @app.get(f"{PREFIX}/balances", response_class=ExactJSONResponse, response_model=None, tags=["Balance"],
             summary="Every customer's balance on this member's partitions",
             responses={200: {"model": schemas.BalanceList}})
    async def get_balances() -> Response:
        now = time.monotonic()
        cached_rows, body, built_at = balances_cache
        if cached_rows is None or (now - built_at >= BALANCES_REFRESH_SECONDS and store.balances() is not cached_rows):
            rows = store.balances()
            body = documents.balances_body(rows)
            balances_cache[:] = [rows, body, now]
        return Response(body, media_type="application/json")

    @app.get(PREFIX + "/balances/{customerId:customer_id}", response_class=ExactJSONResponse, response_model=None,
             tags=["Balance"], summary="One customer's balance",
             responses={200: {"model": schemas.CustomerBalance},
                        404: {"model": schemas.NotFound, "description": "not held by this member"}})
    async def get_balance(customer_id: Annotated[str, Path(alias="customerId", min_length=1)]) -> Response:
        rows = store.customer(customer_id)
        if not rows:
            return _json_response(documents.not_found_document(customer_id), 404)
        return _json_response(documents.customer_document(rows))

    @app.get(f"{PREFIX}/metrics", response_class=ExactJSONResponse, response_model=None, tags=["Balance"],
             summary="The consumer's metrics: partitions, offsets, counters, rebalancing history",
             responses={200: {"model": schemas.ConsumerGroupMetrics}})
    async def get_metrics() -> Response:
        return _json_response(documents.metrics_document(store.snapshot()))

    @app.get(f"{PREFIX}/rebalancing-history", response_class=ExactJSONResponse, response_model=None,
             tags=["Balance"], summary="Assignments, revocations and the rest of the timeline, newest first",
             responses={200: {"model": schemas.RebalancingHistory}})
    async def get_rebalancing_history() -> Response:
        return _json_response(documents.rebalancing_history_document(store.snapshot()))

    @app.get(f"{PREFIX}/health", response_class=ExactJSONResponse, response_model=None, tags=["Balance"],
             summary="Healthy while consuming (200), Degraded otherwise (503): for readiness probes",
             responses={200: {"model": schemas.Health}, 503: {"model": schemas.Health, "description": "Degraded"}})
    async def get_health() -> Response:
        document, healthy = documents.health_document(store.snapshot(), clock())
        return _json_response(document, 200 if healthy else 503)


def _add_our_routes(app: FastAPI, store: ApiStore, hub: StreamHub) -> None:
    """What the lab's API does not have: the group, the partitions, the live event stream."""
    @app.get(f"{PREFIX}/group", response_class=ExactJSONResponse, response_model=None, tags=["Beyond the lab"],
             summary="The group as this member sees it (the dashboard's Group panel)",
             responses={200: {"model": schemas.GroupView}})
    async def get_group() -> Response:
        return _json_response(documents.group_document(store.snapshot()))

    @app.get(f"{PREFIX}/partitions", response_class=ExactJSONResponse, response_model=None,
             tags=["Beyond the lab"], summary="Every partition: owner, position, high watermark, lag, state",
             responses={200: {"model": schemas.PartitionList}})
    async def get_partitions() -> Response:
        return _json_response(documents.partitions_document(store.snapshot()))

    @app.get(f"{PREFIX}/events", response_class=StreamingResponse, tags=["Beyond the lab"],
             summary="Rebalance events as they happen (server-sent events)",
             description="`text/event-stream`: first a `hello` event (status and assignment now), then one "
                         "event per timeline entry (`assigned`, `revoked`, `lost`, `restored`, ...; data as "
                         "in `rebalancingHistory`) and per status change (`status`), each with an `id`. "
                         "Reconnect with `Last-Event-ID` to get the kept events after it. A client that reads "
                         "too slowly gets `overflow` and is disconnected. `curl -N` follows it.",
             responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
                              "description": "the stream"},
                        503: {"model": schemas.NotFound, "description": f"{MAX_STREAMS} streams already open"}})
    async def get_events(last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None) -> Response:
        client = hub.connect()
        if client is None:
            return _json_response({"error": f"too many event streams (at most {MAX_STREAMS})"}, 503)
        after = int(last_event_id) if last_event_id is not None and last_event_id.isdigit() else None
        return StreamingResponse(_stream(store, hub, client, after), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _add_operations_routes(app: FastAPI, store: ApiStore, registry: CollectorRegistry, stall_seconds: float) -> None:
    """Liveness and Prometheus, for the platform rather than for people."""
    @app.get("/livez", response_class=ExactJSONResponse, response_model=None, tags=["Operations"],
             summary="Liveness: fails only when the consumer thread is stuck or gone",
             responses={200: {"model": schemas.Liveness}, 503: {"model": schemas.Liveness}})
    async def get_liveness() -> Response:
        document, alive = documents.liveness_document(store.worker_silence(), stall_seconds,
                                                      store.snapshot().stopped_reason)
        return _json_response(document, 200 if alive else 503)

    @app.get("/metrics", response_class=PlainTextResponse, tags=["Operations"],
             summary="Prometheus metrics (text format; OpenMetrics when asked for)",
             responses={200: {"content": {"text/plain": {"schema": {"type": "string"}},
                                          "application/openmetrics-text": {"schema": {"type": "string"}}}}})
    async def get_prometheus(request: Request) -> Response:
        body, content_type = exposition(registry, request.headers.get("accept", ""))
        return Response(body, media_type=content_type)


def _add_swagger_routes(app: FastAPI) -> None:
    """Swagger UI, from the package's own files: no page loads anything from elsewhere."""
    app.mount(SWAGGER_ASSETS, StaticFiles(directory=str(files("fastapi_offline") / "static")), name="swagger-assets")

    @app.get("/swagger", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title="E-Banking Balance API - Swagger UI",
            swagger_js_url=f"{SWAGGER_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER_ASSETS}/favicon.png",
            oauth2_redirect_url=None,
            # validatorUrl: Swagger UI would otherwise send the document to validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None, "displayRequestDuration": True, "tryItOutEnabled": True},
        )

    @app.get("/swagger/index.html", include_in_schema=False)
    async def swagger_index() -> RedirectResponse:  # Swashbuckle's page path
        return RedirectResponse("/swagger")

    @app.get("/swagger/v1/swagger.json", include_in_schema=False)
    async def swashbuckle_document() -> JSONResponse:  # the lab's document path
        return JSONResponse(app.openapi())


async def _stream(store: ApiStore, hub: StreamHub, client: _StreamClient, after: int | None) -> AsyncIterator[bytes]:
    try:
        snapshot = store.snapshot()
        yield _sse("hello", documents.stream_hello_document(snapshot))
        seen = after if after is not None else 0
        if after is not None:
            for event in store.events_after(after):
                yield _sse(event.kind, documents.event_document(event, snapshot.consumer_id), event.id)
                seen = event.id
        while not client.closed:
            try:
                events = await asyncio.wait_for(client.queue.get(), PING_SECONDS)
            except TimeoutError:
                yield b": ping\n\n"
                continue
            if events is None:
                break
            consumer_id = store.snapshot().consumer_id
            for event in events:
                if event.id > seen:  # a reconnecting client may have had it in the replay
                    yield _sse(event.kind, documents.event_document(event, consumer_id), event.id)
                    seen = event.id
            if client.overflowed and client.queue.empty():
                yield _sse("overflow", {"error": f"more than {STREAM_QUEUE} batches behind: reconnect with "
                                                 "Last-Event-ID"})
                break
    finally:
        hub.disconnect(client)
