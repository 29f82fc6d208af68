"""``crmd.client``: a small async client for crmd's API, typed by the very Structs the
server encodes its answers from (and the bodies it decodes), so a client and the server
cannot disagree on a field.

::

    import asyncio
    from crmd.client import Client

    async def main() -> None:
        async with Client("http://127.0.0.1:8080", token="...") as crmd:
            upload = await crmd.upload("customers", Path("customers.csv"))
            done = await crmd.wait_for_upload(upload.uploadId)
            print(done.status, done.rows.persisted)
            segment = await crmd.create_segment("spend > 1000 AND visits >= 3", "Loyal")
            campaign = await crmd.create_campaign(
                CampaignBody(name="Thanks", message="Hi {name}!", segmentId=segment.id)
            )
            print((await crmd.campaign(campaign.id)).stats)

    asyncio.run(main())

Every call raises ``ApiError`` for an error answer, with crmd's ``status``, ``code``,
``message`` and ``details`` (the field, the line, the column...).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import aiohttp
import msgspec

from crmd.ai.schema import MessagesBody, RuleSuggestion, Summary, Tags, Variants
from crmd.auth.schema import Me, SignedIn
from crmd.campaigns.schema import (
    Campaign,
    CampaignBody,
    CampaignList,
    Dashboard,
    LogPage,
    RetriedCampaign,
    TestSent,
)
from crmd.http.describe import ErrorBody
from crmd.ingest.schema import RecordList, Upload, UploadAccepted, UploadList
from crmd.segments.schema import Preview, Segment, SegmentList
from crmd.streams.schema import DeadLetterList

T = TypeVar("T")
FINISHED = ("done", "failed")

__all__ = ["ApiError", "CampaignBody", "Client", "MessagesBody"]


class ApiError(Exception):
    """crmd answered an error: ``status``, and its envelope's ``code``, ``message`` and
    ``details``."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.details = status, code, message, details


class Client:
    """One crmd server, one token. Use it as an async context manager (it owns an
    aiohttp session), or hand it a session of yours."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 60,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._session = session
        self._owned = session is None
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owned and self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    # -- the calls -------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        answer: type[T],
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: aiohttp.ClientTimeout | None = None,
    ) -> T:
        """Any route: ``answer`` is the Struct its success is decoded into (None for an
        answer without a body)."""
        sent = dict(headers or {})
        if self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        body = data
        if json is not None:
            body = msgspec.json.encode(json)
            sent["Content-Type"] = "application/json"
        query = {k: _query_value(v) for k, v in (params or {}).items() if v is not None}
        async with self.session.request(
            method,
            f"{self.base_url}{path}",
            data=body,
            params=query,
            headers=sent,
            timeout=timeout or self.timeout,
        ) as response:
            raw = await response.read()
            if response.status >= 400:
                raise _error(response.status, raw)
        if answer is type(None):
            return None
        if answer is str:
            return raw.decode("utf-8")  # type: ignore[return-value]
        return msgspec.json.decode(raw, type=answer)

    # signing in
    async def dev_login(self, email: str) -> SignedIn:
        """Sign in by email (a server with dev login, from its own machine); the client
        keeps the token."""
        signed = await self.request(
            "POST", "/api/v1/user/dev-login", SignedIn, json={"email": email}
        )
        self.token = signed.token
        return signed

    async def me(self) -> Me:
        return await self.request("GET", "/api/v1/user/me", Me)

    # uploads and records
    async def upload(
        self,
        kind: str,
        data: Path | bytes | AsyncIterable[bytes],
        *,
        filename: str | None = None,
        mapping: str | None = None,
        idempotency_key: str | None = None,
        timeout: float = 3600,
    ) -> UploadAccepted:
        """Send a CSV (a file's path, its bytes, or chunks as they are read) of
        ``customers`` or ``orders``."""
        if isinstance(data, Path):
            filename = filename or data.name
            data = _file_chunks(data)
        headers = {"Content-Type": "text/csv"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        return await self.request(
            "POST",
            f"/api/v1/upload/{kind}",
            UploadAccepted,
            data=data,
            params={"filename": filename, "mapping": mapping},
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout),
        )

    async def upload_status(self, upload_id: str) -> Upload:
        return await self.request("GET", f"/api/v1/uploads/{upload_id}", Upload)

    async def wait_for_upload(
        self,
        upload_id: str,
        poll_seconds: float = 0.5,
        progress: Callable[[Upload], None] | None = None,
    ) -> Upload:
        """The upload once it is ``done`` or ``failed``; ``progress`` sees each poll."""
        while True:
            job = await self.upload_status(upload_id)
            if progress is not None:
                progress(job)
            if job.status in FINISHED:
                return job
            await asyncio.sleep(poll_seconds)

    async def uploads(self, limit: int = 50, offset: int = 0) -> UploadList:
        params = {"limit": limit, "offset": offset}
        return await self.request("GET", "/api/v1/uploads", UploadList, params=params)

    async def upload_errors(self, upload_id: str) -> str:
        """Every rejected row, as the CSV crmd serves."""
        return await self.request("GET", f"/api/v1/uploads/{upload_id}/errors.csv", str)

    async def customers(
        self, limit: int = 50, cursor: str | None = None, rule: str | None = None
    ) -> RecordList:
        params = {"limit": limit, "cursor": cursor, "rule": rule}
        return await self.request("GET", "/api/v1/customers", RecordList, params=params)

    async def orders(self, limit: int = 50, cursor: str | None = None) -> RecordList:
        params = {"limit": limit, "cursor": cursor}
        return await self.request("GET", "/api/v1/orders", RecordList, params=params)

    # segments
    async def create_segment(self, rule: str, name: str | None = None) -> Segment:
        body = {"rule": rule, **({"name": name} if name else {})}
        return await self.request("POST", "/api/v1/segments", Segment, json=body)

    async def segments(self, limit: int = 50, offset: int = 0) -> SegmentList:
        params = {"limit": limit, "offset": offset}
        return await self.request("GET", "/api/v1/segments", SegmentList, params=params)

    async def segment(self, segment_id: str, refresh: bool = False) -> Segment:
        params = {"refresh": "true" if refresh else None}
        return await self.request("GET", f"/api/v1/segments/{segment_id}", Segment, params=params)

    async def update_segment(
        self, segment_id: str, *, rule: str | None = None, name: str | None = None
    ) -> Segment:
        body = {k: v for k, v in (("rule", rule), ("name", name)) if v is not None}
        return await self.request("PUT", f"/api/v1/segments/{segment_id}", Segment, json=body)

    async def delete_segment(self, segment_id: str) -> None:
        await self.request("DELETE", f"/api/v1/segments/{segment_id}", type(None))

    async def preview(self, rule: str, ids: bool = False) -> Preview:
        body = {"rule": rule, "ids": ids}
        return await self.request("POST", "/api/v1/segments/preview", Preview, json=body)

    # campaigns
    async def create_campaign(self, body: CampaignBody) -> Campaign:
        return await self.request("POST", "/api/v1/campaigns", Campaign, json=body)

    async def campaigns(self, limit: int = 50, cursor: str | None = None) -> CampaignList:
        params = {"limit": limit, "cursor": cursor}
        return await self.request("GET", "/api/v1/campaigns", CampaignList, params=params)

    async def campaign(self, campaign_id: str) -> Campaign:
        return await self.request("GET", f"/api/v1/campaigns/{campaign_id}", Campaign)

    async def logs(
        self,
        campaign_id: str,
        status: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> LogPage:
        params = {"status": status, "limit": limit, "cursor": cursor}
        path = f"/api/v1/campaigns/{campaign_id}/logs"
        return await self.request("GET", path, LogPage, params=params)

    async def act(self, campaign_id: str, action: str) -> Campaign:
        """``send``, ``pause``, ``resume`` or ``cancel``; 409 (an ApiError) when the
        campaign's state does not allow it."""
        return await self.request("POST", f"/api/v1/campaigns/{campaign_id}/{action}", Campaign)

    async def retry_failed(self, campaign_id: str) -> RetriedCampaign:
        path = f"/api/v1/campaigns/{campaign_id}/retry-failed"
        return await self.request("POST", path, RetriedCampaign)

    async def test_send(self, campaign_id: str, email: str) -> TestSent:
        path = f"/api/v1/campaigns/{campaign_id}/test"
        return await self.request("POST", path, TestSent, json={"email": email})

    async def dashboard(self) -> Dashboard:
        return await self.request("GET", "/api/v1/dashboard-summary", Dashboard)

    # suggestions and operations
    async def suggest_messages(self, body: MessagesBody) -> Variants:
        return await self.request("POST", "/api/v1/ai/messages", Variants, json=body)

    async def rule_from_text(self, text: str) -> RuleSuggestion:
        return await self.request("POST", "/api/v1/ai/rule", RuleSuggestion, json={"text": text})

    async def summary(self, campaign_id: str) -> Summary:
        return await self.request("GET", f"/api/v1/campaigns/{campaign_id}/summary", Summary)

    async def tags(self, rule: str) -> Tags:
        return await self.request("POST", "/api/v1/ai/tags", Tags, json={"rule": rule})

    async def dead_letters(self, stream: str | None = None, limit: int = 50) -> DeadLetterList:
        params = {"stream": stream, "limit": limit}
        return await self.request("GET", "/api/v1/dead-letters", DeadLetterList, params=params)

    async def openapi(self) -> dict[str, Any]:
        return await self.request("GET", "/api/v1/openapi.json", dict[str, Any])


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _error(status: int, raw: bytes) -> ApiError:
    try:
        error = msgspec.json.decode(raw, type=ErrorBody).error
    except (msgspec.DecodeError, msgspec.ValidationError):
        return ApiError(status, "http_error", raw[:200].decode("utf-8", "replace"))
    return ApiError(status, error.code, error.message, error.details)


async def _file_chunks(path: Path, size: int = 256 * 1024) -> AsyncIterable[bytes]:
    with path.open("rb") as handle:
        while chunk := await asyncio.to_thread(handle.read, size):
            yield chunk
