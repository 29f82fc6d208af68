"""Sign-in with Google against a local stand-in: each rejection is 401 and writes nothing."""

from __future__ import annotations

import time
from typing import Any

import jwt
import msgspec
import pytest

from crmd.app import Crmd, open_crmd
from tests.auth.conftest import CLIENT_ID, Google, make_key

LOGIN = "/api/v1/user/oauth"


async def users(system: Crmd) -> int:
    return await system.db.users.count_documents({})


async def test_valid_id_token_signs_in_and_upserts_the_user(
    google_client: Any, google: Google, system: Crmd
):
    response = await google_client.post(LOGIN, json={"credential": google.id_token()})
    assert response.status == 200
    body = await response.json()
    assert body["message"] == "success"
    assert body["user"]["email"] == "ada@example.com"
    assert body["user"]["name"] == "Ada Lovelace"
    assert body["user"]["picture"] == "https://example.com/ada.png"
    me = await google_client.get(
        "/api/v1/user/me", headers={"Authorization": f"Bearer {body['token']}"}
    )
    assert (await me.json())["user"] == body["user"]
    # Signing in again is the same user, with fresh details.
    again = await google_client.post(LOGIN, json={"credential": google.id_token(name="Ada L.")})
    assert (await again.json())["user"]["id"] == body["user"]["id"]
    assert (await again.json())["user"]["name"] == "Ada L."
    assert await users(system) == 1
    assert await system.db.users.find_one({"sub": "1100000000000001"}) is not None


def _none_alg_token(google: Google) -> str:
    return jwt.encode(google.claims(), key=None, algorithm="none")


REJECTIONS = {
    "wrong audience": lambda g: g.id_token(aud="someone-else.apps.googleusercontent.com"),
    "wrong issuer": lambda g: g.id_token(iss="https://evil.example.com"),
    "expired": lambda g: g.id_token(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600),
    "email not verified": lambda g: g.id_token(email_verified=False),
    "bad signature": lambda g: g.id_token(key=make_key()),
    "alg none": _none_alg_token,
    "unknown key id": lambda g: g.id_token(kid="not-a-google-key"),
    "no email": lambda g: g.id_token(email=None),
    "garbage": lambda g: "not.a.jwt",
    "email not email syntax": lambda g: g.id_token(email="a..b@x.co"),
    "email with a hidden character": lambda g: g.id_token(email="ada@example.com\u200b"),
}


@pytest.mark.parametrize("case", sorted(REJECTIONS))
async def test_rejected_id_tokens_are_401_and_write_nothing(
    case: str, google_client: Any, google: Google, system: Crmd
):
    response = await google_client.post(LOGIN, json={"credential": REJECTIONS[case](google)})
    assert response.status == 401, await response.text()
    assert (await response.json())["error"]["code"] == "unauthorized"
    assert await users(system) == 0


async def test_an_id_tokens_address_is_held_to_the_rules_of_every_address(
    google_client: Any, google: Google, system: Crmd
):
    for address, why in [
        (".a@x.co", "a dot may not start or end the part before the @, or follow a dot"),
        ("a@-x.co", "a part of its domain starts or ends with a hyphen"),
        ("a@x.co.", "its domain ends with a dot"),
    ]:
        response = await google_client.post(
            LOGIN, json={"credential": google.id_token(email=address)}
        )
        assert response.status == 401
        assert (await response.json())["error"]["message"] == (
            f"ID token rejected: email is not an email address: {why}"
        )
    assert await users(system) == 0
    kept = await google_client.post(
        LOGIN, json={"credential": google.id_token(email="Zoë@Bücher.Example")}
    )
    assert (await kept.json())["user"]["email"] == "zoë@bücher.example"
    stored = await system.db.users.find_one({"sub": "1100000000000001"})
    assert stored["email"] == "zoë@bücher.example"


async def test_expiry_allows_the_configured_clock_skew(google_client: Any, google: Google):
    just_expired = google.id_token(iat=int(time.time()) - 3630, exp=int(time.time()) - 30)
    response = await google_client.post(LOGIN, json={"credential": just_expired})
    assert response.status == 200  # 30 s late is within the default 60 s skew


async def test_allow_list_refuses_other_accounts_with_403(
    aiohttp_client: Any, system: Crmd, google_config, google: Google
):
    auth = msgspec.structs.replace(
        google_config.auth, allowed_domains=["corp.example"], allowed_emails=["boss@example.com"]
    )
    async with open_crmd(msgspec.structs.replace(google_config, auth=auth)) as crmd:
        client = await aiohttp_client(crmd.app)
        await refuses_others(client, system, google)


async def refuses_others(client: Any, system: Crmd, google: Google) -> None:
    refused = await client.post(LOGIN, json={"credential": google.id_token()})
    assert refused.status == 403
    assert await users(system) == 0
    by_domain = await client.post(LOGIN, json={"credential": google.id_token(hd="corp.example")})
    assert by_domain.status == 200
    by_email = await client.post(
        LOGIN, json={"credential": google.id_token(sub="2", email="boss@example.com")}
    )
    assert by_email.status == 200


async def test_popup_code_is_exchanged_at_the_token_endpoint(
    google_client: Any, google: Google, system: Crmd
):
    google.codes["4/good-code"] = google.id_token()
    response = await google_client.post(LOGIN, json={"code": "4/good-code"})
    assert response.status == 200
    [sent] = google.token_requests
    assert sent["redirect_uri"] == "postmessage" and sent["client_id"] == CLIENT_ID
    # The original frontend sends the code in the query string.
    google.codes["4/second"] = google.id_token()
    query = await google_client.get(LOGIN, params={"code": "4/second"})
    assert query.status == 200
    assert await users(system) == 1


async def test_a_bad_code_is_401_and_writes_nothing(google_client: Any, system: Crmd):
    response = await google_client.post(LOGIN, json={"code": "4/forged"})
    assert response.status == 401
    assert "invalid_grant" in (await response.json())["error"]["message"]
    assert await users(system) == 0


async def test_certificates_are_cached_as_cache_control_allows(google_client: Any, google: Google):
    for n in range(3):
        token = google.id_token(sub=f"user-{n}", email=f"u{n}@example.com")
        assert (await google_client.post(LOGIN, json={"credential": token})).status == 200
    assert google.cert_fetches == 1


async def test_google_down_is_503_not_401(google_client: Any, google: Google, system: Crmd):
    google.certs_status = 500
    response = await google_client.post(LOGIN, json={"credential": google.id_token()})
    assert response.status == 503
    assert await users(system) == 0


@pytest.mark.parametrize(
    ("body", "status"),
    [({}, 400), ({"credential": "a", "code": "b"}, 400), ({"credential": 5}, 422)],
)
async def test_malformed_login_bodies(google_client: Any, body: dict, status: int):
    response = await google_client.post(LOGIN, json=body)
    assert response.status == status


async def test_google_login_off_is_403_saying_so(client: Any, google: Google):
    response = await client.post(LOGIN, json={"credential": google.id_token()})
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "google_login_disabled"
