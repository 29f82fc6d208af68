"""crmd's child processes: started in a session of their own (so a Ctrl-C at the
terminal reaches crmd, which drains first, and not them), with a parent-death signal (so
they go when crmd goes, even on SIGKILL), a umask that keeps their files crmd's user's
alone, and a pid file, so that a child left behind by a crmd killed outright is waited
for before its successor starts on the same data."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any

import structlog

from crmd.config import redact_url

log = structlog.get_logger(__name__)

LOOPBACK = "127.0.0.1"
_PR_SET_PDEATHSIG = 1


class EmbeddedError(Exception):
    """An embedded server could not be found, started or reached."""


class NoUser(EmbeddedError):
    """The server asks for a password and knows no user for it: provision one."""


Provision = Callable[["ServerProcess", float], Awaitable[None]]


class ServerProcess:
    """One child server: its command line, its log file and its process. Started again
    with the same command line (the same port, the same data) when it dies."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        url: str,
        log_path: Path,
        provision: Provision | None = None,
    ) -> None:
        self.name = name
        self.argv = argv
        self.url = url
        self.log_path = log_path
        self.provision = provision
        """Makes the user the URL signs in as, the first time (see start_and_wait)."""
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._log_start = 0
        self.pid_path = log_path.with_suffix(".pid")
        """Where the running child's pid is kept: a crmd that died by SIGKILL leaves a
        child that still holds the data for a moment, and the next start waits for it."""

    def start(self, argv: list[str] | None = None) -> None:
        reap_orphan(self.pid_path)
        self._log_file = open_private(self.log_path, "ab")
        self._log_start = self._log_file.tell()
        self.process = subprocess.Popen(
            argv or self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            umask=0o077,  # its data files are readable by crmd's user only
            # Spawned from the event loop's thread: the death signal is tied to the
            # thread that forks, and this one lives as long as crmd does.
            preexec_fn=_die_with_parent(),
        )
        self.pid_path.write_text(f"{self.process.pid}\n")
        log.info(
            "embedded.started", server=self.name, pid=self.process.pid, url=redact_url(self.url)
        )

    @property
    def exit_code(self) -> int | None:
        return self.process.poll() if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL if it is still there after ``timeout`` seconds."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("embedded.kill", server=self.name, pid=process.pid)
                process.kill()
                process.wait()
            log.info("embedded.stopped", server=self.name, code=process.returncode)
        self.pid_path.unlink(missing_ok=True)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log_tail(self, lines: int = 5) -> str:
        """The last lines this run of the server wrote (not an earlier run's)."""
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(self._log_start)
                text = handle.read().decode(errors="replace")
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text.splitlines()[-lines:] if line.strip())


ORPHAN_GRACE = 20.0


def reap_orphan(pid_path: Path) -> None:
    """A server left by a crmd that died by SIGKILL got SIGTERM from the kernel and is
    still closing its files: wait for it (and kill it past ORPHAN_GRACE), so that the
    new one does not find its data locked. Only a process that is one of crmd's
    servers (by its command line) is touched."""
    try:
        pid = int(pid_path.read_text().strip())
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        pid_path.unlink(missing_ok=True)
        return
    if b"secantus" not in command and b"redis-server" not in command:
        pid_path.unlink(missing_ok=True)
        return
    log.warning("embedded.orphan", pid=pid, waiting=ORPHAN_GRACE)
    deadline = time.monotonic() + ORPHAN_GRACE
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.05)
    pid_path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def open_private(path: Path, mode: str) -> IO[Any]:
    """Open (creating it 0600 if new) a file only crmd's user may read."""
    flags = os.O_CREAT | os.O_APPEND | (os.O_RDWR if "+" in mode else os.O_WRONLY)
    return os.fdopen(os.open(path, flags, 0o600), mode)


def _die_with_parent() -> Callable[[], None]:
    """The child's first act: ask for SIGTERM when crmd dies, even by SIGKILL. prctl is
    looked up here, in crmd, so that the child between fork and exec only calls it."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return arm


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port
