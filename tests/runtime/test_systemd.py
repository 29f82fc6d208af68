"""sd_notify against a real datagram socket."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from crmd.runtime.systemd import Notifier


def test_notify_sends_assignments_to_the_socket(tmp_path: Path):
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        notifier = Notifier({"NOTIFY_SOCKET": path})
        assert notifier.notify("READY=1", "STATUS=serving")
        assert sock.recv(4096) == b"READY=1\nSTATUS=serving"


def test_abstract_socket_names_are_supported():
    name = f"crmd-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).notify("WATCHDOG=1")
        assert sock.recv(4096) == b"WATCHDOG=1"


def test_without_notify_socket_nothing_is_sent():
    assert Notifier({}).notify("READY=1") is False


def test_watchdog_interval_is_half_the_period_for_this_process_only():
    assert Notifier({"WATCHDOG_USEC": "4000000"}).watchdog_interval == 2.0
    mine = {"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid())}
    assert Notifier(mine).watchdog_interval == 0.5
    assert Notifier({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}).watchdog_interval is None
    assert Notifier({"WATCHDOG_USEC": "soon"}).watchdog_interval is None
