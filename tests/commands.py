"""Running the ``crmd`` command as a user would, in a process of its own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def crmd_token(data_dir: Path, email: str) -> subprocess.CompletedProcess[str]:
    """``crmd token --email`` with the shipped config and ``data_dir`` as its data dir."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "crmd",
            "--config",
            str(REPO / "crmd.toml"),
            "token",
            "--email",
            email,
        ],
        env={**os.environ, "CRMD_EMBEDDED__DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=120,
    )


class Daemon:
    """``crmd serve`` in a process of its own, on the given servers (the suite's, not
    embedded ones), with a database, stream prefix and consumer name of the test's."""

    def __init__(
        self,
        mongodb: str,
        redis: str,
        port: int,
        database: str,
        prefix: str,
        log_path: Path,
        **env: str,
    ) -> None:
        self.port = port
        self.log_path = log_path
        self.env = {
            **os.environ,
            "CRMD_MONGODB__URL": mongodb,
            "CRMD_MONGODB__DATABASE": database,
            "CRMD_REDIS__URL": redis,
            "CRMD_REDIS__STREAM_PREFIX": prefix,
            "CRMD_AUTH__JWT_SECRET": "daemon-test-secret-" + "x" * 32,
            "CRMD_AUTH__DEV_LOGIN": "true",
            "CRMD_AUTH__GOOGLE_LOGIN": "false",
            "CRMD_STREAMS__CONSUMER_NAME": "daemon-under-test",
            "CRMD_LOGGING__FORMAT": "json",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> float:
        """Start it; returns the seconds it took to answer /readyz with 200."""
        started = time.monotonic()
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "crmd",
                "--config",
                str(REPO / "crmd.toml"),
                "serve",
                "--port",
                str(self.port),
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        log.close()
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"crmd exited with {self.process.returncode}: {self.tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as response:
                    if response.status == 200:
                        return time.monotonic() - started
            except (OSError, urllib.error.HTTPError):
                pass
            if time.monotonic() - started > 120:
                raise AssertionError(f"crmd not ready after 120 s: {self.tail()}")
            time.sleep(0.1)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def token(self, email: str = "ops@example.com") -> str:
        request = urllib.request.Request(
            f"{self.url}/api/v1/user/dev-login",
            data=json.dumps({"email": email}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            token: str = json.loads(response.read())["token"]
            return token

    def call(
        self,
        method: str,
        path: str,
        token: str,
        body: bytes | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        return call(f"{self.url}{path}", method, token, body, content_type)


def call(
    url: str,
    method: str = "GET",
    token: str = "",
    body: bytes | None = None,
    content_type: str = "application/json",
) -> tuple[int, Any]:
    """One API call: the status and the decoded JSON answer (errors included)."""
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")
