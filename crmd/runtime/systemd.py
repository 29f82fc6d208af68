"""systemd's notify protocol (sd_notify): READY=1, WATCHDOG=1, STOPPING=1, STATUS=...

With no ``NOTIFY_SOCKET`` in the environment every call does nothing.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping


class Notifier:
    def __init__(self, environ: Mapping[str, str]) -> None:
        address = environ.get("NOTIFY_SOCKET", "")
        # A leading '@' names a socket in the abstract namespace.
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog_interval = _watchdog_interval(environ)

    def notify(self, *assignments: str) -> bool:
        if not self.address:
            return False
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            try:
                sock.sendto("\n".join(assignments).encode(), self.address)
            except OSError:
                return False
        return True


def _watchdog_interval(environ: Mapping[str, str]) -> float | None:
    """Half the watchdog period systemd asked for, or None when it asked for none
    (or asked another process: WATCHDOG_PID names the one it means)."""
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    pid = environ.get("WATCHDOG_PID")
    if usec <= 0 or (pid and pid != str(os.getpid())):
        return None
    return usec / 2_000_000
