# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one HTTP client of the collection.

Every module and the inventory plugin talk to the Lambda Cloud API through
:class:`LambdaCloudClient`. It owns the session, authentication, the base URL,
retries with backoff, the error type, redaction of the API key and the
User-Agent. Nothing else in the collection imports ``requests``.
"""

from __future__ import annotations

import email.utils
import math
import random
import re
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from ansible_collections.lambdalabs.cloud.plugins.module_utils._version import COLLECTION_VERSION

try:
    import requests
    from requests import exceptions as req_exc

    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - depends on the controller's Python
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = traceback.format_exc()

try:
    from ansible.module_utils.ansible_release import __version__ as ANSIBLE_VERSION
except ImportError:  # pragma: no cover
    ANSIBLE_VERSION = "unknown"

DEFAULT_API_URL = "https://cloud.lambda.ai/api/v1"
API_KEY_ENV = "LAMBDA_API_KEY"
API_URL_ENV = "LAMBDA_API_URL"
USER_AGENT = f"lambdalabs.cloud/{COLLECTION_VERSION} ansible-core/{ANSIBLE_VERSION}"

# Answers after which a request that is safe to repeat is sent again.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
REDACTED = "********"
DEFAULT_REQUEST_TIMEOUT = 30
MAX_REQUEST_TIMEOUT = 3600

# How a request may be repeated after a failure.
# One call, with its retries and the waits between them, ends within this many request timeouts (and by its own
# deadline, when the caller gives one): a storm of 429s with long Retry-After headers cannot hold a task for long.
CALL_REQUEST_TIMEOUTS = 4
RETRY_SAFE = "safe"  # reads, deletes and other calls whose repetition changes nothing
RETRY_CREATE = "create"  # creating calls: repeated only when provably not processed
RETRY_NEVER = "never"


class LambdaCloudError(Exception):
    """Any failure talking to the API: HTTP errors, bad bodies, network and TLS problems.

    ``str(error)`` is one line a person can act on. ``may_have_processed`` says
    whether the server may have carried out the request although it failed
    (a 5xx, a timeout, a dropped connection), which matters for creating calls.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        api_message: str | None = None,
        suggestion: str | None = None,
        method: str | None = None,
        path: str | None = None,
        may_have_processed: bool = False,
        retry_after: float | None = None,
        kind: str = "http",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.api_message = api_message
        self.suggestion = suggestion
        self.method = method
        self.path = path
        self.may_have_processed = may_have_processed
        self.retry_after = retry_after
        # One of: http, body (non-JSON answer), connect (nothing was sent), tls, timeout, dropped, config.
        self.kind = kind

    def to_dict(self) -> dict[str, Any]:
        """The structured ``error`` result of a failed module."""
        return {
            "status": self.status,
            "code": self.code,
            "message": self.api_message,
            "suggestion": self.suggestion,
            "method": self.method,
            "path": self.path,
            "kind": self.kind,
        }


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header given in seconds or as an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _valid_timeout(value: Any) -> bool:
    """A number of seconds greater than 0 and at most MAX_REQUEST_TIMEOUT (not a boolean, not NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    return 0 < value <= MAX_REQUEST_TIMEOUT


def api_path(*segments: str) -> str:
    """An API path from its segments, each quoted whole: ``api_path("instances", "../x")`` is ``/instances/..%2Fx``.

    Identifiers are validated before they get here; quoting makes sure that none can ever reach another endpoint.
    """
    return "".join("/" + quote(str(segment), safe="") for segment in segments)


def _describe_api_error(status: int, code: str | None, message: str | None, suggestion: str | None) -> str:
    text = f"Lambda Cloud API error {status}{f' {code}' if code else ''}: {message or 'no message'}"
    return text + (f" (suggestion: {suggestion})" if suggestion else "")


def _one_line(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# What a request that got no HTTP answer met (see _transport_case), as a message over its url, where (method and
# path), reason, timeout and env (the variable of the base URL).
_TRANSPORT_MESSAGES = {
    "tls": "TLS verification failed for {url}: {reason}. Fix the certificate chain, or set validate_certs=false only "
    "for a trusted test endpoint.",
    "connect_timeout": "Timed out connecting to the Lambda Cloud API at {url} for {where} (request_timeout={timeout}s)."
    " Check api_url and your network.",
    "timeout": "The Lambda Cloud API did not answer {where} within {timeout}s (request_timeout). The request may still "
    "have been processed; raise request_timeout if this persists.",
    "connect": "Cannot connect to the Lambda Cloud API at {url}: {reason}. Check api_url (or {env}) and your network.",
    "dropped": "The connection to the Lambda Cloud API was lost during {where} before an answer arrived. The request "
    "may have been processed.",
    "config": "Cannot send {where} to {url}: {reason}. Check api_url.",
    "other": "Request {where} to the Lambda Cloud API failed: {reason}",
}


def _transport_case(exc: Exception) -> str:
    """Which failure of _TRANSPORT_MESSAGES a request that got no HTTP answer met, by what requests raised."""
    config = (req_exc.InvalidURL, req_exc.InvalidSchema, req_exc.MissingSchema, req_exc.InvalidHeader)
    order = [("tls", req_exc.SSLError), ("connect_timeout", req_exc.ConnectTimeout), ("timeout", req_exc.Timeout)]
    order += [("connection", req_exc.ConnectionError), ("config", config)]
    case = next((name for name, classes in order if isinstance(exc, classes)), "other")
    if case == "connection":
        return "connect" if _is_connect_failure(exc) else "dropped"
    return case


def _is_connect_failure(exc: Exception) -> bool:
    """True when the connection was never established, so nothing reached the server."""
    if isinstance(exc, req_exc.ConnectTimeout):
        return True
    if not isinstance(exc, req_exc.ConnectionError) or isinstance(exc, req_exc.SSLError):
        return False
    seen = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        name = type(current).__name__
        if name in ("NewConnectionError", "ConnectionRefusedError", "NameResolutionError", "gaierror"):
            return True
        if name in ("ProtocolError", "RemoteDisconnected", "ConnectionResetError"):
            return False
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            current = reason
        elif current.args and isinstance(current.args[0], BaseException):
            current = current.args[0]
        else:
            current = current.__cause__ or current.__context__
    return False


class LambdaCloudClient:
    """A small, retrying client for the Lambda Cloud API v1.

    Methods return the ``data`` member of the API's answer. Every failure is
    raised as :class:`LambdaCloudError` with the API key redacted.
    """

    def __init__(
        self,
        api_key: str | None,
        api_url: str | None = None,
        *,
        validate_certs: bool = True,
        request_timeout: float = 30,
        max_attempts: int = 6,
        backoff_base: float = 1.0,
        backoff_cap: float = 30.0,
        user_agent: str = USER_AGENT,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not HAS_REQUESTS:
            raise LambdaCloudError(
                "The Python library 'requests' is required to talk to the Lambda Cloud API.", kind="config"
            )
        api_key = (api_key or "").strip()
        if not api_key:
            raise LambdaCloudError(
                f"No Lambda Cloud API key: set the api_key option or the {API_KEY_ENV} environment variable.",
                kind="config",
            )
        if not all(33 <= ord(char) < 127 for char in api_key):
            # Never quote the key: say only what is wrong with it.
            raise LambdaCloudError(
                "The Lambda Cloud API key contains spaces, control or non-ASCII characters, which an HTTP header "
                f"cannot carry; check the api_key option or the {API_KEY_ENV} environment variable.",
                kind="config",
            )
        url = (api_url or DEFAULT_API_URL).strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise LambdaCloudError(
                f"api_url must be an http:// or https:// URL such as {DEFAULT_API_URL}, got {url!r}.", kind="config"
            )
        if not _valid_timeout(request_timeout):
            raise LambdaCloudError(
                f"request_timeout must be a number of seconds greater than 0 and at most {MAX_REQUEST_TIMEOUT}, "
                f"got {request_timeout!r}.",
                kind="config",
            )
        self._api_key = api_key
        bound = (r"(?<![A-Za-z0-9])", r"(?![A-Za-z0-9])") if len(api_key) < 8 else ("", "")
        self._key_pattern = re.compile(bound[0] + re.escape(api_key) + bound[1])
        self.api_url = url
        self.validate_certs = validate_certs
        self.request_timeout = request_timeout
        self.max_attempts = max(1, max_attempts)
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._sleep = sleep
        self._clock = clock
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {api_key}", "Accept": "application/json"})
        self.session.headers["User-Agent"] = user_agent
        self.session.verify = validate_certs

    # ------------------------------------------------------------------ helpers
    def redact(self, text: str) -> str:
        """Remove the API key from any text that could reach a person or a log.

        A real key is removed wherever it appears. A key shorter than 8 characters (a test key)
        is matched as a whole token only, so that a key such as "x" does not mangle ordinary words.
        """
        if self._api_key and self._api_key in text:
            text = self._key_pattern.sub(REDACTED, text)
        return text

    def _error(self, message: str, **kwargs: Any) -> LambdaCloudError:
        for key in ("api_message", "suggestion"):
            if kwargs.get(key):
                kwargs[key] = self.redact(kwargs[key])
        return LambdaCloudError(self.redact(message), **kwargs)

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter for the given (1-based) failed attempt."""
        return random.uniform(0, min(self.backoff_cap, self.backoff_base * (2 ** (attempt - 1))))

    # ------------------------------------------------------------------ requests
    def _transport_error(self, exc: Exception, method: str, path: str) -> LambdaCloudError:
        """The error for a request that got no HTTP answer, with what it means for a creating call."""
        case = _transport_case(exc)
        message = _TRANSPORT_MESSAGES[case].format(
            url=self.api_url,
            where=f"{method} {path}",
            reason=_one_line(self.redact(str(exc)), 200),
            timeout=self.request_timeout,
            env=API_URL_ENV,
        )
        kind = {"connect_timeout": "connect", "other": "dropped"}.get(case, case)
        processed = kind in ("timeout", "dropped")
        return self._error(message, method=method, path=path, may_have_processed=processed, kind=kind)

    def _send_once(
        self, method: str, path: str, body: Any, params: dict[str, Any] | None, headers: Mapping[str, str] | None
    ) -> Any:
        try:
            response = self.session.request(
                method,
                self.api_url + path,
                json=body,
                params=params,
                headers=dict(headers) if headers else None,
                timeout=self.request_timeout,
            )
        except req_exc.RequestException as exc:
            raise self._transport_error(exc, method, path) from None
        return self._decode(response, method, path)

    def _decode(self, response: Any, method: str, path: str) -> Any:
        status = response.status_code
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            content_type = response.headers.get("Content-Type", "unknown content type").split(";")[0]
            # A success's body is never quoted: a garbled one may still hold a generated private key.
            snippet = "" if 200 <= status < 300 else f": {_one_line(self.redact(response.text or ''), 80)!r}"
            raise self._error(
                f"The Lambda Cloud API answered {method} {path} with HTTP {status} and a non-JSON body "
                f"({content_type}){snippet}. A proxy or an outage may be in the way; try again later.",
                status=status,
                method=method,
                path=path,
                # A success status means the request was carried out, whatever the body says.
                may_have_processed=status >= 500 or 200 <= status < 300,
                retry_after=retry_after,
                kind="body",
            )
        if 200 <= status < 300 and "error" not in payload:
            return payload.get("data")
        error = payload.get("error") if isinstance(payload.get("error"), dict) else {}
        code = error.get("code")
        api_message = error.get("message") or response.reason
        suggestion = error.get("suggestion")
        raise self._error(
            _describe_api_error(status, code, api_message, suggestion),
            status=status,
            code=code,
            api_message=api_message,
            suggestion=suggestion,
            method=method,
            path=path,
            may_have_processed=status >= 500,
            retry_after=retry_after,
        )

    def _may_retry(self, error: LambdaCloudError, retry: str) -> bool:
        if retry == RETRY_NEVER:
            return False
        if error.status == 429:
            return True
        if retry == RETRY_CREATE:
            # Only when provably not processed: the connection was never made.
            return error.kind == "connect"
        if error.status in RETRYABLE_STATUSES:
            return True
        if error.code and error.code.startswith("provider/"):
            return True
        return error.kind in ("connect", "timeout", "dropped")

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, Any] | None = None,
        retry: str | None = None,
        default_retry_after: float | None = None,
        headers: Mapping[str, str] | None = None,
        deadline: float | None = None,
    ) -> Any:
        """Send one API call, retrying according to ``retry``; return the answer's ``data``.

        ``retry`` defaults to :data:`RETRY_SAFE` for GET, PUT and DELETE, and to
        :data:`RETRY_CREATE` for POST. ``default_retry_after`` is the wait after a
        429 that carries no ``Retry-After`` header (backoff when not given). ``headers``
        are added to this request only (for example an ``Idempotency-Key``). The call gives up instead of
        waiting past ``deadline`` (on the client's monotonic clock), or past :data:`CALL_REQUEST_TIMEOUTS` request
        timeouts from its start.
        """
        method = method.upper()
        if retry is None:
            retry = RETRY_CREATE if method == "POST" else RETRY_SAFE
        end = self._clock() + CALL_REQUEST_TIMEOUTS * self.request_timeout
        end = end if deadline is None else min(end, deadline)
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._send_once(method, path, body, params, headers)
            except LambdaCloudError as error:
                if attempt >= self.max_attempts or not self._may_retry(error, retry):
                    raise
                if error.retry_after is not None:
                    wait = min(error.retry_after, 120.0)
                elif error.status == 429 and default_retry_after is not None:
                    wait = default_retry_after
                else:
                    wait = self._backoff(attempt)
                if self._clock() + wait + self.request_timeout > end:
                    raise  # the wait and one more try would not end by the call's deadline
                self._sleep(wait)

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.request("POST", path, body, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.request("PUT", path, body, **kwargs)

    def patch(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.request("PATCH", path, body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)

    def close(self) -> None:
        self.session.close()


def client_from_options(options: Mapping[str, Any]) -> LambdaCloudClient:
    """The client for the shared options (api_key, api_url, validate_certs, request_timeout).

    Modules and the inventory plugin both build their client here, so that both check the options alike.
    """
    timeout = options.get("request_timeout")
    return LambdaCloudClient(
        options.get("api_key"),
        options.get("api_url"),
        validate_certs=True if options.get("validate_certs") is None else bool(options["validate_certs"]),
        request_timeout=DEFAULT_REQUEST_TIMEOUT if timeout is None else timeout,
    )
