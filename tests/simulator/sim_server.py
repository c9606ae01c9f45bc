# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTTP front end of the simulator: routing, authentication, rate limits, faults, request log, state file.

API requests go to ``/api/v1/...`` and behave like the Lambda Cloud API.
``/_simulator/...`` is the control API used by tests: no authentication, never
rate-limited or faulted, not recorded in the request log.
"""

from __future__ import annotations

import base64
import binascii
import collections
import dataclasses
import fnmatch
import json
import math
import re
import socket
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import parse_qsl, urlsplit

import sim_seeding
import sim_state_file
from sim_account import Account
from sim_account_base import Timing
from sim_addresses import AddressPool
from sim_validation import ApiError, check_keys, expect_object, get_int, get_str, invalid, type_name

if TYPE_CHECKING:
    from fabric_client import NodeFabric

API_PREFIX = "/api/v1"
CONTROL_PREFIX = "/_simulator"
MAX_BODY_BYTES = 64 * 1024 * 1024
REQUEST_LOG_LIMIT = 100_000  # the oldest entries are dropped beyond this
IDEMPOTENCY_SECONDS = 24 * 3600  # how long a launch's Idempotency-Key is remembered
SUGGEST_RETRY = "Try again later. Contact Support if the problem persists."
DEFAULT_FAULT_CODES = {
    400: "global/invalid-parameters",
    401: "global/invalid-api-key",
    403: "global/account-inactive",
    404: "global/object-does-not-exist",
    409: "global/internal-error",
    429: "global/rate-limited",
    502: "provider/internal-unavailable",
    503: "provider/internal-unavailable",
    504: "provider/internal-unavailable",
}
UNAUTHORIZED = ApiError(
    401,
    "global/invalid-api-key",
    "API key was invalid, expired, or deleted.",
    "Check your API key or create a new one, then try again.",
)


@dataclass
class Settings:
    """Command line settings; the timing and limits can also be changed through ``/_simulator/config``."""

    api_key: str = "sim-api-key"
    boot_seconds: float = 5.0
    terminate_seconds: float = 2.0
    launch_interval: float = 0.0
    rate_limit: int = 0
    # Whether a launch's Idempotency-Key is honoured. The real API does not document the header, so the launch
    # protocol's tests switch this off: nothing may depend on it.
    idempotency: bool = True
    state_file: str | None = None
    verbose: bool = False


@dataclass
class Response:
    """What to answer; ``drop`` closes the connection without any answer."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
        return cls(status, json.dumps(payload).encode("utf-8"), headers=headers or {})

    @classmethod
    def error(cls, error: ApiError) -> Response:
        return cls.json(error.status, error.envelope(), dict(error.headers))


@dataclass
class Fault:
    """A queued failure for the next ``count`` API requests that match ``method`` and ``path``."""

    path: str
    method: str | None = None
    status: int | None = None
    code: str | None = None
    message: str | None = None
    suggestion: str | None = None
    count: int = 1
    after_processing: bool = False
    retry_after: float | None = None
    delay_seconds: float = 0.0
    drop_connection: bool = False
    body: str | None = None
    content_type: str | None = None

    FIELDS = (
        "path",
        "method",
        "status",
        "code",
        "message",
        "suggestion",
        "count",
        "after_processing",
        "retry_after",
        "delay_seconds",
        "drop_connection",
        "body",
        "content_type",
    )

    @classmethod
    def parse(cls, raw: Any, where: str) -> Fault:
        obj = expect_object(raw, where)
        check_keys(obj, cls.FIELDS, ("path",), where)
        values = {key: value for key, value in obj.items() if value is not None}
        if "path" not in values:
            raise invalid(f"Field '{where}.path' is required: the API path (or fnmatch glob) the fault applies to.")
        for key in ("path", "method", "code", "message", "suggestion", "body", "content_type"):
            get_str(values, key, where)
        get_int(values, "status", where, minimum=100, maximum=599)
        get_int(values, "count", where, minimum=1)
        for key in ("retry_after", "delay_seconds"):
            value = values.get(key, 0)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise invalid(f"Field '{where}.{key}' must be a non-negative number, not {type_name(value)}.")
        for key in ("after_processing", "drop_connection"):
            if not isinstance(values.get(key, False), bool):
                raise invalid(f"Field '{where}.{key}' must be a boolean.")
        fault = cls(**values)
        if fault.method in ("*", ""):
            fault.method = None
        if fault.method:
            fault.method = fault.method.upper()
        return fault

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        return self.path == path or fnmatch.fnmatchcase(path, self.path)

    @property
    def answers(self) -> bool:
        """Whether the fault replaces the answer (otherwise it only delays the real one)."""
        return self.status is not None or self.body is not None or (not self.delay_seconds and not self.drop_connection)

    def response(self) -> Response:
        if self.drop_connection:
            return Response(0, drop=True)
        status = self.status or 500
        headers = {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(math.ceil(self.retry_after))
        if self.body is not None:
            return Response(status, self.body.encode("utf-8"), self.content_type or guess_type(self.body), headers)
        code = self.code or DEFAULT_FAULT_CODES.get(status, "global/internal-error")
        error = ApiError(
            status,
            code,
            self.message or f"Simulated failure ({status} {code}).",
            self.suggestion or SUGGEST_RETRY,
        )
        return Response.json(status, error.envelope(), headers)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def guess_type(body: str) -> str:
    text = body.lstrip()
    if text.startswith("<"):
        return "text/html; charset=utf-8"
    try:
        json.loads(text)
    except ValueError:
        return "text/plain; charset=utf-8"
    return "application/json"


Route = tuple[str, "re.Pattern[str]", Callable[..., Any]]


class Simulator:
    """The simulated service behind the HTTP handler. All state changes happen under ``self.lock``."""

    def __init__(self, settings: Settings, fabric: NodeFabric | None = None) -> None:
        self.settings = settings
        self.defaults = dataclasses.replace(settings)  # what a reset goes back to
        self.timing = Timing(settings.boot_seconds, settings.terminate_seconds)
        self.lock = threading.RLock()
        self.fabric = fabric  # with --nodes: it hears of the instances' lifecycle and serves /_simulator/nodes
        self.account = Account(self.timing, fabric, AddressPool(check_port=22 if fabric is not None else None))
        self.faults: list[Fault] = []
        self.request_log: collections.deque[dict[str, Any]] = collections.deque(maxlen=REQUEST_LOG_LIMIT)
        self.recent_requests: collections.deque[float] = collections.deque()
        self.last_launch: float | None = None
        # Idempotency-Key -> (when, request body, instance ids) of the launches that carried one.
        self.idempotency: dict[str, tuple[float, bytes, tuple[str, ...]]] = {}
        self.routes = self._api_routes()
        if settings.state_file:
            sim_state_file.load(self.account, settings.state_file)

    # ------------------------------------------------------------------ plumbing

    def _api_routes(self) -> list[Route]:
        account = self.account
        table: list[tuple[str, str, Callable[..., Any]]] = [
            ("GET", "/instances", self._list_instances),
            ("GET", "/instances/{id}", lambda ctx, iid: account.get_instance(iid)),
            ("POST", "/instances/{id}", lambda ctx, iid: account.rename_instance(iid, ctx.body, ctx.now)),
            ("GET", "/instance-types", lambda ctx: account.instance_types()),
            ("POST", "/instance-operations/launch", self._launch),
            (
                "POST",
                "/instance-operations/restart",
                lambda ctx: {"restarted_instances": account.restart(ctx.body, ctx.now)},
            ),
            (
                "POST",
                "/instance-operations/terminate",
                lambda ctx: {"terminated_instances": account.terminate(ctx.body, ctx.now)},
            ),
            ("GET", "/ssh-keys", lambda ctx: account.list_ssh_keys()),
            ("POST", "/ssh-keys", lambda ctx: account.add_ssh_key(ctx.body, ctx.now)),
            ("DELETE", "/ssh-keys/{id}", lambda ctx, kid: account.delete_ssh_key(kid, ctx.now)),
            ("GET", "/file-systems", lambda ctx: account.list_file_systems()),
            ("POST", "/filesystems", lambda ctx: account.create_file_system(ctx.body, ctx.now)),
            ("DELETE", "/filesystems/{id}", lambda ctx, fid: account.delete_file_system(fid, ctx.now)),
            ("GET", "/images", lambda ctx: account.list_images()),
            ("GET", "/firewall-rules", lambda ctx: account.firewall_rules),
            ("PUT", "/firewall-rules", lambda ctx: account.set_firewall_rules(ctx.body, ctx.now)),
            ("GET", "/firewall-rulesets", lambda ctx: account.list_rulesets()),
            ("POST", "/firewall-rulesets", lambda ctx: account.create_ruleset(ctx.body, ctx.now)),
            ("GET", "/firewall-rulesets/global", lambda ctx: account.global_ruleset()),
            ("PATCH", "/firewall-rulesets/global", lambda ctx: account.patch_global_ruleset(ctx.body, ctx.now)),
            ("GET", "/firewall-rulesets/{id}", lambda ctx, rid: account.get_ruleset(rid)),
            ("PATCH", "/firewall-rulesets/{id}", lambda ctx, rid: account.patch_ruleset(rid, ctx.body, ctx.now)),
            ("DELETE", "/firewall-rulesets/{id}", lambda ctx, rid: account.delete_ruleset(rid, ctx.now)),
            ("GET", "/audit-events", lambda ctx: account.audit_events(ctx.query)),
        ]
        return [
            (method, re.compile("^" + API_PREFIX + path.replace("{id}", "([^/]+)") + "$"), handler)
            for method, path, handler in table
        ]

    def save(self) -> None:
        """Write the account to the state file, if there is one."""
        if self.settings.state_file:
            sim_state_file.save(self.account, self.settings.state_file)

    def _save_if_changed(self, method: str) -> None:
        if method != "GET" and self.account.dirty:
            self.save()

    # ------------------------------------------------------------------ API requests

    def take_fault(self, method: str, path: str) -> Fault | None:
        """The first queued fault matching the request, with its count used up by one."""
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.count -= 1
                    if fault.count <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def log_request(self, method: str, path: str, query: str, at: float) -> dict[str, Any]:
        """Record an API request on arrival; its status (None while in flight) is filled in by :meth:`log_status`."""
        entry = {"method": method, "path": path, "query": query, "status": None, "at": at}
        with self.lock:
            self.request_log.append(entry)
        return entry

    def log_status(self, entry: dict[str, Any], status: int) -> None:
        with self.lock:
            entry["status"] = status

    def process_api(self, request: RequestContext) -> Response:
        """Rate limit, authenticate, route and run one API request; the caller holds no lock."""
        with self.lock:
            try:
                self._rate_limit(request.now)
                if not self._authorized(request.authorization):
                    raise UNAUTHORIZED
                handler, args = self._route(request.method, request.path)
                self.account.advance(request.now)
                result = handler(request, *args)
                response = result if isinstance(result, Response) else Response.json(200, {"data": result})
            except ApiError as error:
                response = Response.error(error)
            except Exception:  # pylint: disable=broad-exception-caught
                traceback.print_exc()
                response = Response.error(ApiError(500, "global/internal-error", "Simulator bug.", SUGGEST_RETRY))
            self._save_if_changed(request.method)
            return response

    def _rate_limit(self, now: float) -> None:
        limit = self.settings.rate_limit
        if limit <= 0:
            return
        window = self.recent_requests
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= limit:
            raise ApiError(
                429,
                "global/rate-limited",
                f"Too many requests: at most {limit} API requests per second are allowed.",
                "Wait a second before sending more requests.",
                {"Retry-After": "1"},
            )
        window.append(now)

    def _authorized(self, header: str | None) -> bool:
        if not header:
            return False
        scheme, _sep, credentials = header.strip().partition(" ")
        credentials = credentials.strip()
        key = self.settings.api_key
        if scheme.lower() == "bearer":
            return credentials == key
        if scheme.lower() != "basic":
            return False
        # "Basic base64(KEY:)" as curl -u sends it, and per the reference also "Basic KEY" (with or without ":").
        for candidate in (credentials, credentials.rstrip(":")):
            if candidate == key:
                return True
            try:
                decoded = base64.b64decode(candidate, validate=True).decode("utf-8")
            except (binascii.Error, ValueError):
                continue
            if decoded.partition(":")[0] == key:
                return True
        return False

    def _route(self, method: str, path: str) -> tuple[Callable[..., Any], tuple[str, ...]]:
        allowed = []
        for route_method, pattern, handler in self.routes:
            match = pattern.match(path)
            if match:
                if route_method == method:
                    return handler, match.groups()
                allowed.append(route_method)
        if allowed:
            raise ApiError(
                405,
                "global/method-not-allowed",
                f"Method {method} is not allowed for {path}.",
                f"Use one of: {', '.join(allowed)}.",
                {"Allow": ", ".join(allowed)},
            )
        raise ApiError(
            404,
            "global/not-found",
            f"No API endpoint at {path}.",
            "Check the URL; the API lives under /api/v1 (for example /api/v1/instances).",
        )

    def _list_instances(self, request: RequestContext) -> Any:
        cluster_id = request.query.get("cluster_id")
        if cluster_id:
            return [item for item in self.account.instances.values() if item.get("cluster_id") == cluster_id]
        return Response(200, self.account.list_instances_body())

    def _launch(self, request: RequestContext) -> dict[str, Any]:
        """Launch, honouring an ``Idempotency-Key``: a repeat of a launch answers as the first one did."""
        key = request.idempotency_key if self.settings.idempotency else None
        if key is not None:
            seen = self.idempotency.get(key)
            if seen is not None and request.now - seen[0] <= IDEMPOTENCY_SECONDS:
                if seen[1] != request.raw_body:
                    raise ApiError(
                        422,
                        "global/idempotency-key-reused",
                        "This Idempotency-Key was used for a different request.",
                        "Use a new key for each distinct launch request.",
                    )
                return {"instance_ids": list(seen[2])}
        interval = self.settings.launch_interval
        if interval > 0 and self.last_launch is not None:
            wait = self.last_launch + interval - request.now
            if wait > 0:
                raise ApiError(
                    429,
                    "global/rate-limited",
                    f"Too many launch requests: at most one launch every {interval:g} seconds is allowed.",
                    f"Wait {math.ceil(wait)} seconds before launching again.",
                    {"Retry-After": str(max(1, math.ceil(wait)))},
                )
        self.last_launch = request.now
        ids = self.account.launch(request.body, request.now)
        if key is not None:
            self.idempotency[key] = (request.now, request.raw_body, tuple(ids))
        return {"instance_ids": ids}

    # ------------------------------------------------------------------ control API

    def process_control(self, method: str, path: str, raw_body: bytes) -> Response:
        with self.lock:
            try:
                response = self._control(method, path[len(CONTROL_PREFIX) :].rstrip("/"), raw_body)
            except ApiError as error:
                response = Response.error(error)
            self._save_if_changed(method)
            return response

    def _control(self, method: str, name: str, raw_body: bytes) -> Response:
        now = time.time()
        if (method, name) == ("POST", "/reset"):
            self.account.reset()
            self.faults.clear()
            self.request_log.clear()
            self.recent_requests.clear()
            self.last_launch = None
            self.idempotency.clear()
            self.timing.boot_seconds = self.defaults.boot_seconds
            self.timing.terminate_seconds = self.defaults.terminate_seconds
            self.settings.launch_interval = self.defaults.launch_interval
            self.settings.rate_limit = self.defaults.rate_limit
            self.settings.idempotency = self.defaults.idempotency
            return Response.json(200, {"reset": True})
        if name == "/state" and method in ("GET", "POST"):
            self.account.advance(now)
            if method == "POST":
                return Response.json(200, sim_seeding.merge(self.account, parse_json(raw_body), now))
            return Response.json(200, sim_seeding.snapshot_view(self.account))
        if name == "/faults" and method in ("GET", "POST", "DELETE"):
            if method == "POST":
                body = parse_json(raw_body)
                items = body if isinstance(body, list) else [body]
                self.faults.extend(Fault.parse(item, f"faults[{index}]") for index, item in enumerate(items))
            elif method == "DELETE":
                self.faults.clear()
            return Response.json(200, {"faults": [fault.to_dict() for fault in self.faults]})
        if name == "/requests" and method in ("GET", "DELETE"):
            if method == "DELETE":
                self.request_log.clear()
            return Response.json(200, {"requests": list(self.request_log)})
        if name == "/config" and method in ("GET", "POST"):
            if method == "POST":
                self._configure(parse_json(raw_body))
            return Response.json(200, self._config_view())
        if name == "/nodes" and method == "GET":
            return Response.json(200, self._nodes_view(now))
        if name.startswith("/instances/") and method == "POST":
            self.account.advance(now)
            return Response.json(200, self.account.control_instance(name[len("/instances/") :], parse_json(raw_body)))
        if name.startswith("/nodes/") and method == "POST":
            return Response.json(200, self._configure_node(name[len("/nodes/") :], parse_json(raw_body), now))
        raise ApiError(404, "global/not-found", f"No control endpoint {method} {CONTROL_PREFIX}{name}.")

    def _nodes_view(self, now: float) -> dict[str, Any]:
        if self.fabric is None:
            return {"enabled": False, "nodes": []}
        self.account.advance(now)
        names = {instance_id: instance.get("name") for instance_id, instance in self.account.instances.items()}
        return self.fabric.view(names)

    def _configure_node(self, instance_id: str, body: Any, now: float) -> dict[str, Any]:
        if self.fabric is None:
            raise invalid("The node fabric is off: this simulator has no nodes.", "Start the simulator with --nodes.")
        self.account.advance(now)
        instance = self.account.instances.get(instance_id) or {}
        return self.fabric.configure(instance_id, body, instance.get("name"))

    def _config_view(self) -> dict[str, Any]:
        return {
            "boot_seconds": self.timing.boot_seconds,
            "terminate_seconds": self.timing.terminate_seconds,
            "launch_interval": self.settings.launch_interval,
            "rate_limit": self.settings.rate_limit,
            "idempotency": self.settings.idempotency,
        }

    def _configure(self, body: Any) -> None:
        obj = expect_object(body)
        check_keys(obj, tuple(self._config_view()))
        for key, value in obj.items():
            if key == "idempotency":
                if not isinstance(value, bool):
                    raise invalid("Field 'idempotency' must be true or false.")
            elif isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise invalid(f"Field '{key}' must be a non-negative number.")
        if "boot_seconds" in obj:
            self.timing.boot_seconds = float(obj["boot_seconds"])
        if "terminate_seconds" in obj:
            self.timing.terminate_seconds = float(obj["terminate_seconds"])
        if "launch_interval" in obj:
            self.settings.launch_interval = float(obj["launch_interval"])
        if "rate_limit" in obj:
            self.settings.rate_limit = int(obj["rate_limit"])
        if "idempotency" in obj:
            self.settings.idempotency = obj["idempotency"]


@dataclass
class RequestContext:
    """One parsed API request as the route handlers see it."""

    method: str
    path: str
    query: dict[str, str]
    authorization: str | None
    raw_body: bytes
    now: float
    idempotency_key: str | None = None

    @property
    def body(self) -> Any:
        return parse_json(self.raw_body)


def parse_json(raw: bytes) -> Any:
    """The JSON request body, None when empty, or a 400 naming the problem."""
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise invalid(
            f"The request body is not valid JSON: {error}.",
            "Send a JSON object with the Content-Type application/json.",
        ) from None


class Handler(BaseHTTPRequestHandler):
    """Turns HTTP requests into calls on the :class:`Simulator` and writes the answers."""

    protocol_version = "HTTP/1.1"
    server_version = "LambdaCloudSimulator/1.0"
    sys_version = ""
    server: SimulatorServer

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:  # pylint: disable=redefined-builtin
        if self.server.simulator.settings.verbose:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is not None:
            size = int(length)
            if size > MAX_BODY_BYTES:
                raise ApiError(413, "global/invalid-parameters", "The request body is too large.")
            return self.rfile.read(size)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return b""

    def _dispatch(self) -> None:
        simulator = self.server.simulator
        received = time.time()
        parts = urlsplit(self.path)
        path = parts.path
        try:
            raw_body = self._read_body()
        except (ApiError, ValueError) as error:
            self.close_connection = True
            bad = error if isinstance(error, ApiError) else invalid("Malformed request body framing.")
            self._send(Response.error(bad))
            return
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            self._send(simulator.process_control(self.command, path, raw_body))
            return
        request = RequestContext(
            method=self.command,
            path=path.rstrip("/") or "/",
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            authorization=self.headers.get("Authorization"),
            raw_body=raw_body,
            now=received,
            idempotency_key=self.headers.get("Idempotency-Key"),
        )
        entry = simulator.log_request(self.command, path, parts.query, received)
        if request.idempotency_key is not None:
            entry["idempotency_key"] = request.idempotency_key
        fault = simulator.take_fault(request.method, request.path)
        if fault is not None and not fault.after_processing:
            time.sleep(fault.delay_seconds)
            if fault.answers or fault.drop_connection:
                response = fault.response()
                simulator.log_status(entry, response.status)
                self._send(response)
                return
            request.now = time.time()
        response = simulator.process_api(request)
        if fault is not None and fault.after_processing:
            time.sleep(fault.delay_seconds)
            if fault.answers or fault.drop_connection:
                response = fault.response()
        simulator.log_status(entry, response.status)
        self._send(response)

    def _send(self, response: Response) -> None:
        if response.drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)


class SimulatorServer(ThreadingHTTPServer):
    """A threading HTTP server that carries the :class:`Simulator`."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], simulator: Simulator) -> None:
        self.simulator = simulator
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        if self.simulator.settings.verbose or not isinstance(exc, OSError):
            super().handle_error(request, client_address)
