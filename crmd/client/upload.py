"""``crmd upload customers FILE``: send a CSV to a running crmd, show the upload and then
the processing as progress bars, end with the counts and the first errors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TextIO

from crmd.client import ApiError, Client
from crmd.ingest.schema import Upload

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
    sending = Progress(out, "upload", (await asyncio.to_thread(path.stat)).st_size)
    async with Client(base_url, token) as crmd:
        try:
            answer = await crmd.upload(
                kind,
                _file_chunks(path, sending),
                filename=path.name,
                mapping=mapping,
                timeout=timeout,
            )
        except ApiError as exc:
            where = exc.details or ""
            out.write(f"\nrefused ({exc.status} {exc.code}): {exc.message} {where}\n")
            return 1
        sending.finish("sent")
        # Said at once: should this command or crmd stop now, the import goes on (or is
        # finished by crmd), and the id is what to follow it by.
        out.write(f"accepted as upload {answer.uploadId}\n")
        processing = Progress(out, "processing", answer.rows.valid)
        started = time.monotonic()

        def progress(job: Upload) -> None:
            persisted = job.rows.persisted
            rate = persisted / max(time.monotonic() - started, 1e-3)
            processing.update(persisted, f"{persisted:,} rows, {rate:,.0f}/s")

        job = await crmd.wait_for_upload(answer.uploadId, POLL_SECONDS, progress)
    counts = job.rows
    processing.finish(f"{counts.persisted:,} rows")
    out.write(
        f"upload {answer.uploadId}: {job.status}. {counts.received:,} rows "
        f"received, {counts.valid:,} valid, {counts.rejected:,} rejected, "
        f"{counts.persisted:,} persisted.\n"
    )
    for error in job.errors[:SHOWN_ERRORS]:
        out.write(f"  line {error.line}, {error.column or 'row'}: {error.message}\n")
    if counts.rejected > SHOWN_ERRORS:
        out.write(
            f"  ... every rejected row: {base_url.rstrip('/')}/api/v1/uploads/"
            f"{answer.uploadId}/errors.csv\n"
        )
    if job.status == "failed":
        reason = job.reason if isinstance(job.reason, str) else ""
        out.write(f"failed: {reason}\n")
        return 1
    return 0
