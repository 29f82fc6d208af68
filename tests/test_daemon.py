"""crmd serve as systemd would run it: a process of its own with a NOTIFY_SOCKET."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from crmd.services.children import free_port
from tests.commands import crmd_token

pytestmark = pytest.mark.slow  # runs crmd as a daemon

REPO = Path(__file__).resolve().parent.parent


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def serve(tmp_path: Path, port: int) -> list[str]:
    """``crmd serve`` with the shipped config, on ``port``, with a data dir of its own."""
    return [
        "serve",
        "--config",
        str(REPO / "crmd.toml"),
        "--port",
        str(port),
        "--data-dir",
        str(tmp_path / "data"),
    ]


def crmd(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "crmd", *args],
        env={**os.environ, "CRMD_LOGGING__FORMAT": "json", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_serve_notifies_ready_watchdog_stopping_and_leaves_nothing_behind(tmp_path: Path):
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(60)
    port = free_port()
    started = time.monotonic()
    proc = crmd(
        serve(tmp_path, port),
        {"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "500000"},
    )
    try:
        messages = [notify.recv(4096).decode()]
        assert messages[0].startswith("READY=1")
        status, body = get(f"http://127.0.0.1:{port}/readyz")
        assert status == 200, body
        assert body["actors"]["http"]["status"] == "ok"
        assert time.monotonic() - started < 30
        messages.append(notify.recv(4096).decode())
        assert messages[1] == "WATCHDOG=1"
        # A script's token, made beside the running daemon, works against it.
        made = crmd_token(tmp_path / "data", "ops@example.com")
        assert made.returncode == 0, made.stderr
        token = made.stdout.strip()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/user/me", headers={"x-access-token": token}
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # a busy machine
            assert json.loads(response.read())["user"]["email"] == "ops@example.com"
        servers = children_of(proc.pid)
        assert len(servers) == 2  # Redis and SecantusDB
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        while (message := notify.recv(4096).decode()) == "WATCHDOG=1":
            pass
        assert message.startswith("STOPPING=1")
        assert not [pid for pid in servers if alive(pid)]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        notify.close()
    log = proc.stdout.read().decode() if proc.stdout else ""
    events = [json.loads(line)["event"] for line in log.splitlines() if line.startswith("{")]
    assert events.index("crmd.ready") < events.index("crmd.stopping") < events.index("crmd.stopped")


def test_failed_start_reports_one_line_and_stops_what_it_started(tmp_path: Path):
    proc = crmd(
        serve(tmp_path, free_port()),
        {
            "CRMD_MONGODB__URL": "mongodb://127.0.0.1:1/?directConnection=true",
            "CRMD_MONGODB__CONNECT_TIMEOUT": "2",
        },
    )
    output, _ = proc.communicate(timeout=90)
    assert proc.returncode == 1
    last = output.decode().strip().splitlines()[-1]
    assert last.startswith("crmd: cannot start: mongodb at mongodb://127.0.0.1:1/")
    redis_started = [
        json.loads(line) for line in output.decode().splitlines() if '"embedded.started"' in line
    ]
    assert [e["server"] for e in redis_started] == ["redis"]
    assert not alive(redis_started[0]["pid"])


@pytest.mark.parametrize("command", [["version"], ["check-config"], ["plugins"]])
def test_cli_commands_exit_zero_on_the_shipped_config(command: list[str]):
    result = subprocess.run(
        [sys.executable, "-m", "crmd", *command],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_a_taken_port_fails_at_once_and_starts_nothing(tmp_path: Path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        started = time.monotonic()
        proc = crmd(
            serve(tmp_path, port),
            {},
        )
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert time.monotonic() - started < 15
    text = output.decode()
    assert text.strip().splitlines()[-1] == (
        f"crmd: cannot start: cannot listen on 127.0.0.1:{port}: Address already in use"
    )
    assert "embedded.started" not in text
