"""crmd owns its embedded servers: one that dies is started again over the same data and
crmd carries on; one that cannot be started again makes crmd exit non-zero, so that
systemd restarts the whole daemon."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from crmd.services.children import free_port
from tests.commands import call
from tests.test_daemon import REPO, alive, children_of, get, serve

pytestmark = pytest.mark.slow  # kills the embedded servers


def start(tmp_path: Path, port: int) -> subprocess.Popen[bytes]:
    """``crmd serve`` on the embedded default, its log in a file (a pipe nobody reads
    would fill and stop it)."""
    with (tmp_path / "crmd.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "crmd", *serve(tmp_path, port)],
            env={**os.environ, "CRMD_LOGGING__FORMAT": "json"},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )


def events(tmp_path: Path) -> list[dict[str, Any]]:
    text = (tmp_path / "crmd.log").read_text(errors="replace")
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def child(pid: int, name: str) -> int:
    """The pid of crmd's ``redis`` or ``secantus`` child."""
    for found in children_of(pid):
        if name in Path(f"/proc/{found}/cmdline").read_bytes().decode(errors="replace"):
            return found
    raise AssertionError(f"no {name} child of {pid}")


def wait_ready(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if get(f"http://127.0.0.1:{port}/readyz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"not ready within {timeout} s")


def wait_started(tmp_path: Path, port: int) -> None:
    """Until crmd itself has said it is ready (not only its /readyz), so that what the
    test does next happens to a serving daemon."""
    wait_ready(port)
    deadline = time.monotonic() + 30
    while not any(e["event"] == "crmd.ready" for e in events(tmp_path)):
        assert time.monotonic() < deadline, "crmd.ready never logged"
        time.sleep(0.05)


def api(
    port: int,
    path: str,
    token: str = "",
    body: bytes | None = None,
    content_type: str = "application/json",
) -> tuple[int, Any]:
    method = "POST" if body is not None else "GET"
    return call(f"http://127.0.0.1:{port}{path}", method, token, body, content_type)


def import_customers(port: int, token: str, first: int, count: int) -> None:
    rows = "".join(f"E{i},Name {i},e{i}@x.io\n" for i in range(first, first + count))
    status, answer = api(
        port,
        "/api/v1/upload/customers?filename=c.csv",
        token,
        ("customer_external_id,name,email\n" + rows).encode(),
        "text/csv",
    )
    assert status == 202, answer
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = api(port, f"/api/v1/uploads/{answer['uploadId']}", token)[1]
        if job["status"] == "done":
            return
        time.sleep(0.1)
    raise AssertionError(f"import not done: {job}")


def test_a_killed_embedded_server_is_started_again_and_nothing_is_lost(tmp_path: Path):
    port = free_port()
    proc = start(tmp_path, port)
    try:
        wait_started(tmp_path, port)
        login = api(port, "/api/v1/user/dev-login", body=b'{"email": "ops@x.io"}')[1]
        assert "token" in login, login
        token = login["token"]
        import_customers(port, token, 0, 100)

        for name in ("redis", "secantus"):
            before = child(proc.pid, name)
            os.kill(before, signal.SIGKILL)
            started = time.monotonic()
            wait_ready(port, timeout=60)
            after = child(proc.pid, name)
            assert after != before and not alive(before)
            assert time.monotonic() - started < 30
        # Both servers came back with their data: the first import is there, and a new
        # one goes through Redis and the database as before.
        import_customers(port, token, 100, 50)
        assert api(port, "/api/v1/customers?limit=1", token)[1]["total"] == 150
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    restarted = [e["server"] for e in events(tmp_path) if e["event"] == "embedded.restarted"]
    assert restarted == ["redis", "secantusdb"]


def test_an_embedded_server_that_cannot_come_back_makes_crmd_exit_non_zero(tmp_path: Path):
    port = free_port()
    proc = start(tmp_path, port)
    try:
        wait_started(tmp_path, port)
        redis = child(proc.pid, "redis")
        # Its data is ruined under it: it will not start again on it.
        (tmp_path / "data" / "redis" / "appendonly.aof").write_text("not an append-only file\n")
        os.kill(redis, signal.SIGKILL)
        assert proc.wait(90) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    seen = [e["event"] for e in events(tmp_path)]
    assert "embedded.lost" in seen and "crmd.dependency_lost" in seen
    assert not [pid for pid in children_of(proc.pid) if alive(pid)]


def test_started_again_at_once_after_a_kill_it_waits_for_the_servers_left_behind(
    tmp_path: Path,
):
    """Killed outright, crmd leaves its servers to the kernel's SIGTERM: the database
    needs a moment to let go of its files. The next crmd waits for them, then starts."""
    port = free_port()
    proc = start(tmp_path, port)
    try:
        wait_started(tmp_path, port)
        login = api(port, "/api/v1/user/dev-login", body=b'{"email": "ops@x.io"}')[1]
        import_customers(port, login["token"], 0, 20)
        proc.kill()
        proc.wait(30)
        proc = start(tmp_path, port)  # at once: the old servers may still be closing
        wait_ready(port)
        login = api(port, "/api/v1/user/dev-login", body=b'{"email": "ops@x.io"}')[1]
        assert api(port, "/api/v1/customers?limit=1", login["token"])[1]["total"] == 20
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
