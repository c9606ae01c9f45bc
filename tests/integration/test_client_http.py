"""The shared client against the simulator: answers, errors, retries and redaction, over real HTTP."""

from __future__ import annotations

import time

import pytest

from ansible_collections.lambdalabs.cloud.plugins.module_utils._client import (
    USER_AGENT,
    LambdaCloudClient,
    LambdaCloudError,
)
from tests.integration.support import PUBLIC_KEY, free_port

LAUNCH = "/api/v1/instance-operations/launch"
INSTANCES = "/api/v1/instances"


class Sleeps(list):
    """Records the waits the client asks for instead of sleeping through them."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps():
    return Sleeps()


@pytest.fixture
def client(simulator, sleeps):
    return LambdaCloudClient(simulator.api_key, simulator.url, request_timeout=5, sleep=sleeps)


def seed_key(simulator):
    simulator.api("POST", "/ssh-keys", {"name": "k", "public_key": PUBLIC_KEY})


def launch_body():
    return {"region_name": "us-east-1", "instance_type_name": "gpu_1x_a10", "ssh_key_names": ["k"], "name": "n"}


# ------------------------------------------------------------------ answers and errors
def test_get_returns_data_and_sends_identity(simulator, client):
    simulator.seed(instances=[{"name": "a", "status": "active", "region": "us-west-1", "instance_type": "gpu_1x_a10"}])
    instances = client.get("/instances")
    assert [i["name"] for i in instances] == ["a"]
    assert client.session.headers["User-Agent"] == USER_AGENT
    assert client.session.headers["Authorization"] == f"Bearer {simulator.api_key}"


def test_missing_key_fails_before_any_request(simulator):
    with pytest.raises(LambdaCloudError) as info:
        LambdaCloudClient("", simulator.url)
    assert "api_key" in str(info.value) and "LAMBDA_API_KEY" in str(info.value)
    assert simulator.requests() == []


def test_wrong_key_is_one_line_with_code_and_no_key(simulator, sleeps):
    secret = "wrong-secret-key-123"
    client = LambdaCloudClient(secret, simulator.url, sleep=sleeps)
    with pytest.raises(LambdaCloudError) as info:
        client.get("/instances")
    error = info.value
    assert error.status == 401 and error.code == "global/invalid-api-key"
    assert str(error).startswith("Lambda Cloud API error 401 global/invalid-api-key: ")
    assert "\n" not in str(error) and secret not in str(error)
    assert sleeps == []  # not retried
    assert len(simulator.requests()) == 1


def test_api_error_carries_code_message_and_suggestion(simulator, client):
    with pytest.raises(LambdaCloudError) as info:
        client.post("/instance-operations/launch", {"region_name": "us-east-1"})
    error = info.value
    assert error.status == 400 and error.code == "global/invalid-parameters"
    assert error.api_message and error.api_message in str(error)
    assert error.to_dict()["code"] == "global/invalid-parameters"


def test_secret_echoed_in_a_body_is_redacted(simulator, client):
    simulator.fault(
        method="GET", path=INSTANCES, status=502, body=f"<html>bad gateway {simulator.api_key}</html>", count=6
    )
    with pytest.raises(LambdaCloudError) as info:
        client.get("/instances")
    assert simulator.api_key not in str(info.value)
    assert "********" in str(info.value)


# ------------------------------------------------------------------ safe calls recover
def test_get_honours_retry_after_seconds(simulator, client, sleeps):
    simulator.fault(method="GET", path=INSTANCES, status=429, code="global/too-many-requests", retry_after=3, count=2)
    assert client.get("/instances") == []
    assert sleeps == [3, 3]
    assert len(simulator.requests("GET", "/instances")) == 3


def test_get_backs_off_with_jitter_on_429_without_retry_after(simulator, client, sleeps):
    simulator.fault(method="GET", path=INSTANCES, status=429, count=3)
    assert client.get("/instances") == []
    assert len(sleeps) == 3
    for attempt, wait in enumerate(sleeps, start=1):
        assert 0 <= wait <= min(30, 2 ** (attempt - 1))


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_get_recovers_from_server_errors(simulator, client, sleeps, status):
    simulator.fault(method="GET", path=INSTANCES, status=status, code="global/internal-error", count=2)
    assert client.get("/instances") == []
    assert len(sleeps) == 2
    assert [r["status"] for r in simulator.requests("GET", "/instances")] == [status, status, 200]


def test_get_recovers_from_provider_errors(simulator, client):
    simulator.fault(method="GET", path=INSTANCES, status=400, code="provider/internal-unavailable", count=1)
    assert client.get("/instances") == []
    assert len(simulator.requests("GET", "/instances")) == 2


def test_get_recovers_from_a_dropped_connection(simulator, client):
    simulator.fault(method="GET", path=INSTANCES, drop_connection=True, count=1)
    assert client.get("/instances") == []
    assert len(simulator.requests("GET", "/instances")) == 2


def test_get_recovers_from_an_html_502(simulator, client):
    simulator.fault(method="GET", path=INSTANCES, status=502, body="<html><h1>502 Bad Gateway</h1></html>", count=1)
    assert client.get("/instances") == []


def test_html_body_gets_its_own_message(simulator, sleeps):
    client = LambdaCloudClient(simulator.api_key, simulator.url, max_attempts=2, sleep=sleeps)
    simulator.fault(method="GET", path=INSTANCES, status=502, body="<html><h1>502 Bad Gateway</h1></html>", count=2)
    with pytest.raises(LambdaCloudError) as info:
        client.get("/instances")
    assert info.value.kind == "body" and info.value.status == 502
    assert "non-JSON body (text/html)" in str(info.value)


def test_get_recovers_from_a_slow_answer(simulator, sleeps):
    client = LambdaCloudClient(simulator.api_key, simulator.url, request_timeout=0.5, sleep=sleeps)
    simulator.fault(method="GET", path=INSTANCES, delay_seconds=2, count=1)
    assert client.get("/instances") == []
    assert len(sleeps) == 1  # the late answer was given up on and the GET sent again


def test_timeout_message_names_request_timeout(simulator, sleeps):
    client = LambdaCloudClient(simulator.api_key, simulator.url, request_timeout=0.3, max_attempts=2, sleep=sleeps)
    simulator.fault(method="GET", path=INSTANCES, delay_seconds=1, count=2)
    with pytest.raises(LambdaCloudError) as info:
        client.get("/instances")
    assert info.value.kind == "timeout"
    assert "request_timeout" in str(info.value)


def test_gives_up_after_max_attempts(simulator, sleeps):
    client = LambdaCloudClient(simulator.api_key, simulator.url, max_attempts=3, sleep=sleeps)
    simulator.fault(method="GET", path=INSTANCES, status=503, count=10)
    with pytest.raises(LambdaCloudError) as info:
        client.get("/instances")
    assert info.value.status == 503
    assert len(simulator.requests("GET", "/instances")) == 3


def test_unreachable_url_is_clear_and_retried_for_safe_calls(sleeps):
    url = f"http://127.0.0.1:{free_port()}/api/v1"
    client = LambdaCloudClient("k", url, max_attempts=3, sleep=sleeps)
    with pytest.raises(LambdaCloudError) as info:
        client.get("/instances")
    assert info.value.kind == "connect"
    assert str(info.value).startswith(f"Cannot connect to the Lambda Cloud API at {url}")
    assert len(sleeps) == 2


# ------------------------------------------------------------------ creating calls are not repeated blindly
def test_launch_500_is_not_repeated(simulator, client, sleeps):
    seed_key(simulator)
    simulator.fault(method="POST", path=LAUNCH, status=500, code="global/internal-error", count=1)
    with pytest.raises(LambdaCloudError) as info:
        client.post("/instance-operations/launch", launch_body())
    assert info.value.may_have_processed
    assert len(simulator.requests("POST", LAUNCH)) == 1
    assert sleeps == []


def test_launch_dropped_after_processing_is_not_repeated(simulator, client):
    seed_key(simulator)
    simulator.fault(method="POST", path=LAUNCH, drop_connection=True, after_processing=True, count=1)
    with pytest.raises(LambdaCloudError) as info:
        client.post("/instance-operations/launch", launch_body())
    assert info.value.kind == "dropped" and info.value.may_have_processed
    assert len(simulator.requests("POST", LAUNCH)) == 1
    assert len(simulator.state()["instances"]) == 1


def test_launch_timeout_is_not_repeated(simulator, sleeps):
    seed_key(simulator)
    client = LambdaCloudClient(simulator.api_key, simulator.url, request_timeout=0.3, sleep=sleeps)
    simulator.fault(method="POST", path=LAUNCH, delay_seconds=1, count=1)
    with pytest.raises(LambdaCloudError) as info:
        client.post("/instance-operations/launch", launch_body())
    assert info.value.kind == "timeout" and info.value.may_have_processed
    time.sleep(1.2)  # the simulator logs the request once its late answer is out
    assert len(simulator.requests("POST", LAUNCH)) == 1


def test_launch_429_is_waited_out(simulator, client, sleeps):
    seed_key(simulator)
    simulator.fault(method="POST", path=LAUNCH, status=429, count=1)
    data = client.post("/instance-operations/launch", launch_body(), default_retry_after=12)
    assert len(data["instance_ids"]) == 1
    assert sleeps == [12]
    assert len(simulator.state()["instances"]) == 1


def test_launch_to_a_refused_port_is_retried(sleeps):
    client = LambdaCloudClient("k", f"http://127.0.0.1:{free_port()}/api/v1", max_attempts=2, sleep=sleeps)
    with pytest.raises(LambdaCloudError) as info:
        client.post("/instance-operations/launch", launch_body())
    assert info.value.kind == "connect"
    assert len(sleeps) == 1  # nothing was sent, so trying again is safe


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"api_key": "sim-api-key-SECRETPART\nx"}, "contains spaces, control or non-ASCII characters"),
        ({"api_key": "sim-api-key-SECRETPART\u20ac"}, "contains spaces, control or non-ASCII characters"),
        ({"api_url": "cloud.lambda.ai/api/v1"}, "api_url must be an http:// or https:// URL"),
        ({"request_timeout": 0}, "request_timeout must be a number of seconds greater than 0"),
        ({"request_timeout": -1}, "request_timeout must be a number of seconds greater than 0"),
        ({"request_timeout": float("nan")}, "request_timeout must be a number of seconds greater than 0"),
        ({"request_timeout": float("inf")}, "request_timeout must be a number of seconds greater than 0"),
    ],
)
def test_bad_settings_fail_before_any_request_without_the_key(simulator, kwargs, expected):
    settings = {"api_key": simulator.api_key, "api_url": simulator.url} | kwargs
    key = settings.pop("api_key")
    with pytest.raises(LambdaCloudError) as info:
        LambdaCloudClient(key, **settings)
    assert info.value.kind == "config"
    assert expected in str(info.value)
    assert "SECRETPART" not in str(info.value)
    assert simulator.requests() == []


def test_key_is_redacted_before_the_message_is_shortened(simulator, sleeps):
    client = LambdaCloudClient(simulator.api_key, simulator.url, max_attempts=1, sleep=sleeps)
    # The key starts just before the 80-character cut of the body snippet.
    body = "x" * 70 + " Bearer " + simulator.api_key + " and more text after it"
    simulator.fault(method="GET", path=INSTANCES, status=502, body=body, count=1)
    with pytest.raises(LambdaCloudError) as info:
        client.get("/instances")
    assert "sim-" not in str(info.value)
