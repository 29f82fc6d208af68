"""Uploading as a client would, with the ingest actor running against the real servers."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

CUSTOMERS = (
    "customer_external_id,name,email,lastActive,location,phone,spend,visits\n"
    "C1,Asha Rao,asha@example.com,2024-05-01,Delhi,9999,12000.50,4\n"
    "C2,Ravi,not-an-email,2024-05-01,Pune,,100,1\n"
    "C3,Meera,meera@example.com,2024-03-01,Mumbai,,300,2\n"
    "C4,Dev,dev@example.com,2024-13-01,Mumbai,,1,1\n"
)
ORDERS = (
    "customer_external_id,amount,items,orderDate,order_external_id\n"
    'C1,500,"shoe,sock",2024-05-02,O1\n'
    "C1,250.5,hat,2024-06-01,O2\n"
    "C3,100,,2024-02-01,O3\n"
    "C9,-4,,2024-02-01,O4\n"
)


async def upload(
    client: Any,
    auth: dict[str, str],
    kind: str,
    text: str | bytes,
    name: str = "data.csv",
    path: str = "/api/v1/upload/",
    **fields: str,
) -> Any:
    form = aiohttp.FormData()
    for key, value in fields.items():
        form.add_field(key, value)
    form.add_field(
        "file",
        text.encode() if isinstance(text, str) else text,
        filename=name,
        content_type="text/csv",
    )
    return await client.post(f"{path}{kind}", data=form, headers=auth)


async def wait_done(
    client: Any, auth: dict[str, str], upload_id: str, timeout: float = 30
) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            job: dict[str, Any] = await (
                await client.get(f"/api/v1/uploads/{upload_id}", headers=auth)
            ).json()
            if job["status"] in ("done", "failed"):
                return job
            await asyncio.sleep(0.05)
