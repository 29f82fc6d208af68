"""Secrets crmd makes for itself and keeps in its data dir (mode 0600)."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path

MIN_BYTES = 32


def read_or_create_secret(path: Path) -> str:
    """The secret in ``path``, created on first use. Written to a temporary file and
    linked into place, so a reader never sees a half-written secret and two processes
    racing agree on one."""
    try:
        secret = path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".secret-")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)  # atomic; the first writer wins
        finally:
            os.unlink(temporary)
        secret = path.read_text().strip()
    if len(secret.encode()) < MIN_BYTES:
        raise ValueError(f"{path}: the secret is shorter than {MIN_BYTES} bytes")
    return secret
