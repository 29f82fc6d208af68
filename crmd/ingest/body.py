"""An upload's request body: ``multipart/form-data`` with one ``file`` part (and an
optional ``mapping`` field), or a raw CSV body, streamed as it arrives into the parser
running in a worker thread."""

from __future__ import annotations

import asyncio
import queue
from collections.abc import AsyncIterator, Iterator
from typing import Any

from aiohttp import BodyPartReader, MultipartReader, web

from crmd.errors import BadRequest, UnsupportedMediaType
from crmd.http.bodies import BROKEN_FORM, broken_form, next_part, part_chunk
from crmd.ingest.parse import Limits, Summary, parse_upload
from crmd.ingest.spool import Spool

READ_SIZE = 256 * 1024
QUEUE_DEPTH = 16
MAX_FORM_FIELD = 64 * 1024
CSV_TYPES = frozenset({"text/csv", "application/csv", "text/plain", "application/vnd.ms-excel"})
_END = object()


class UploadBody:
    """The file's bytes, whichever way they came, and what came with them."""

    def __init__(
        self,
        file_name: str,
        mapping: str | None,
        data: AsyncIterator[bytes],
        rest: MultipartReader | None = None,
        fields: dict[str, str] | None = None,
    ) -> None:
        self.file_name = file_name
        self.mapping = mapping
        self.data = data
        self.rest = rest
        self.fields = fields or {}
        """The form's other fields before the file (those ``open_body`` was told of)."""

    async def ensure_nothing_else(self) -> None:
        """After the file: a multipart body may hold nothing more, and must end with its
        closing boundary (without it, the file may have been cut short)."""
        if self.rest is None:
            return
        try:
            following = await self.rest.next()
        except BROKEN_FORM:  # aiohttp: "Reading after EOF"
            raise broken_form() from None
        if following is not None:
            raise BadRequest(
                "the form may hold one 'file' part (after an optional "
                "'mapping' field) and nothing else",
                code="unexpected_part",
            )


async def open_body(request: web.Request, fields: tuple[str, ...] = ()) -> UploadBody:
    """``multipart/form-data`` with one ``file`` part (after an optional ``mapping``
    and the named ``fields``), or a raw CSV body."""
    mapping = request.query.get("mapping")
    before: dict[str, str] = {}
    if request.content_type == "multipart/form-data":
        try:
            form = await request.multipart()
        except BROKEN_FORM:
            raise broken_form() from None
        while True:
            part = await next_part(form, request.content)
            if part is None:
                raise BadRequest("the form has no 'file' part", code="missing_file")
            if isinstance(part, MultipartReader):
                raise BadRequest("nested multipart bodies are not accepted", code="unexpected_part")
            if part.name == "mapping" and part.filename is None:
                mapping = (await _read_field(part)).decode("utf-8", "replace")
                continue
            if part.name in fields and part.filename is None and part.name not in before:
                before[part.name] = (await _read_field(part)).decode("utf-8", "replace")
                continue
            if part.name != "file":
                expected = ", ".join(f"'{f}'" for f in ("mapping", *fields))
                raise BadRequest(
                    f"unexpected form part {part.name!r}: send 'file' (and "
                    f"optionally {expected} before it)",
                    code="unexpected_part",
                )
            return UploadBody(
                part.filename or "upload.csv", mapping, _part_chunks(part), form, before
            )
    if request.content_type in CSV_TYPES:
        name = request.query.get("filename", "upload.csv")[:255]
        return UploadBody(name, mapping, request.content.iter_chunked(READ_SIZE))
    raise UnsupportedMediaType(
        f"send multipart/form-data with a 'file' part, or a text/csv body "
        f"(got {request.content_type or 'no content type'})"
    )


async def _read_field(part: BodyPartReader) -> bytes:
    data = b""
    while chunk := await part_chunk(part, 8192):
        data += chunk
        if len(data) > MAX_FORM_FIELD:
            raise BadRequest(f"form field {part.name!r} is too long", code="field_too_long")
    return data


async def _part_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part_chunk(part, READ_SIZE):
        yield chunk


async def parse_streaming(
    data: AsyncIterator[bytes], kind: str, mapping: dict[str, str], limits: Limits, spool: Spool
) -> Summary:
    """Feed the body, as it arrives, to the parser running in a worker thread: the event
    loop only moves bytes, and a bounded queue keeps memory flat."""
    feed: queue.Queue[object] = queue.Queue(maxsize=QUEUE_DEPTH)

    def pieces() -> Iterator[bytes]:
        while (item := feed.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]

    loop = asyncio.get_running_loop()
    parsing: asyncio.Future[Summary] = loop.run_in_executor(
        None, parse_upload, pieces(), kind, mapping, limits, spool
    )
    try:
        async for piece in data:
            if not await _put(feed, piece, parsing):
                break  # the parser stopped early: it has the answer
        else:
            await _put(feed, _END, parsing)
    except BaseException as exc:
        await _put(feed, exc if isinstance(exc, Exception) else ConnectionError(), parsing)
        await asyncio.gather(parsing, return_exceptions=True)
        raise
    return await parsing


async def _put(feed: queue.Queue[object], item: object, parsing: asyncio.Future[Any]) -> bool:
    """Queue ``item`` without blocking the loop; False when the parser has finished."""
    while True:
        if parsing.done():
            return False
        try:
            feed.put_nowait(item)
            return True
        except queue.Full:
            await asyncio.sleep(0.002)
