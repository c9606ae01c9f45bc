# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base class of every module: the result contract, check-mode wording, diff, and one way to fail.

Each test runs a small module in this process, as Ansible would run it: its arguments are handed to AnsibleModule
the way ansible-core's own unit tests do it, and its result is the JSON that exit_json or fail_json prints.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest
from ansible.module_utils import basic

from ansible_collections.lambdalabs.cloud.plugins.module_utils._client import LambdaCloudClient, LambdaCloudError
from ansible_collections.lambdalabs.cloud.plugins.module_utils._module import (
    LambdaCloudModule,
    ModuleFailure,
    SharedResourceModule,
    regional_resource_spec,
    run_info_module,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._selection import field, field_equals
from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import InvalidParameter

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core before 2.19 reads the arguments from basic._ANSIBLE_ARGS alone

    @contextlib.contextmanager
    def patch_module_args(args: dict[str, Any] | None = None) -> Iterator[None]:
        payload = json.dumps({"ANSIBLE_MODULE_ARGS": args or {}}).encode()
        with mock.patch.object(basic, "_ANSIBLE_ARGS", payload):
            yield


API_KEY = "secret-test-key-0123456789"
BEFORE = {"id": "w-1", "name": "w", "size": 1, "status": "ready", "created": "2024-01-01"}
AFTER = {"id": "w-1", "name": "w", "size": 2, "status": "ready", "created": "2024-01-01"}


class WidgetModule(LambdaCloudModule):
    """A resource module whose ``run`` is given by each test."""

    argument_spec: dict[str, Any] = {"name": {"type": "str", "required": True}, "size": {"type": "int"}}
    resource_key = "widget"
    managed_fields = ("name", "size", "zone")
    behaviour: Callable[[WidgetModule], None] = staticmethod(lambda module: None)

    def run(self) -> None:
        type(self).behaviour(self)


def run_main(main: Callable[[], None], args: dict[str, Any] | None = None) -> tuple[int, dict[str, Any], str]:
    """Run a module's ``main`` with these arguments: its exit status, its result, and the whole output."""
    arguments = {"name": "w", "api_key": API_KEY, **(args or {})}
    out = io.StringIO()
    with patch_module_args(arguments), contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exited:
        main()
    result = json.loads(out.getvalue())
    result.pop("invocation", None)
    return exited.value.code, result, out.getvalue()


def run_module(
    behaviour: Callable[[Any], None], args: dict[str, Any] | None = None, module: type[WidgetModule] = WidgetModule
) -> tuple[int, dict[str, Any], str]:
    """Run a widget module whose ``run`` is ``behaviour``."""
    with mock.patch.object(module, "behaviour", staticmethod(behaviour)):
        return run_main(module.main, args)


# --------------------------------------------------------------------- the result contract
def test_a_change_reports_changed_the_resource_under_its_key_and_a_sentence_in_the_past_tense():
    def create(module):
        module.changed("created", "widget w (2 units)", AFTER, units=2)

    status, result, _text = run_module(create)
    assert status == 0
    assert result == {
        "changed": True,
        "msg": "Created widget w (2 units).",
        "widget": AFTER,
        "diff": {"before": {}, "after": {"name": "w", "size": 2}},
        "units": 2,
    }


def test_in_check_mode_the_message_says_what_would_have_been_done():
    def create(module):
        assert module.check_mode
        module.changed("created", "widget w", AFTER)

    status, result, _text = run_module(create, {"_ansible_check_mode": True})
    assert status == 0
    assert (result["changed"], result["msg"]) == (True, "Would have created widget w.")


def test_no_change_keeps_the_message_as_given_and_an_equal_diff():
    def keep(module):
        module.before = BEFORE
        module.unchanged("Widget w exists.", BEFORE)

    _status, result, _text = run_module(keep)
    assert (result["changed"], result["msg"], result["widget"]) == (False, "Widget w exists.", BEFORE)
    assert result["diff"] == {"before": {"name": "w", "size": 1}, "after": {"name": "w", "size": 1}}
    # Check mode does not reword a message that reports no change.
    _status, checked, _text = run_module(keep, {"_ansible_check_mode": True})
    assert (checked["changed"], checked["msg"]) == (False, "Widget w exists.")


def test_the_diff_shows_the_managed_fields_only():
    def grow(module):
        module.before = {**BEFORE, "zone": "a"}
        module.changed("resized", "widget w to 2 units", {**AFTER, "zone": "a"})

    _status, result, _text = run_module(grow)
    assert result["diff"] == {
        "before": {"name": "w", "size": 1, "zone": "a"},
        "after": {"name": "w", "size": 2, "zone": "a"},
    }
    assert result["widget"]["created"] == "2024-01-01"  # the result shows the whole resource


def test_a_removed_resource_is_shown_but_diffs_to_nothing():
    def delete(module):
        module.before = BEFORE
        module.changed("deleted", "widget w", {**BEFORE, "status": "deleting"})
        module.removed = True

    _status, result, _text = run_module(delete)
    assert result["msg"] == "Deleted widget w."
    assert result["widget"]["status"] == "deleting"
    assert result["diff"] == {"before": {"name": "w", "size": 1}, "after": {}}


def test_without_a_resource_the_result_has_no_resource_key():
    _status, result, _text = run_module(lambda module: module.unchanged("Widget w does not exist."))
    assert result == {
        "changed": False,
        "msg": "Widget w does not exist.",
        "diff": {"before": {}, "after": {}},
    }


class ShapedWidgetModule(WidgetModule):
    """Shows sizes as strings, as a module normalises the shapes of the API's answers."""

    def represent(self, resource: Any) -> Any:
        return None if resource is None else {**resource, "size": f"{resource['size']} units"}


def test_represent_shapes_both_the_result_and_the_diff():
    def grow(module):
        module.before = BEFORE
        module.changed("resized", "widget w", AFTER)

    _status, result, _text = run_module(grow, module=ShapedWidgetModule)
    assert result["widget"]["size"] == "2 units"
    assert result["diff"] == {"before": {"name": "w", "size": "1 units"}, "after": {"name": "w", "size": "2 units"}}


# --------------------------------------------------------------------- failures
def test_a_module_failure_fails_with_its_one_line_and_its_keys_and_no_traceback():
    def refuse(module):
        raise ModuleFailure("Widget w is locked by another run.", hint="wait for it")

    status, result, text = run_module(refuse)
    assert status == 1
    assert result == {
        "failed": True,
        "changed": False,
        "msg": "Widget w is locked by another run.",
        "hint": "wait for it",
    }
    assert "Traceback" not in text


def test_a_failure_after_a_change_keeps_the_change_and_the_resource():
    def half(module):
        module.changed("created", "widget w", AFTER, units=2)
        raise LambdaCloudError("Lambda Cloud API error 500: boom", status=500, path="/widgets", method="POST")

    status, result, _text = run_module(half)
    assert status == 1
    assert (result["changed"], result["widget"], result["units"]) == (True, AFTER, 2)
    assert result["msg"] == "Lambda Cloud API error 500: boom"
    assert result["error"]["status"] == 500 and result["error"]["path"] == "/widgets"
    assert "diff" not in result


@pytest.mark.parametrize(
    "error, msg, keys",
    [
        (
            InvalidParameter("size", "must be at least 1, got 0."),
            "Invalid value for parameter size: must be at least 1, got 0.",
            {"param": "size"},
        ),
        (
            LambdaCloudError(
                "Lambda Cloud API error 404 global/object-does-not-exist: no widget",
                status=404,
                code="global/object-does-not-exist",
                api_message="no widget",
                method="GET",
                path="/widgets/w-1",
            ),
            "Lambda Cloud API error 404 global/object-does-not-exist: no widget",
            {
                "error": {
                    "status": 404,
                    "code": "global/object-does-not-exist",
                    "message": "no widget",
                    "suggestion": None,
                    "method": "GET",
                    "path": "/widgets/w-1",
                    "kind": "http",
                }
            },
        ),
    ],
    ids=["invalid-parameter", "api-error"],
)
def test_every_expected_error_ends_in_one_failure_of_one_line(error, msg, keys):
    def fail(module):
        raise error

    status, result, text = run_module(fail)
    assert status == 1
    assert result == {"failed": True, "changed": False, "msg": msg, **keys}
    assert "\n" not in result["msg"] and "Traceback" not in text


def test_a_bug_is_not_an_expected_failure_and_keeps_its_traceback():
    def bug(module):
        raise KeyError("size")

    with pytest.raises(KeyError):
        run_module(bug)


def test_a_missing_api_key_fails_when_the_client_is_first_needed(monkeypatch):
    monkeypatch.delenv("LAMBDA_API_KEY", raising=False)
    status, result, _text = run_module(lambda module: module.client, {"api_key": None})
    assert status == 1
    assert result["msg"].startswith("No Lambda Cloud API key: set the api_key option or the LAMBDA_API_KEY")
    assert result["error"]["kind"] == "config"


def test_the_client_is_built_once_from_the_shared_options_and_the_key_never_shows():
    seen = []

    def use(module):
        seen.extend([module.client, module.client])
        module.unchanged(f"Read {module.params['name']}.")

    _status, result, text = run_module(use, {"api_url": "http://127.0.0.1:9/v1/", "request_timeout": 7})
    client = seen[0]
    assert isinstance(client, LambdaCloudClient) and seen[1] is client
    assert (client.api_url, client.request_timeout, client.validate_certs) == ("http://127.0.0.1:9/v1", 7, True)
    assert result["msg"] == "Read w." and API_KEY not in text


def test_an_option_ansible_would_turn_into_a_string_is_refused_before_run():
    ran = []
    status, result, _text = run_module(ran.append, {"name": ["a", "b"]})
    assert status == 1 and ran == []
    assert result["param"] == "name" and result["msg"].startswith("Invalid value for parameter name: ")


def test_a_nul_character_is_refused_with_its_option_named():
    ran = []
    status, result, _text = run_module(ran.append, {"name": "w\x00x"})
    assert status == 1 and ran == []
    assert result["msg"] == "Invalid value for parameter name: contains a NUL character."


# --------------------------------------------------------------------- resources that instances use
IN_USE = "widgets/widget-in-use"


class SharedWidgetModule(SharedResourceModule):
    """A widget in one region that instances mount; the account is a dict of widgets given by each test."""

    argument_spec = regional_resource_spec(size={"type": "int"})
    resource_key = "widget"
    managed_fields = ("name", "region")
    kind = "widget"
    used_by = "is mounted by"
    in_use_code = IN_USE
    account: dict[str, Any] = {}
    deleted: list[str] = []

    def find(self):
        return type(self).account.get(self.params["name"])

    def present(self, existing):
        self.unchanged("present", existing)

    def in_use(self, existing):
        return bool(existing.get("users"))

    def users(self, existing):
        return [f"{user} (i-{user})" for user in existing.get("users", [])]

    def delete_resource(self, existing):
        if existing.get("users"):
            raise LambdaCloudError(f"DELETE /widgets/w-1 failed: HTTP 400 {IN_USE}: in use", status=400, code=IN_USE)
        type(self).deleted.append(existing["id"])


def run_shared(account: dict[str, Any], **args: Any) -> tuple[int, dict[str, Any], list[str]]:
    deleted: list[str] = []
    with mock.patch.multiple(SharedWidgetModule, account=account, deleted=deleted):
        status, result, _text = run_main(SharedWidgetModule.main, {"state": "absent", **args})
    return status, result, deleted


@pytest.mark.parametrize("check_mode", [False, True])
def test_a_widget_in_use_is_not_deleted_and_the_failure_names_its_users(check_mode):
    account = {"w": {"id": "w-1", "name": "w", "region": {"name": "r1"}, "users": ["a", "b"]}}
    status, result, deleted = run_shared(account, _ansible_check_mode=check_mode)
    assert status == 1 and deleted == [] and result["changed"] is False
    assert result["msg"].endswith(
        "Widget w is mounted by a (i-a), b (i-b); terminate those instances first, then delete it."
    )
    assert IN_USE in result["msg"] and "\n" not in result["msg"]
    assert ("error" in result) is not check_mode  # the API's error only when the API answered


def test_an_unused_widget_is_deleted_once_and_its_diff_ends_empty_with_its_region_by_name():
    account = {"w": {"id": "w-1", "name": "w", "region": {"name": "r1"}}}
    status, result, deleted = run_shared(account)
    assert status == 0 and deleted == ["w-1"]
    assert result["changed"] is True and result["msg"] == "Deleted widget w."
    assert result["diff"] == {"before": {"name": "w", "region": "r1"}, "after": {}}


def test_a_missing_widget_is_not_deleted_and_check_mode_deletes_nothing():
    status, result, deleted = run_shared({})
    assert (status, result["changed"], result["msg"], deleted) == (0, False, "Widget w does not exist.", [])
    account = {"w": {"id": "w-1", "name": "w", "region": {"name": "r1"}}}
    status, result, deleted = run_shared(account, _ansible_check_mode=True)
    assert (status, result["msg"], deleted) == (0, "Would have deleted widget w.", [])


def test_another_api_error_on_delete_is_reported_as_it_is():
    class Broken(SharedWidgetModule):
        def delete_resource(self, existing):
            raise LambdaCloudError("HTTP 500: boom", status=500, code="global/unknown")

    account = {"w": {"id": "w-1", "name": "w", "region": {"name": "r1"}}}
    with mock.patch.multiple(Broken, account=account):
        status, result, _text = run_main(Broken.main, {"state": "absent"})
    assert status == 1 and result["msg"] == "HTTP 500: boom" and "mounted" not in result["msg"]


# --------------------------------------------------------------------- info modules
def test_an_info_module_reads_once_filters_and_reports_no_change_and_no_diff():
    fetched = []
    widgets = [{"name": "a", "zone": "z1"}, {"name": "b", "zone": "z2"}, {"name": "c", "zone": "z1"}]

    def fetch(client, params):
        fetched.append(client)
        return widgets

    def main():
        run_info_module(
            "widgets",
            {"name": {"type": "str"}, "zone": {"type": "str"}},
            fetch,
            {"zone": field_equals(field("zone"))},
            represent=lambda item, params: item["name"],
        )

    status, result, _text = run_main(main, {"zone": "z1"})
    assert status == 0 and len(fetched) == 1 and isinstance(fetched[0], LambdaCloudClient)
    assert result == {"changed": False, "msg": "Found 2 widgets.", "widgets": ["a", "c"]}
