"""What erasure looks for and replaces in documents it does not own (``Traces``): the
customer's address, crmd id, external id and name, whole, at any depth, and nobody
else's."""

from __future__ import annotations

from crmd.customers.traces import ERASED, Traces

ADA = Traces("ada@example.com", "Ada Lovelace", "C1", "a" * 24, "erased-0123")


def test_the_address_is_found_in_any_case_at_any_depth_and_replaced():
    doc = {"payload": '{"data": {"email": "ADA@example.com"}}', "rows": [["x", "ada@example.com"]]}
    assert ADA.found_in(doc)
    assert ADA.scrubbed(doc) == {
        "payload": f'{{"data": {{"email": "{ERASED}"}}}}',
        "rows": [["x", ERASED]],
    }


def test_a_longer_address_or_id_that_contains_the_trace_is_someone_else():
    for other in ("pada@example.com", "ada@example.com.au", "x.ada@example.com", "C10", "AC1"):
        assert not ADA.found_in(other), other
        assert ADA.scrubbed(f"to {other} today") == f"to {other} today", other


def test_a_full_stop_ending_a_sentence_does_not_hide_the_address():
    assert ADA.scrubbed("Bounce for ada@example.com.") == f"Bounce for {ERASED}."


def test_the_crmd_id_becomes_the_pseudonym_everywhere():
    state = f"flow1:{'a' * 24}:0"
    assert ADA.scrubbed(state) == "flow1:erased-0123:0"
    assert ADA.changes({"_id": state, "customerId": "a" * 24, "n": 3}) == {
        "customerId": "erased-0123"
    }


def test_a_short_external_id_counts_only_as_a_whole_value_or_quoted():
    assert ADA.found_in("C1") and ADA.found_in('{"id": "C1"}')
    assert not ADA.found_in("line C1 of the file")  # 2 characters: not looked for inside
    assert ADA.scrubbed('{"id": "C1"}') == f'{{"id": "{ERASED}"}}'
    numbers = Traces("n@example.com", "N", "1001", "b" * 24, "erased-x")
    assert not numbers.found_in("amount 1001") and numbers.found_in("1001")
    long = Traces("n@example.com", "N", "CUST-7781", "b" * 24, "erased-x")
    assert long.found_in("duplicate CUST-7781 on line 3")


def test_a_name_alone_in_a_text_is_not_theirs_but_is_scrubbed_from_what_is():
    assert not ADA.found_in("Dear Ada Lovelace, welcome")  # another Ada Lovelace's
    assert ADA.found_in("Ada Lovelace")  # the whole value
    doc = {"to": "ada@example.com", "text": "Dear Ada Lovelace, welcome"}
    assert ADA.changes(doc) == {"to": ERASED, "text": f"Dear {ERASED}, welcome"}


def test_numbers_dates_and_crmds_own_keys_are_left_alone():
    doc = {"_id": "ada@example.com", "userId": "u", "amount": 40, "ok": True, "at": None}
    assert ADA.changes(doc) == {}
    assert (
        ADA.changes({"customerEmail": "ada@example.com"}, keep=frozenset({"customerEmail"})) == {}
    )


def test_a_customer_with_nothing_but_an_id_finds_only_the_id():
    bare = Traces("", "", "", "c" * 24, "erased-y")
    assert not bare.found_in("anything at all") and bare.found_in("c" * 24)
