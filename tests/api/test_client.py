"""``crmd.client`` against a real crmd: typed answers, and crmd's errors as ApiError."""

from __future__ import annotations

from typing import Any

import pytest

from crmd.campaigns.schema import Campaign
from crmd.client import ApiError, CampaignBody, Client
from crmd.ingest.schema import Upload

CSV = (
    b"name,email,spend,visits\n"
    b"Ada,ada@example.com,1500,4\n"
    b"Bob,bob@example.com,20,1\n"
    b"Cy,not-an-email,30,1\n"
)


async def test_a_client_imports_segments_and_saves_a_campaign(client: Any, ingesting: Any) -> None:
    async with Client(str(client.make_url(""))) as crmd:
        signed = await crmd.dev_login("author@example.com")
        assert (await crmd.me()).user.email == "author@example.com" == signed.user.email

        accepted = await crmd.upload("customers", CSV, filename="people.csv")
        assert (accepted.rows.valid, accepted.rows.rejected) == (2, 1)
        seen: list[str] = []
        done = await crmd.wait_for_upload(accepted.uploadId, 0.05, lambda j: seen.append(j.status))
        assert isinstance(done, Upload)
        assert (done.status, done.rows.persisted, seen[-1]) == ("done", 2, "done")
        assert done.errors[0].line == 4 and done.errors[0].column == "email"
        assert "not-an-email" in await crmd.upload_errors(accepted.uploadId)

        customers = await crmd.customers(rule="spend > 1000")
        assert [c["email"] for c in customers.items] == ["ada@example.com"]
        segment = await crmd.create_segment("spend > 1000", "Big spenders")
        assert segment.audienceSize == 1
        preview = await crmd.preview("visits >= 1", ids=True)
        assert preview.audienceSize == 2 and len(preview.audienceIds) == 2

        draft = await crmd.create_campaign(
            CampaignBody(name="Thanks", message="Hi {name}", segmentId=segment.id, draft=True)
        )
        assert isinstance(draft, Campaign)
        assert (draft.status, draft.audienceSize, draft.actions) == ("draft", 1, ["send", "cancel"])
        assert (await crmd.campaigns()).items[0].id == draft.id
        cancelled = await crmd.act(draft.id, "cancel")
        assert cancelled.status == "cancelled"
        with pytest.raises(ApiError) as refused:
            await crmd.act(draft.id, "pause")
        assert (refused.value.status, refused.value.code) == (409, "conflict")
        await crmd.delete_segment(segment.id)
        assert (await crmd.segments()).total == 0


async def test_errors_carry_crmds_code_and_where(client: Any) -> None:
    async with Client(str(client.make_url(""))) as crmd:
        with pytest.raises(ApiError) as unsigned:
            await crmd.segments()
        assert (unsigned.value.status, unsigned.value.code) == (401, "unauthorized")
        await crmd.dev_login("author@example.com")
        with pytest.raises(ApiError) as bad_rule:
            await crmd.create_segment("spend >> 3")
        assert bad_rule.value.status == 422
        assert bad_rule.value.code == "invalid_rule"
        assert bad_rule.value.details["column"] == 8
        with pytest.raises(ApiError) as missing:
            await crmd.campaign("0123456789abcdef01234567")
        assert (missing.value.status, missing.value.code) == (404, "not_found")
        document = await crmd.openapi()
        assert "/api/v1/campaigns" in document["paths"]
