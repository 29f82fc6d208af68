"""Running the ``crmd`` command as a user would, in a process of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
