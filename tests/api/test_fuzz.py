"""The API fuzzed from its own document (schemathesis), against ``crmd serve`` on the
suite's real Redis and database, signed in: every operation with generated requests,
then sequences that follow the document's links (create a segment, then read, change
and delete it). Checks: no 5xx, every answer conforms to its schema, every status and
content type is one the document gives."""

from __future__ import annotations

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
from hypothesis.errors import Unsatisfiable
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
REPORTED = 2000
"""Characters of each failure shown (a generated request can be very long)."""
CUSTOMERS = (
    "name,email,phone,spend,visits,lastActive\n"
    + "".join(
        f"C{i},c{i}@example.com,+1555000{i:04d},{i * 37 % 5000},{i % 9},"
        f"2026-0{1 + i % 9}-1{i % 9}\n"
        for i in range(60)
    )
    + "Broken,not-an-email,,x,1,\n"
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
            "generation": {"with-security-parameters": False},
        }
    )
    schema = schemathesis.openapi.from_dict(document, config=config)
    for label in EXCLUDED:
        method, path = label.split(" ", 1)
        schema = schema.exclude(method=method, path=path)
    return schema


def validate(case: Any, response: Any = None, **kwargs: Any) -> None:
    if response is None:
        case.call_and_validate(checks=CHECKS)
    else:
        case.validate_response(response, checks=CHECKS, **kwargs)


FUZZ = settings(
    max_examples=12,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
)


def fuzz(operation: Any, mode: GenerationMode) -> str | None:
    """The first failure of ``operation`` with generated requests, described; else None."""

    @FUZZ
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        validate(case)

    try:
        run()
    except Unsatisfiable:  # no invalid request exists (no parameters, a free-form body)
        assert mode is GenerationMode.NEGATIVE, operation.label
    except (Exception, BaseExceptionGroup) as exc:  # kept: every operation's is reported
        return f"{operation.label} ({mode.value}): {str(exc)[:REPORTED]}"
    return None


def test_every_operation(api_schema: Any) -> None:
    """Each operation with valid requests, then with invalid ones (which must be refused
    with a documented 4xx, never a 5xx)."""
    failures = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 50
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failures.append(fuzz(operation, mode))
    found = [f for f in failures if f]
    assert not found, "\n\n".join(found)


def test_linked_sequences(api_schema: Any) -> None:
    """Sequences that follow the document's links: what one call creates, the next
    reads, changes, pauses or deletes."""
    answered: list[tuple[str, int]] = []

    class Workflow(api_schema.as_state_machine()):  # type: ignore[misc]
        def validate_response(
            self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            answered.append((case.operation.label, response.status_code))
            validate(case, response, transport_kwargs=kwargs or None, recorder=self.recorder)

    run_state_machine_as_test(
        Workflow,
        settings=settings(
            max_examples=120,
            stateful_step_count=8,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
    followed = {label for label, status in answered if status < 300 and "{" in label}
    # What was created was found again through the links, by several operations.
    assert len(followed) >= 3, followed
    assert any(label.startswith("GET ") for label in followed), followed


def test_exclusions_name_operations_that_exist(api_schema: Any, crmd_daemon: Daemon) -> None:
    _, document = call(f"{crmd_daemon.url}/api/v1/openapi.json")
    for label in EXCLUDED:
        method, path = label.split(" ", 1)
        assert method.lower() in document["paths"][path], label
    assert Path(crmd_daemon.log_path).exists()
