"""A gateway for the tests: a local aiohttp server that checks crmd's signature as a
real gateway must, answers per message, and (when asked) posts signed receipts back to
the receiptUrl crmd gave it."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from crmd.plugins import SignatureError, verify
from crmd.testing import sign_receipt

SECRET = "whsec_" + base64.b64encode(b"gateway-and-crmd-share-me!!").decode()


@dataclass
class Gateway:
    secret: str = SECRET
    refuse: dict[str, str] = field(default_factory=dict)
    """``to`` → the reason the gateway refuses that message for."""
    answer_status: int = 200
    answer_text: str = ""
    answer_headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    receipts: bool = False
    """Post a receipt per accepted message: DELIVERED, or FAILED for ``undeliverable``."""
    undeliverable: set[str] = field(default_factory=set)
    batches: list[dict[str, Any]] = field(default_factory=list)
    webhook_ids: list[str] = field(default_factory=list)
    refused_signatures: int = 0
    receipt_answers: list[int] = field(default_factory=list)
    url: str = ""
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def send(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            verify(self.secret, request.headers, body, now=time.time())
        except SignatureError as exc:
            self.refused_signatures += 1
            return web.Response(status=401, text=str(exc))
        await asyncio.sleep(self.delay)
        batch = json.loads(body)
        self.batches.append(batch)
        self.webhook_ids.append(request.headers["webhook-id"])
        if self.answer_status != 200:
            return web.Response(
                status=self.answer_status, text=self.answer_text, headers=self.answer_headers
            )
        if self.answer_text:
            return web.Response(text=self.answer_text, content_type="application/json")
        results = []
        for message in batch["messages"]:
            if message["to"] in self.refuse:
                reason = self.refuse[message["to"]]
                results.append({"id": message["id"], "status": "failed", "reason": reason})
            else:
                results.append(
                    {"id": message["id"], "status": "accepted", "vendorId": f"gw-{message['id']}"}
                )
        if self.receipts:
            accepted = [m for m in batch["messages"] if m["to"] not in self.refuse]
            task = asyncio.create_task(self._post_receipts(batch["receiptUrl"], accepted))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return web.json_response({"results": results})

    async def _post_receipts(self, url: str, messages: list[dict[str, Any]]) -> None:
        await asyncio.sleep(0.2)
        receipts = [
            {
                "vendorId": f"gw-{m['id']}",
                "status": "failed" if m["to"] in self.undeliverable else "delivered",
                "timestamp": "2026-05-01T09:30:00Z",
                "eventId": f"evt-{m['id']}",
                "reason": "handset off" if m["to"] in self.undeliverable else "",
            }
            for m in messages
        ]
        body = json.dumps({"receipts": receipts}).encode()
        async with (
            aiohttp.ClientSession() as http,
            http.post(url, data=body, headers=sign_receipt(body, self.secret)) as answer,
        ):
            self.receipt_answers.append(answer.status)
