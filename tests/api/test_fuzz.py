"""The API fuzzed from its own document (schemathesis), against ``crmd serve`` on the
suite's real Redis and database, signed in: every operation with generated requests,
then sequences that follow the document's links (create a segment, then read, change
and delete it). Checks: no 5xx, every answer conforms to its schema, every status and
content type is one the document gives."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import FlakyStrategyDefinition, Unsatisfiable
from hypothesis.stateful import run_state_machine_as_test
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from crmd.services.children import free_port
from crmd.services.embedded import Urls
from tests.commands import Daemon, call

pytestmark = pytest.mark.slow  # fuzzes a served crmd

# Hypothesis keeps a cache of its own beside the tests unless told otherwise.
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(tempfile.gettempdir(), "crmd-hypothesis")
)

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]
EXCLUDED: dict[str, str] = {
    "POST /api/v1/user/dev-login": "every generated email would sign a new user in; signing "
    "in is tested in tests/auth, and the fuzz run's own token comes from it",
}
"""Operations not fuzzed, each with its reason."""
NEVER_SUCCEED = {
    "POST /api/v1/deliveryReceipt/{vendor}": "a receipt must carry its vendor's signature; "
    "signed receipts are tested in tests/receipts and each vendor plugin's tests",
    "POST /api/v1/deliveryReceipt": "the same, for the default vendor",
    "POST /api/receipt": "the same, on the original clients' path",
    "POST /api/v1/user/oauth": "Google sign-in is off in the suite (tests/auth plays Google)",
    "GET /api/v1/user/oauth": "the same, on the original clients' path",
    "POST /api/v1/workspaces/{id}/invitations": "a generated workspace id names none the "
    "caller belongs to (403 not_a_member); invitations are tested in "
    "tests/workspaces/test_invitations.py",
    "GET /api/v1/workspaces/{id}/invitations": "the same",
    "DELETE /api/v1/workspaces/{id}/invitations/{invitation}": "the same",
    "POST /api/v1/invitations/accept": "a generated token is not a link crmd signed",
}
"""Operations a generated request cannot succeed on, each with its reason."""
REPORTED = 2000
"""Characters of each failure shown (a generated request can be very long)."""
CUSTOMERS = (
    "customer_external_id,name,email,phone,spend,visits,lastActive\n"
    + "".join(
        f"X{i},C{i},c{i}@example.com,+1555000{i:04d},{i * 37 % 5000},{i % 9},"
        f"2026-0{1 + i % 9}-1{i % 9}\n"
        for i in range(60)
    )
    + "XB,Broken,not-an-email,,x,1,\n"
)


@pytest.fixture(scope="module")
def crmd_daemon(services: Urls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    port = free_port()
    daemon = Daemon(
        services.mongodb,
        services.redis,
        port,
        f"fuzz_{uuid.uuid4().hex[:8]}",
        f"fuzz{uuid.uuid4().hex[:6]}",
        tmp_path_factory.mktemp("fuzz") / "crmd.log",
        CRMD_SERVER__PUBLIC_URL=f"http://127.0.0.1:{port}",
        # The same request answers the same way on every run, as hypothesis needs to
        # replay its sequences: a count is always waited for (never a 202 with part of
        # it), and no slot is ever full (never a 429).
        CRMD_SERVER__COUNT_WAIT="60",
        CRMD_SERVER__READ_WAIT="60",
    )
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="module")
def token(crmd_daemon: Daemon) -> str:
    """A signed-in user with customers, a segment and a campaign to be found."""
    token = crmd_daemon.token("fuzz@example.com")
    status, upload = crmd_daemon.call(
        "POST", "/api/v1/upload/customers", token, CUSTOMERS.encode(), "text/csv"
    )
    assert status == 202, upload
    SEEDED["upload"] = upload["uploadId"]
    BASE.append(crmd_daemon.url)
    segment = json.dumps({"name": "Big", "rule": "spend > 1000"}).encode()
    assert crmd_daemon.call("POST", "/api/v1/segments", token, segment)[0] == 201
    campaign = json.dumps({"name": "Hello", "message": "Hi {name}", "rule": "visits > 2"})
    assert crmd_daemon.call("POST", "/api/v1/campaigns", token, campaign.encode())[0] == 201
    return token


@pytest.fixture(scope="module")
def api_schema(crmd_daemon: Daemon, token: str) -> Any:
    status, document = call(f"{crmd_daemon.url}/api/v1/openapi.json")
    assert status == 200
    config = schemathesis.Config.from_dict(
        {
            "base-url": crmd_daemon.url,
            "headers": {"Authorization": f"Bearer {token}"},
            # The token above on every request; no invented x-access-token beside it.
            # Sequences are built from valid requests (invalid ones are each operation's
            # own run, below); schemathesis' negative mode also made its state machine
            # draw inconsistently between runs (hypothesis' FlakyStrategyDefinition).
            "generation": {"with-security-parameters": False, "mode": "positive"},
        }
    )
    HEADERS["Authorization"] = f"Bearer {token}"
    schema = schemathesis.openapi.from_dict(document, config=config)
    # The sequences are drawn without the document's examples: with them, schemathesis'
    # state machine drew differently between runs (hypothesis' FlakyStrategyDefinition).
    plain = schemathesis.openapi.from_dict(without_examples(document), config=config)
    SEQUENCES.append(plain)
    for label in EXCLUDED:
        method, path = label.split(" ", 1)
        schema = schema.exclude(method=method, path=path)
    return schema


HEADERS: dict[str, str] = {}
BASE: list[str] = []
SEEDED: dict[str, str] = {}
"""The signed-in user's Authorization header, once the token fixture has made it."""
SUCCEEDED: set[str] = set()
"""The operations that answered a success at least once: the checks above only judge
what was answered, so a run where every request is refused proves little."""


SEQUENCES: list[Any] = []


def without_examples(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_examples(v) for k, v in value.items() if k != "examples"}
    if isinstance(value, list):
        return [without_examples(v) for v in value]
    return value


def made(method: str, path: str, body: dict[str, Any]) -> Any:
    status, answer = call(
        f"{BASE[0]}{path}", method, HEADERS["Authorization"].split()[1], json.dumps(body).encode()
    )
    assert status < 300, (path, answer)
    return answer


def existing(case: Any) -> dict[str, str]:
    """Path parameters naming a thing of the signed-in user's, fit for the operation."""
    path = case.operation.path
    if "{email}" in path:
        return {
            "email": made("POST", "/api/v1/suppressions", {"email": "gone@example.com"})["email"]
        }
    if "{id}" not in path:
        return {}
    if "/webhooks/" in path:  # one reused: a tenant may have only so many
        listed = made("GET", "/api/v1/webhooks", {})["items"]
        hook = {"url": "http://127.0.0.1:9/fuzzed", "events": ["import.done"]}
        return {"id": listed[0]["id"] if listed else made("POST", "/api/v1/webhooks", hook)["id"]}
    if "/keys/" in path:  # a live key: the newest, or a new one
        live = [k["id"] for k in made("GET", "/api/v1/keys", {})["items"] if k["state"] == "live"]
        key = {"name": "fuzzed", "scopes": ["read"]}
        return {"id": live[0] if live else made("POST", "/api/v1/keys", key)["id"]}
    if "/segment" in path:
        return {"id": made("POST", "/api/v1/segments", {"rule": "visits > 1"})["id"]}
    if "/uploads/" in path:
        return {"id": SEEDED["upload"]}
    if "/flows/" in path:
        return flow_for(path)
    if "/customers/" in path:  # a customer of the seeded upload, by crmd's id
        token = HEADERS["Authorization"].split()[1]
        status, listed = call(f"{BASE[0]}/api/v1/customers?limit=1", "GET", token)
        assert status == 200 and listed["items"], listed
        return {"id": listed["items"][0]["id"]}
    action = path.rsplit("/", 1)[-1]
    draft = action in ("send", "cancel")
    campaign = {"name": "Fuzzed", "message": "Hi {name}", "rule": "visits > 2", "draft": draft}
    found = made("POST", "/api/v1/campaigns", campaign)
    if action == "resume":
        made("POST", f"/api/v1/campaigns/{found['id']}/pause", {})
    return {"id": found["id"]}


def flow_for(path: str) -> dict[str, str]:
    """A flow the operation can act on: a draft to activate, an active one to pause."""
    status = "active" if path.endswith("/pause") else "draft"
    body = {
        "name": "Fuzzed",
        "status": status,
        "trigger": {"event": "signup"},
        "steps": [{"wait": "1d"}, {"send": {"message": "Welcome, {name}!"}}],
    }
    found = {"id": made("POST", "/api/v1/flows", body)["id"]}
    return {**found, "n": "1"} if "{n}" in path else found


def validate(case: Any, response: Any = None, **kwargs: Any) -> None:
    if response is None:
        # The examples' requests do not get the config's headers: the token is sent here.
        response = case.call_and_validate(headers=HEADERS, checks=CHECKS)
    else:
        case.validate_response(response, checks=CHECKS, **kwargs)
    if os.environ.get("FUZZ_DEBUG") and case.operation.label == os.environ["FUZZ_DEBUG"]:
        print("DEBUG", response.status_code, response.text[:300], case.body)
    if response.status_code < 300:
        SUCCEEDED.add(case.operation.label)


FUZZ = settings(
    max_examples=12,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
)


def fuzz(operation: Any, mode: GenerationMode | None, schema: Any = None) -> str | None:
    """The first failure of ``operation`` with generated requests, described; else None.
    ``mode`` None: requests built from the document's examples, their path naming things
    that exist (made afresh for each, as an action or a deletion changes them)."""
    if mode is None:
        examples = schema.get_strategies_from_examples(operation)
        if not examples and "{" not in operation.path:
            return None
        strategy = st.one_of(*examples) if examples else operation.as_strategy()
    else:
        strategy = operation.as_strategy(generation_mode=mode)

    @settings(FUZZ, max_examples=3) if mode is None else FUZZ
    @given(case=strategy)
    def run(case: Any) -> None:
        if mode is None:
            case.path_parameters = {**(case.path_parameters or {}), **existing(case)}
        validate(case)

    try:
        run()
    except Unsatisfiable:  # no invalid request exists (no parameters, a free-form body)
        assert mode is not GenerationMode.POSITIVE, operation.label
    except (Exception, BaseExceptionGroup) as exc:  # kept: every operation's is reported
        return f"{operation.label} ({mode.value if mode else 'examples'}): {str(exc)[:REPORTED]}"
    return None


def test_every_operation(api_schema: Any) -> None:
    """Each operation with valid requests, then with invalid ones (which must be refused
    with a documented 4xx, never a 5xx)."""
    failures = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 50
    for operation in operations:
        for mode in (None, GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failures.append(fuzz(operation, mode, api_schema))
    found = [f for f in failures if f]
    assert not found, "\n\n".join(found)


def test_linked_sequences(api_schema: Any) -> None:
    """Sequences that follow the document's links: what one call creates, the next
    reads, changes, pauses or deletes."""
    answered: list[tuple[str, int]] = []

    class Workflow(SEQUENCES[-1].as_state_machine()):  # type: ignore[misc]
        def validate_response(
            self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            answered.append((case.operation.label, response.status_code))
            validate(case, response, transport_kwargs=kwargs or None, recorder=self.recorder)

    # A sequence replayed against a server whose state moved on (a count finished, an
    # import done) takes other links, which hypothesis calls a flaky strategy: not a
    # failure of crmd's, which validate() raises as it happens. What ran still counts.
    with contextlib.suppress(FlakyStrategyDefinition):
        run_state_machine_as_test(Workflow, settings=LINKED)
    assert not [a for a in answered if a[1] >= 500], answered
    followed = {label for label, status in answered if status < 300 and "{" in label}
    # What was created was found again through the links, by several operations.
    assert len(followed) >= 3, followed
    assert any(label.startswith("GET ") for label in followed), followed


# As FUZZ (no shrinking: a failure is reported as it happened; replayed against a
# server whose state has moved on, a sequence takes other links), with longer runs.
LINKED = settings(FUZZ, max_examples=120, stateful_step_count=8)


def test_most_operations_were_answered_with_a_success(api_schema: Any) -> None:
    """After the two runs above: the checks only judge what was answered, so a run in
    which most requests were refused would prove little."""
    operations = {result.ok().label for result in api_schema.get_all_operations()}
    never = sorted(operations - SUCCEEDED - set(NEVER_SUCCEED))
    print("never answered a success:", never)
    assert len(never) <= len(operations) // 10, never


def test_exclusions_name_operations_that_exist(api_schema: Any, crmd_daemon: Daemon) -> None:
    _, document = call(f"{crmd_daemon.url}/api/v1/openapi.json")
    for label in EXCLUDED:
        method, path = label.split(" ", 1)
        assert method.lower() in document["paths"][path], label
    assert Path(crmd_daemon.log_path).exists()
