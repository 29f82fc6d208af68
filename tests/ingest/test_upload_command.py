"""`crmd upload` against a real crmd app: progress, counts, the first errors."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.ingest.conftest import CUSTOMERS

pytestmark = pytest.mark.slow  # runs crmd as a process

REPO = Path(__file__).resolve().parents[2]


async def test_upload_command_shows_progress_and_ends_with_counts_and_errors(
    client: Any,
    auth: dict[str, str],
    ingesting: Any,
    tmp_path: Path,
):
    path = tmp_path / "customers.csv"
    path.write_text(CUSTOMERS)
    env = {**os.environ, "CRMD_TOKEN": auth["Authorization"].split()[1]}
    result = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "crmd",
            "--config",
            str(REPO / "crmd.toml"),
            "upload",
            "customers",
            str(path),
            "--url",
            str(client.make_url("/")),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert "upload: 100% sent" in lines
    accepted = next(line for line in lines if line.startswith("accepted as upload "))
    upload_id = accepted.removeprefix("accepted as upload ")
    assert any(line.startswith(f"upload {upload_id}: done") for line in lines)
    assert any(line.startswith("processing: 100%") for line in lines)
    assert any(
        line.endswith(": done. 4 rows received, 2 valid, 2 rejected, 2 persisted.")
        for line in lines
    )
    assert "  line 3, email: email 'not-an-email' is not an email address" in lines


async def test_upload_command_reports_a_refusal(client: Any, auth: dict[str, str], tmp_path: Path):
    path = tmp_path / "bad.csv"
    path.write_text("name,name\n")
    result = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "crmd",
            "--config",
            str(REPO / "crmd.toml"),
            "upload",
            "customers",
            str(path),
            "--url",
            str(client.make_url("/")),
            "--token",
            auth["Authorization"].split()[1],
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "refused (422 duplicate_header)" in result.stderr
