"""``crmd upload customers FILE``: send a CSV to a running crmd, show the upload and then
the processing as progress bars, end with the counts and the first errors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TextIO

import aiohttp

CHUNK = 256 * 1024
POLL_SECONDS = 0.5
SHOWN_ERRORS = 5


class Progress:
    """One line redrawn in place on a terminal; a line per quarter elsewhere (logs)."""

    def __init__(self, out: TextIO, label: str, total: float, unit: str = "") -> None:
        self.out, self.label, self.total, self.unit = out, label, max(total, 1), unit
        self.tty = out.isatty()
        self._quarter = -1

    def update(self, done: float, note: str = "") -> None:
        share = min(done / self.total, 1.0)
        if self.tty:
            bar = "#" * int(share * 30)
            self.out.write(f"\r{self.label:<10} [{bar:<30}] {share:6.1%} {note}")
            self.out.flush()
        elif share < 1 and int(share * 4) > self._quarter:
            self._quarter = int(share * 4)
            self.out.write(f"{self.label}: {share:.0%} {note}\n")

    def finish(self, note: str = "") -> None:
        if self.tty:
            self.update(self.total, note)
            self.out.write("\n")
        else:
            self.out.write(f"{self.label}: 100% {note}\n")


async def _file_chunks(path: Path, progress: Progress) -> AsyncIterator[bytes]:
    sent = 0
    with path.open("rb") as handle:
        while chunk := await asyncio.to_thread(handle.read, CHUNK):
            sent += len(chunk)
            progress.update(sent, f"{sent / 1e6:.1f}/{progress.total / 1e6:.1f} MB")
            yield chunk


async def upload_file(
    base_url: str,
    token: str,
    kind: str,
    path: Path,
    mapping: str | None,
    out: TextIO,
    timeout: float = 3600,
) -> int:
    """Returns the exit code: 0 when every valid row is persisted."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "text/csv"}
    params = {"filename": path.name, **({"mapping": mapping} if mapping else {})}
    sending = Progress(out, "upload", (await asyncio.to_thread(path.stat)).st_size)
    async with aiohttp.ClientSession(
        base_url=base_url.rstrip("/") + "/", timeout=aiohttp.ClientTimeout(total=timeout)
    ) as session:
        async with session.post(
            f"api/v1/upload/{kind}",
            data=_file_chunks(path, sending),
            headers=headers,
            params=params,
        ) as response:
            answer: dict[str, Any] = await response.json(content_type=None)
        if response.status != 202:
            error = answer.get("error", {})
            where = error.get("details") or ""
            out.write(
                f"\nrefused ({response.status} {error.get('code')}): "
                f"{error.get('message')} {where}\n"
            )
            return 1
        sending.finish("sent")
        rows = answer["rows"]
        processing = Progress(out, "processing", rows["valid"])
        job = await _follow(session, answer["uploadId"], headers, processing)
    processing.finish(f"{job['rows']['persisted']:,} rows")
    counts = job["rows"]
    out.write(
        f"upload {answer['uploadId']}: {job['status']}. {counts['received']:,} rows "
        f"received, {counts['valid']:,} valid, {counts['rejected']:,} rejected, "
        f"{counts['persisted']:,} persisted.\n"
    )
    for error in job.get("errors", [])[:SHOWN_ERRORS]:
        out.write(f"  line {error['line']}, {error['column'] or 'row'}: {error['message']}\n")
    if counts["rejected"] > SHOWN_ERRORS:
        out.write(
            f"  ... every rejected row: {base_url.rstrip('/')}/api/v1/uploads/"
            f"{answer['uploadId']}/errors.csv\n"
        )
    if job["status"] == "failed":
        out.write(f"failed: {job.get('reason', '')}\n")
        return 1
    return 0


async def _follow(
    session: aiohttp.ClientSession, upload_id: str, headers: dict[str, str], progress: Progress
) -> dict[str, Any]:
    started = time.monotonic()
    while True:
        async with session.get(f"api/v1/uploads/{upload_id}", headers=headers) as response:
            job: dict[str, Any] = await response.json(content_type=None)
        persisted = job["rows"]["persisted"]
        rate = persisted / max(time.monotonic() - started, 1e-3)
        progress.update(persisted, f"{persisted:,} rows, {rate:,.0f}/s")
        if job["status"] in ("done", "failed"):
            return job
        await asyncio.sleep(POLL_SECONDS)
