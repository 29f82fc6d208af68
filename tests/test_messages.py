"""A message's home: its status and rank, its id and the key a vendor sees."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmd.campaigns.schema import LogEntry
from crmd.campaigns.stats import GROUPS
from crmd.messages import (
    FINAL_RANK,
    LOG_STATUSES,
    RANK,
    REACHED,
    REPORTED,
    MessageStatus,
    campaign_of,
    legacy_message_id,
    message_id,
    parse_send_key,
    send_key,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_status_is_its_upper_case_name_stored_and_sent_as_plain_text():
    for status in MessageStatus:
        assert status == status.name == status.value
        assert msgspec.json.encode(status) == f'"{status.name}"'.encode()
        assert f"times.{status}" == f"times.{status.name}"


def test_ranks_rise_along_the_way_and_failures_win():
    S = MessageStatus
    order = [S.PENDING, S.SENT, S.DELIVERED, S.OPENED, S.CLICKED, S.FAILED, S.BOUNCED]
    order.append(S.COMPLAINED)
    held = {s: RANK[s] for s in RANK if s != S.SOFT_BOUNCED}
    assert [RANK[s] for s in order] == sorted(held.values()) == list(range(8))
    assert max(RANK.values()) < FINAL_RANK
    assert S.PENDING not in REPORTED and set(REPORTED) == set(RANK) - {S.PENDING}
    assert not set(REACHED) & {S.PENDING, S.FAILED, S.BOUNCED}
    # A soft bounce is reported but never raises a status: its rank is PENDING's.
    assert RANK[S.SOFT_BOUNCED] == RANK[S.PENDING] and S.SOFT_BOUNCED not in LOG_STATUSES


def test_every_status_is_shown_and_counted_in_exactly_one_figure():
    assert tuple(s.value for s in MessageStatus if s != MessageStatus.SOFT_BOUNCED) == LOG_STATUSES
    counted = [status for statuses in GROUPS.values() for status in statuses]
    assert sorted(counted) == sorted(LOG_STATUSES)
    entry = dict(id="m", customerId="c", message="hi", vendorMessageId=None, reason=None)
    for status in LOG_STATUSES:
        decoded = msgspec.convert({**entry, "status": status, "updatedAt": NOW}, LogEntry)
        assert decoded.status == status
    with pytest.raises(msgspec.ValidationError, match=r"\$\.status"):
        msgspec.convert({**entry, "status": "sent", "updatedAt": NOW}, LogEntry)


@given(st.text(max_size=30), st.text(max_size=30))
def test_a_message_id_names_its_campaign(campaign: str, customer: str):
    campaign = campaign.encode().hex()[:24].ljust(24, "0")
    made = message_id(campaign, customer)
    assert campaign_of(made) == campaign
    assert made == message_id(campaign, customer)  # the same message, however often
    assert campaign_of(legacy_message_id(campaign, customer)) is None


def test_the_key_a_vendor_sees_carries_the_retry_round():
    log = message_id("c" * 24, "someone")
    assert send_key({"_id": log}) == log == send_key({"_id": log, "round": 0})
    assert send_key({"_id": log, "round": 3}) == f"{log}:r3"
    assert parse_send_key(send_key({"_id": log, "round": 3})) == (log, 3)


def test_odd_message_ids_never_raise():
    log = "a" * 24
    assert parse_send_key(f"{log}:r2") == (log, 2)
    assert parse_send_key(f"{log}:r²") == (f"{log}:r²", 0)
    assert parse_send_key(f"{log}:r" + "9" * 5000)[1] == 0
    assert parse_send_key("whatever") == ("whatever", 0)
    # $ matched before a final line break: such an id is not one crmd made.
    assert parse_send_key(f"{log}:r2\n") == (f"{log}:r2\n", 0)


def test_a_log_id_names_its_campaign_only_when_it_is_one_crmd_made():
    campaign, suffix = "c" * 24, "0" * 16
    assert campaign_of(f"{campaign}.{suffix}") == campaign
    assert campaign_of(f"{campaign}.{suffix}\n") is None
    assert campaign_of(campaign) is None
