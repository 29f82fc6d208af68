"""One set of rules for every address crmd reads: ``crmd.emails.normalise_email``.

The rules themselves are tested first, as a pure function; then every place an address
comes in (an import's rows, the suppression list's JSON, CSV, search and removal, a test
send, dev login, the console's forms, ``crmd token``, ``[auth] allowed_emails``) is
shown the same addresses and must keep or refuse each one alike, a refusal naming the
field (Google sign-in, which needs its stand-in, is tested in tests/auth)."""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmd.app import Crmd
from crmd.auth.command import TokenCommandError, token_for_email
from crmd.auth.tokens import verify_token
from crmd.config import Config, ConfigError, load_config
from crmd.console.web import FLASH
from crmd.emails import InvalidEmail, normalise_email, plain_addresses
from tests.conftest import examples
from tests.console.test_security import csrf_of, signed_in
from tests.ingest.conftest import upload, wait_done

NOT_EMAIL_SYNTAX = {
    ".a@x.co": "a dot may not start or end the part before the @, or follow a dot",
    "a..b@x.co": "a dot may not start or end the part before the @, or follow a dot",
    "a@-x.co": "a part of its domain starts or ends with a hyphen",
    "a@x.co.": "its domain ends with a dot",
}
CONTROL = {
    "a@x.co\n": "contains a line break (U+000A)",
    "a@x.co\r": "contains a line break (U+000D)",
    "\ta@x.co": "contains a control character (U+0009)",
}
"""Not trimmed as spaces are: ``str.strip()`` once made ``a@x.co\\n`` sign in as ``a@x.co``."""
REFUSED = {**NOT_EMAIL_SYNTAX, **CONTROL}
KEPT = {
    "o'brien@x.co": "o'brien@x.co",
    "A.B+tag@Sub.Example.com": "a.b+tag@sub.example.com",
    " Zoë@Bücher.Example ": "zoë@bücher.example",
    "用户@例子.广告": "用户@例子.广告",
}


@pytest.mark.parametrize(("address", "why"), NOT_EMAIL_SYNTAX.items())
def test_an_address_that_is_not_email_syntax_is_refused_saying_why(address: str, why: str):
    with pytest.raises(InvalidEmail) as refused:
        normalise_email(address)
    assert str(refused.value) == f"is not an email address: {why}"


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("a.@x.co", "a dot may not start or end the part before the @"),
        ("a@x..co", "its domain starts with a dot or has two in a row"),
        ("a@.x.co", "its domain starts with a dot or has two in a row"),
        ("a@x-.co", "a part of its domain starts or ends with a hyphen"),
        ("a@x_y.co", "its domain may hold only letters, digits, hyphens and dots"),
        ("a@x+y.co", "its domain may hold only letters, digits, hyphens and dots"),
        ("a@localhost", "its domain has no dot"),
        ("a@b@x.co", "is not an email address"),
        ("@x.co", "is not an email address"),
        ("a@", "is not an email address"),
        ("a@" + "b" * 64 + ".co", f"longer than {63} characters"),
        ("x" * 65 + "@x.co", "has more than 64 bytes before the @"),
        ("é" * 33 + "@x.co", "has more than 64 bytes before the @"),  # 33 characters, 66 bytes
        ("a@" + ".".join(["b" * 63] * 4), "is longer than 254 bytes"),
    ],
)
def test_each_rule_of_the_shape_is_held_and_named(address: str, why: str):
    with pytest.raises(InvalidEmail) as refused:
        normalise_email(address)
    assert why in str(refused.value)


@pytest.mark.parametrize(("address", "why"), CONTROL.items())
def test_a_line_break_or_a_tab_is_refused_even_at_either_end(address: str, why: str):
    with pytest.raises(InvalidEmail) as refused:
        normalise_email(address)
    assert str(refused.value) == why


@pytest.mark.parametrize(("address", "spelling"), KEPT.items())
def test_addresses_people_have_keep_their_one_spelling(address: str, spelling: str):
    assert normalise_email(address) == spelling


def test_the_lengths_allowed_are_rfc_5321s():
    longest_local = "x" * 64 + "@x.co"
    assert normalise_email(longest_local) == longest_local
    longest = "a@" + ".".join(["b" * 63] * 3) + "." + "c" * 60
    assert len(longest) == 254 and normalise_email(longest) == longest
    with pytest.raises(InvalidEmail):
        normalise_email(longest + "c")


@settings(max_examples=examples(2000), deadline=None)
@given(st.text(alphabet="ab1.-_+@'é", min_size=1, max_size=12))
def test_the_import_lanes_check_is_the_same_rules(text: str):
    """What the fast lane vouches for is what normalise_email keeps as it is."""
    try:
        kept = normalise_email(text) == text
    except InvalidEmail:
        kept = False
    assert plain_addresses([text]) == (kept and text.isascii())


# The entry points: each is shown every address and says what became of each: the
# spelling it kept (None when its answer does not show it), or Refused.


@dataclass(frozen=True)
class Refused:
    code: str | None
    """The API's error code (None on a console page, which shows a sentence)."""
    field: str


Outcome = str | None | Refused


@dataclass
class Door:
    client: Any
    auth: dict[str, str]
    system: Crmd
    config: Config
    made: str = ""

    async def campaign(self) -> str:
        """A draft campaign to test-send (the same one each time)."""
        if not self.made:
            answer = await self.client.post(
                "/api/v1/campaigns",
                headers=self.auth,
                json={
                    "name": "t",
                    "message": "Hi {name|there}",
                    "rule": "spend > 1",
                    "draft": True,
                },
            )
            assert answer.status == 201, await answer.text()
            self.made = (await answer.json())["id"]
        return self.made


async def refused_by_api(answer: Any) -> Refused:
    assert answer.status == 422, await answer.text()
    error = (await answer.json())["error"]
    return Refused(error["code"], error["details"]["field"])


async def imported(door: Door, kind: str, column: str, addresses: list[str]) -> list[Outcome]:
    """One file of one row per address (its reference P0, P1...); each row's address as
    stored, or its row error."""
    rows = "".join(
        f'P{i},"{a.replace(chr(34), chr(34) * 2)}",1,2024-01-01\n' for i, a in enumerate(addresses)
    )
    reference = "name" if kind == "customers" else "order_external_id"
    text = f"{reference},{column},amount,orderDate\n{rows}"
    answer = await (await upload(door.client, door.auth, kind, text)).json()
    job = await wait_done(door.client, door.auth, answer["uploadId"])
    # In file order, as the rows (an address with a line break spans two lines).
    errors = iter(Refused(e["code"], e["column"]) for e in job["errors"])
    kept = {d[reference]: d[column] async for d in door.system.db[kind].find()}
    outcomes = [kept.get(f"P{i}") or next(errors) for i in range(len(addresses))]
    assert next(errors, None) is None
    return outcomes


async def customer_rows(door: Door, addresses: list[str]) -> list[Outcome]:
    return await imported(door, "customers", "email", addresses)


async def order_rows(door: Door, addresses: list[str]) -> list[Outcome]:
    return await imported(door, "orders", "customerEmail", addresses)


async def suppression_json(door: Door, address: str) -> Outcome:
    answer = await door.client.post(
        "/api/v1/suppressions", headers=door.auth, json={"email": address}
    )
    if answer.status in (200, 201):
        email: str = (await answer.json())["email"]
        return email
    return await refused_by_api(answer)


async def suppression_csv(door: Door, address: str) -> Outcome:
    body = ('email\n"' + address.replace('"', '""') + '"\n').encode()
    headers = {**door.auth, "Content-Type": "text/csv"}
    answer = await door.client.post("/api/v1/suppressions", headers=headers, data=body)
    report = await answer.json()
    if report["rejected"]:
        [error] = report["errors"]
        return Refused(error["code"], error["column"])
    listed = await door.client.get("/api/v1/suppressions?limit=1", headers=door.auth)
    email: str = (await listed.json())["items"][0]["email"]
    return email


async def suppression_search(door: Door, address: str) -> Outcome:
    answer = await door.client.get(
        "/api/v1/suppressions", headers=door.auth, params={"email": address}
    )
    return None if answer.status == 200 else await refused_by_api(answer)


async def suppression_removal(door: Door, address: str) -> Outcome:
    answer = await door.client.delete(
        f"/api/v1/suppressions/{quote(address, safe='')}", headers=door.auth
    )
    if answer.status == 404:  # understood, and not on the list
        found = re.fullmatch(
            r"(.*) is not on the suppression list", (await answer.json())["error"]["message"]
        )
        assert found
        return found[1]
    return await refused_by_api(answer)


async def campaign_test_send(door: Door, address: str) -> Outcome:
    campaign = await door.campaign()
    answer = await door.client.post(
        f"/api/v1/campaigns/{campaign}/test", headers=door.auth, json={"email": address}
    )
    return None if answer.status == 200 else await refused_by_api(answer)


async def dev_login(door: Door, address: str) -> Outcome:
    answer = await door.client.post("/api/v1/user/dev-login", json={"email": address})
    if answer.status == 200:
        email: str = (await answer.json())["user"]["email"]
        return email
    return await refused_by_api(answer)


async def console_sign_in(door: Door, address: str) -> Outcome:
    door.client.session.cookie_jar.clear()
    token = csrf_of(await (await door.client.get("/sign-in")).text())
    answer = await door.client.post(
        "/sign-in", data={"csrf": token, "email": address, "next": "/"}, allow_redirects=False
    )
    if answer.status == 303:
        user = await door.system.db.users.find_one(sort=[("lastLoginAt", -1)])
        email: str = user["email"]
        return email
    assert answer.status == 422 and "Email " in await answer.text()
    return Refused(None, "email")


async def said(answer: Any) -> tuple[bool, str]:
    """The console's line after a form: (whether it is a problem, the line)."""
    assert answer.status == 303
    line = unquote(answer.cookies[FLASH].value)
    return line.startswith("!"), line[1:]


async def console_suppression(door: Door, address: str) -> Outcome:
    csrf = await signed_in(door.client)
    answer = await door.client.post(
        "/suppressions", data={"csrf": csrf, "email": address}, allow_redirects=False
    )
    problem, line = await said(answer)
    if problem:
        assert line == "Give an email address to suppress."
        return Refused(None, "email")
    return line.removesuffix(" is suppressed.").removesuffix(" was already.")


async def console_test_send(door: Door, address: str) -> Outcome:
    campaign = await door.campaign()
    csrf = await signed_in(door.client)
    answer = await door.client.post(
        f"/campaigns/{campaign}/test", data={"csrf": csrf, "email": address}, allow_redirects=False
    )
    problem, line = await said(answer)
    if problem:
        assert line == "Give an email address to send the test to."
        return Refused(None, "email")
    found = re.match(r"Test sent to (.*) through ", line)
    assert found, line
    return found[1]


async def token_command(door: Door, address: str) -> Outcome:
    try:
        token = await token_for_email(door.config, address)
    except TokenCommandError:
        return Refused(None, "--email")
    return verify_token(token, door.system.jwt_secret).email


async def allowed_emails(door: Door, address: str) -> Outcome:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "crmd.toml"
        # A TOML basic string reads JSON's escapes: the address arrives as it is.
        path.write_text(f"[auth]\ngoogle_login = false\nallowed_emails = [{json.dumps(address)}]\n")
        try:
            config = load_config(path, {}).config
        except ConfigError as exc:
            assert "auth.allowed_emails" in str(exc), exc
            return Refused(None, "auth.allowed_emails")
    [email] = config.auth.allowed_emails
    return email


Each = Callable[[Door, str], Awaitable[Outcome]]
ONE_BY_ONE: dict[str, tuple[Each, Refused]] = {
    "suppressions JSON": (suppression_json, Refused("invalid_email", "$.email")),
    "suppressions CSV": (suppression_csv, Refused("invalid_email", "email")),
    "suppression search": (suppression_search, Refused("invalid_email", "email")),
    "suppression removal": (suppression_removal, Refused("invalid_email", "email")),
    "test send": (campaign_test_send, Refused("invalid_email", "$.email")),
    "dev login": (dev_login, Refused("invalid_email", "$.email")),
    "console sign-in": (console_sign_in, Refused(None, "email")),
    "console suppression": (console_suppression, Refused(None, "email")),
    "console test send": (console_test_send, Refused(None, "email")),
    "crmd token": (token_command, Refused(None, "--email")),
    "[auth] allowed_emails": (allowed_emails, Refused(None, "auth.allowed_emails")),
}
All = Callable[[Door, list[str]], Awaitable[list[Outcome]]]
ALL_AT_ONCE: dict[str, tuple[All, Refused]] = {
    "customer rows": (customer_rows, Refused("invalid_email", "email")),
    "order rows": (order_rows, Refused("invalid_email", "customerEmail")),
}
SHOWS_NO_SPELLING = ("suppression search", "test send")
"""Their answers do not say how they spelt an address they took."""


@pytest.mark.usefixtures("ingesting")
@pytest.mark.parametrize("entry", [*ONE_BY_ONE, *ALL_AT_ONCE])
async def test_every_entry_point_holds_an_address_to_the_same_rules(
    client: Any, auth: dict[str, str], system: Crmd, config: Config, entry: str
):
    door = Door(client, auth, system, config)
    addresses = [*REFUSED, *KEPT]
    if entry in ALL_AT_ONCE:
        read_all, refusal = ALL_AT_ONCE[entry]
        outcomes = await read_all(door, addresses)
    else:
        read_one, refusal = ONE_BY_ONE[entry]
        outcomes = [await read_one(door, address) for address in addresses]
    for address, outcome in zip(addresses, outcomes, strict=True):
        if address in REFUSED:
            assert outcome == refusal, (entry, address)
        elif entry in SHOWS_NO_SPELLING:
            assert outcome is None, (entry, address)
        else:
            assert outcome == KEPT[address], (entry, address)
