"""The System page says what is really waiting in each stream: with all the work done
nothing is (the entries kept until the next trim are no lag), and an entry no worker
has read yet is, whatever the Redis version says of lag."""

from __future__ import annotations

import re
from typing import Any

from crmd.app import Crmd
from crmd.streams.worker import stream_stats
from tests.console.test_security import signed_in
from tests.ingest.conftest import upload, wait_done
from tests.receipts.test_receipts_api import settled


def stream_row(html: str, stream: str) -> dict[str, int]:
    found = re.search(
        rf"<tr><td>{re.escape(stream)}</td><td class=\"num\" data-waiting>([0-9,+]+)</td>"
        r"<td class=\"num\" data-pending>([0-9,]+)</td><td class=\"num\">([0-9,]+)</td>",
        html,
    )
    assert found, f"no row for {stream}"
    waiting, pending, kept = (int(v.replace(",", "").rstrip("+")) for v in found.groups())
    return {"waiting": waiting, "pending": pending, "kept": kept}


async def test_with_the_work_done_nothing_is_waiting(
    client: Any, auth: Any, ingesting: Any, system: Crmd
):
    text = "customer_external_id,name,email\nS1,Sys One,s1@example.com\n"
    await wait_done(
        client, auth, (await (await upload(client, auth, "customers", text)).json())["uploadId"]
    )
    await signed_in(client)
    html = await (await client.get("/system")).text()
    row = stream_row(html, system.streams.ingest)
    assert row["kept"] >= 1  # done, and still in the stream until the next trim
    assert row["waiting"] == 0 and row["pending"] == 0, row
    assert "Lag" not in html


async def test_an_entry_no_worker_read_is_waiting(system: Crmd, redis: Any):
    stream = system.streams.receipts
    await settled(system)
    for n in range(3):
        await redis.xadd(stream, {"probe": str(n)})
    [group] = (await stream_stats(redis, stream))["groups"].values()
    assert group == {"pending": 0, "lag": 3}
    [group_name] = (await stream_stats(redis, stream))["groups"]
    taken = await redis.xreadgroup(group_name, "probe", {stream: ">"}, count=1)
    [group] = (await stream_stats(redis, stream))["groups"].values()
    assert group == {"pending": 1, "lag": 2}
    await redis.xack(stream, group_name, taken[0][1][0][0])
    [group] = (await stream_stats(redis, stream))["groups"].values()
    assert group == {"pending": 0, "lag": 2}
    await redis.xreadgroup(group_name, "probe", {stream: ">"}, count=5)
    [group] = (await stream_stats(redis, stream))["groups"].values()
    assert group == {"pending": 2, "lag": 0}
