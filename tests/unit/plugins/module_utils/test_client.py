# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The client's pure parts: Retry-After, redaction, paths, the retry policy and the settings it refuses."""

from __future__ import annotations

import time
from email.utils import formatdate

import pytest

from ansible_collections.lambdalabs.cloud.plugins.module_utils._client import (
    RETRY_CREATE,
    RETRY_NEVER,
    RETRY_SAFE,
    LambdaCloudClient,
    LambdaCloudError,
    api_path,
    client_from_options,
    parse_retry_after,
)
from ansible_collections.lambdalabs.cloud.tests.unit.plugins.module_utils.fake_clock import FakeClock

URL = "http://127.0.0.1:9/api/v1"


def test_retry_after_in_seconds_and_as_http_date():
    now = time.time()
    assert parse_retry_after("7") == 7
    assert parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-3") == 0
    assert 9 <= parse_retry_after(formatdate(now + 10, usegmt=True), now=now) <= 10
    assert parse_retry_after(formatdate(now - 100, usegmt=True), now=now) == 0


def test_redaction_matches_a_short_key_as_a_token_and_a_real_key_anywhere():
    client = LambdaCloudClient("x", URL)
    assert client.redact("Max retries exceeded; key=x") == "Max retries exceeded; key=********"
    assert client.redact("exit text") == "exit text"
    long_key = LambdaCloudClient("secret_abc.123", URL)
    assert long_key.redact("url?token=secret_abc.123&x=1") == "url?token=********&x=1"
    assert long_key.redact("q=%3Dsecret_abc.123") == "q=%3D********"


def test_every_path_segment_is_quoted_whole():
    assert api_path("instances", "0920582c") == "/instances/0920582c"
    assert api_path("instances", "../ssh-keys") == "/instances/..%2Fssh-keys"
    assert api_path("ssh-keys", "a b?c#d") == "/ssh-keys/a%20b%3Fc%23d"


@pytest.mark.parametrize(
    ("error", "retry", "expected"),
    [
        (LambdaCloudError("x", status=429), RETRY_CREATE, True),
        (LambdaCloudError("x", status=429), RETRY_NEVER, False),
        (LambdaCloudError("x", status=500, may_have_processed=True), RETRY_CREATE, False),
        (LambdaCloudError("x", kind="timeout", may_have_processed=True), RETRY_CREATE, False),
        (LambdaCloudError("x", kind="dropped", may_have_processed=True), RETRY_CREATE, False),
        (LambdaCloudError("x", kind="connect"), RETRY_CREATE, True),
        (LambdaCloudError("x", status=503), RETRY_SAFE, True),
        (LambdaCloudError("x", status=400, code="provider/internal-unavailable"), RETRY_SAFE, True),
        (LambdaCloudError("x", status=400, code="global/invalid-parameters"), RETRY_SAFE, False),
        (LambdaCloudError("x", kind="timeout"), RETRY_SAFE, True),
    ],
)
def test_creating_calls_are_repeated_only_when_provably_not_processed(error, retry, expected):
    assert LambdaCloudClient("key-123456789", URL)._may_retry(error, retry) is expected


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"api_key": ""}, "No Lambda Cloud API key"),
        ({"api_key": "   "}, "No Lambda Cloud API key"),
        ({"api_key": "SECRETPART\nx"}, "contains spaces, control or non-ASCII characters"),
        ({"api_key": "SECRETPART\u20ac"}, "contains spaces, control or non-ASCII characters"),
        ({"api_url": "cloud.lambda.ai/api/v1"}, "api_url must be an http:// or https:// URL"),
        ({"request_timeout": 0}, "greater than 0 and at most 3600"),
        ({"request_timeout": float("nan")}, "greater than 0 and at most 3600"),
        ({"request_timeout": float("inf")}, "greater than 0 and at most 3600"),
        ({"request_timeout": 1e308}, "greater than 0 and at most 3600"),
        ({"request_timeout": True}, "greater than 0 and at most 3600"),
    ],
)
def test_bad_settings_are_refused_without_quoting_the_key(options, expected):
    with pytest.raises(LambdaCloudError) as info:
        client_from_options({"api_key": "SECRETPART-key", "api_url": URL} | options)
    assert info.value.kind == "config" and expected in str(info.value)
    assert "SECRETPART" not in str(info.value)


def test_options_without_values_get_the_defaults():
    client = client_from_options({"api_key": "key-123456789", "api_url": None, "request_timeout": None})
    assert client.api_url == "https://cloud.lambda.ai/api/v1" and client.request_timeout == 30
    assert client.validate_certs is True


def test_backoff_is_capped_full_jitter():
    client = LambdaCloudClient("key-123456789", URL, backoff_base=1, backoff_cap=5)
    for attempt in range(1, 10):
        assert 0 <= client._backoff(attempt) <= min(5, 2 ** (attempt - 1))


class RateLimitedClient:
    """A client whose every request answers 429 with ``Retry-After``, on a fake clock that sleeping moves."""

    def __init__(self, retry_after: float, request_timeout: float = 5) -> None:
        self.clock = FakeClock(0.0)
        self.sent = 0
        self.retry_after = retry_after
        self.client = LambdaCloudClient(
            "key-123456789", URL, request_timeout=request_timeout, sleep=self.clock.sleep, clock=self.clock
        )
        self.client._send_once = self.send  # type: ignore[method-assign]

    def send(self, method, path, body, params, headers):
        self.sent += 1
        raise LambdaCloudError("429", status=429, retry_after=self.retry_after, method=method, path=path)


@pytest.mark.parametrize(
    ("retry_after", "deadline", "sent", "waited"), [(10, 5, 1, 0), (2, 12, 4, 6), (10, None, 2, 10), (3, None, 6, 15)]
)
def test_a_429_storm_ends_by_the_deadline_and_the_call_budget(retry_after, deadline, sent, waited):
    # The call budget is 4 request timeouts (20 s here); a deadline cuts it shorter. A wait is taken only when it and
    # one more try (a request timeout) still end by then.
    fake = RateLimitedClient(retry_after)
    with pytest.raises(LambdaCloudError) as error:
        fake.client.request("POST", "/instance-operations/launch", {}, deadline=deadline)
    assert error.value.status == 429
    assert (fake.sent, fake.clock.now) == (sent, waited)
    assert fake.clock.now + 5 <= (20 if deadline is None else deadline)
