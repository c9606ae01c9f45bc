# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A client for the simulator: start it as a subprocess, call its API and its control API.

Standard library only. The test suite, the benchmarks and the demo use it::

    from tests.simulator.client import Simulator

    with Simulator("--boot-seconds", "1") as sim:
        sim.seed(ssh_keys=[{"name": "deploy"}])
        print(sim.api("GET", "/instances"))

With ``--nodes`` every launched instance is a real SSH host; :func:`node_fabric_unavailable`
says beforehand whether that can work here (None) or why not (one line).
"""

from __future__ import annotations

import base64
import functools
import json
import select
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .fabric_check import fabric_unavailable

SIMULATOR_DIR = Path(__file__).resolve().parent
DEFAULT_API_KEY = "sim-api-key"
STARTUP_TIMEOUT = 20.0


@functools.lru_cache(maxsize=1)
def node_fabric_unavailable() -> str | None:
    """None when a simulator can run with ``--nodes`` here; otherwise the reason, in one line."""
    return fabric_unavailable()


class SimulatorError(RuntimeError):
    """The simulator could not be started or a control call failed."""


class Simulator:
    """A simulator subprocess and helpers for its API and control API.

    ``url`` is the API base (``http://127.0.0.1:PORT/api/v1``), ``root`` the
    server root, ``api_key`` the accepted key. Start with :meth:`start` (or use
    it as a context manager); stop with :meth:`stop`.
    """

    def __init__(self, *args: str, api_key: str = DEFAULT_API_KEY, timeout: float = 30.0) -> None:
        self.args = [str(arg) for arg in args]
        self.api_key = api_key
        self.timeout = timeout
        self.url = ""
        self.root = ""
        self.process: subprocess.Popen[str] | None = None
        self.startup_line = ""
        self._stderr = tempfile.TemporaryFile(mode="w+")  # kept for the process lifetime

    # ------------------------------------------------------------------ process

    def start(self) -> Simulator:
        command = [
            sys.executable,
            str(SIMULATOR_DIR),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            *(["--api-key", self.api_key] if self.api_key != DEFAULT_API_KEY else []),
            *self.args,
        ]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        ready = select.select([self.process.stdout], [], [], STARTUP_TIMEOUT)[0]
        line = self.process.stdout.readline() if ready else ""
        if not line.startswith("Lambda Cloud simulator listening on "):
            self.stop()
            raise SimulatorError(f"simulator did not start: {line!r}\n{self.stderr}")
        self.startup_line = line.rstrip("\n")
        self.url = self.startup_line.rsplit(" ", 1)[1]
        self.root = self.url[: -len("/api/v1")]
        return self

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the simulator and wait for it; returns its exit status."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()
        return process.returncode

    @property
    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read()

    @property
    def env(self) -> dict[str, str]:
        """The environment variables that point the collection at this simulator."""
        return {"LAMBDA_API_URL": self.url, "LAMBDA_API_KEY": self.api_key}

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ HTTP

    def http(
        self,
        method: str,
        url: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        """One HTTP request: (status, JSON body or text, response headers). ``body`` bytes/str go out verbatim."""
        if body is None:
            data = None
        elif isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode("utf-8")
        else:
            data = json.dumps(body).encode("utf-8")
        request = urllib.request.Request(url, data=data, method=method.upper(), headers=headers or {})
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as response:
                status, raw, response_headers = response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as error:
            status, raw, response_headers = error.code, error.read(), dict(error.headers)
        text = raw.decode("utf-8", "replace")
        try:
            return status, json.loads(text), response_headers
        except ValueError:
            return status, text, response_headers

    def api_url(self, path: str) -> str:
        """``/instances`` -> the full API URL; paths starting with ``/api/`` are taken from the root."""
        if path.startswith(("http://", "https://")):
            return path
        return (self.root if path.startswith("/api/") else self.url) + path

    def api(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        api_key: str | None = None,
        auth: str | None = "bearer",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """An authenticated API call: (status, JSON body or text). ``auth`` is bearer, basic, basic-raw or None."""
        key = self.api_key if api_key is None else api_key
        all_headers = dict(headers or {})
        if auth == "bearer":
            all_headers["Authorization"] = f"Bearer {key}"
        elif auth == "basic":
            all_headers["Authorization"] = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
        elif auth == "basic-raw":
            all_headers["Authorization"] = f"Basic {key}"
        status, payload, _headers = self.http(method, self.api_url(path), body, all_headers)
        return status, payload

    def api_full(self, method: str, path: str, body: Any = None) -> tuple[int, Any, dict[str, str]]:
        """Like :meth:`api` (bearer auth) but also returns the response headers."""
        return self.http(method, self.api_url(path), body, {"Authorization": f"Bearer {self.api_key}"})

    def control(self, method: str, path: str, body: Any = None) -> Any:
        """A control API call (``/_simulator/...``); raises SimulatorError unless it answers 200."""
        status, payload, _headers = self.http(method, f"{self.root}/_simulator{path}", body)
        if status != 200:
            raise SimulatorError(f"{method} /_simulator{path} answered {status}: {payload}")
        return payload

    # ------------------------------------------------------------------ control helpers

    def reset(self) -> None:
        """An empty account, default catalogue and capacity; faults and request log cleared."""
        self.control("POST", "/reset")

    def state(self) -> dict[str, Any]:
        """``{"instances", "ssh_keys", "file_systems", "firewall_rules", "firewall_rulesets", "capacity"}``."""
        return self.control("GET", "/state")

    def seed(self, **parts: Any) -> dict[str, Any]:
        """Merge resources into the account (instances=[...], ssh_keys=[...], file_systems=[...], capacity={...})."""
        return self.control("POST", "/state", parts)

    def fault(self, **kwargs: Any) -> list[dict[str, Any]]:
        """Queue a fault (path=..., method=..., status=..., count=..., ...); returns the pending faults."""
        return self.control("POST", "/faults", kwargs)["faults"]

    def faults(self) -> list[dict[str, Any]]:
        return self.control("GET", "/faults")["faults"]

    def clear_faults(self) -> None:
        self.control("DELETE", "/faults")

    def requests(self, method: str | None = None, path: str | None = None) -> list[dict[str, Any]]:
        """The API request log, optionally only one method and/or one path (path without /api/v1 is fine)."""
        entries = self.control("GET", "/requests")["requests"]
        if method is not None:
            entries = [entry for entry in entries if entry["method"] == method.upper()]
        if path is not None:
            full = path if path.startswith("/api/") else "/api/v1" + path
            entries = [entry for entry in entries if entry["path"] == full]
        return entries

    def clear_requests(self) -> None:
        self.control("DELETE", "/requests")

    def configure(self, **settings: float | bool) -> dict[str, Any]:
        """Change boot_seconds, terminate_seconds, launch_interval, rate_limit or idempotency until the next reset."""
        return self.control("POST", "/config", settings)

    def nodes(self) -> list[dict[str, Any]]:
        """The nodes of a ``--nodes`` simulator (``GET /_simulator/nodes``)."""
        return self.control("GET", "/nodes")["nodes"]

    def node(self, instance_id: str) -> dict[str, Any]:
        """One node, by its instance id."""
        for node in self.nodes():
            if node["instance_id"] == instance_id:
                return node
        raise SimulatorError(f"no node for instance {instance_id}")

    def set_node(self, instance_id: str, **changes: Any) -> dict[str, Any]:
        """Change a node: ``gpu_utilization``, ``gpu_count``, ``private_network``; returns the node."""
        return self.control("POST", f"/nodes/{instance_id}", changes)

    def set_instance(self, instance_id: str, **changes: Any) -> dict[str, Any]:
        """Change what only Lambda's side changes on a running instance: ``status`` (active or unhealthy), ``tags``
        (a dict here); returns the instance."""
        if isinstance(changes.get("tags"), dict):
            changes["tags"] = [{"key": key, "value": value} for key, value in changes["tags"].items()]
        return self.control("POST", f"/instances/{instance_id}", changes)

    def wait_for_status(self, instance_id: str, status: str, timeout: float = 15.0) -> dict[str, Any]:
        """Poll (through the control API, so nothing is logged) until the instance has ``status``."""
        deadline = time.monotonic() + timeout
        while True:
            for instance in self.state()["instances"]:
                if instance["id"] == instance_id and instance["status"] == status:
                    return instance
            if time.monotonic() > deadline:
                raise SimulatorError(f"instance {instance_id} did not become {status} within {timeout}s")
            time.sleep(0.05)
