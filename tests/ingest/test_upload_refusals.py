"""Every bad upload gets its exact status and error, and queues nothing."""

from __future__ import annotations

from typing import Any

import aiohttp
import msgspec
import pytest

from crmd.app import Crmd, open_crmd
from tests.ingest.conftest import upload


async def nothing_queued(system: Crmd) -> bool:
    streams = await system.redis.xlen(system.streams.ingest)
    return streams == 0 and await system.db.uploads.count_documents({}) == 0


@pytest.mark.parametrize(
    ("text", "status", "code", "details"),
    [
        ("name,email,NAME\nA,a@x.io,A\n", 422, "duplicate_header", {"column": 3}),
        ("name,phone\nA,1\n", 422, "missing_column", None),
        ("", 422, "empty_file", None),
        (b"name,email\nA,a@x.io\nB,\xff@x.io\n", 422, "invalid_utf8", {"line": 3}),
        ('name,email\n"open,a@x.io\n', 422, "bad_csv", {"line": 2}),
    ],
)
async def test_whole_file_refusals(
    client: Any, auth: Any, system: Crmd, text: Any, status: int, code: str, details: Any
):
    response = await upload(client, auth, "customers", text)
    assert response.status == status
    error = (await response.json())["error"]
    assert error["code"] == code
    assert error.get("details") == details
    assert await nothing_queued(system)


async def test_wrong_content_type_is_415(client: Any, auth: Any, system: Crmd):
    response = await client.post("/api/v1/upload/customers", json={"rows": []}, headers=auth)
    assert response.status == 415
    assert await nothing_queued(system)


async def test_form_without_a_file_is_400(client: Any, auth: Any, system: Crmd):
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("note", "hello")
    response = await client.post("/api/v1/upload/customers", data=form, headers=auth)
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "unexpected_part"


async def test_a_second_file_is_400_and_queues_nothing(client: Any, auth: Any, system: Crmd):
    form = aiohttp.FormData()
    form.add_field("file", b"name,email\nA,a@x.io\n", filename="a.csv")
    form.add_field("file", b"name,email\nB,b@x.io\n", filename="b.csv")
    response = await client.post("/api/v1/upload/customers", data=form, headers=auth)
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "unexpected_part"
    assert await nothing_queued(system)


async def test_bad_mapping_is_refused(client: Any, auth: Any, system: Crmd):
    response = await upload(client, auth, "customers", "a,b\n1,2\n", mapping="{not json")
    assert response.status == 400
    response = await upload(
        client, auth, "customers", "a,b\n1,2\n", mapping='{"name": "a", "email": "zzz"}'
    )
    assert response.status == 422
    assert (await response.json())["error"]["code"] == "bad_mapping"
    assert await nothing_queued(system)


async def test_limits_are_configurable_and_enforced(aiohttp_client: Any, system: Crmd, auth: Any):
    ingest = msgspec.structs.replace(system.config.ingest, max_file_bytes=2048, max_rows=3)
    async with open_crmd(msgspec.structs.replace(system.config, ingest=ingest)) as crmd:
        await limits_hold(await aiohttp_client(crmd.app), auth, system)


async def limits_hold(client: Any, auth: Any, system: Crmd) -> None:
    big = "name,email\n" + "".join(f"Person {i},p{i}@example.com\n" for i in range(200))
    response = await upload(client, auth, "customers", big)
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "file_too_large"
    rows = "name,email\n" + "".join(f"N{i},n{i}@x.io\n" for i in range(4))
    response = await upload(client, auth, "customers", rows)
    assert response.status == 413
    assert (await response.json())["error"] == {
        "code": "too_many_rows",
        "message": "more than 3 rows",
        "details": {"line": 5},
    }
    assert await nothing_queued(system)


async def test_upload_needs_a_token(client: Any, system: Crmd):
    response = await upload(client, {}, "customers", "name,email\nA,a@x.io\n")
    assert response.status == 401
    assert await nothing_queued(system)


async def test_unknown_upload_is_404(client: Any, auth: Any):
    assert (await client.get("/api/v1/uploads/nonsense", headers=auth)).status == 404
    missing = "/api/v1/uploads/0123456789abcdef01234567"
    assert (await client.get(missing, headers=auth)).status == 404
    assert (await client.get(missing + "/errors.csv", headers=auth)).status == 404


async def test_a_row_of_millions_of_fields_is_refused_stores_nothing_and_logs_no_row(
    client: Any, auth: Any, system: Crmd, capsys: pytest.CaptureFixture[str]
):
    secret = "Jane Secretrow,jane@secret.example"
    text = f"name,email\n{secret}\n{secret}" + "," * 3_000_000 + "\n"
    response = await upload(client, auth, "customers", text)
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["code"] == "too_many_fields" and error["details"] == {"line": 3}
    assert await nothing_queued(system)
    assert await system.db.upload_errors.count_documents({}) == 0
    logged = capsys.readouterr()
    assert "secret.example" not in logged.out + logged.err
    assert max((len(line) for line in (logged.out + logged.err).splitlines()), default=0) < 10_000


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": "x", "ignored": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
        b'{"name": "x", "ignored": ' + b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"}",
    ],
)
async def test_deeply_nested_json_in_an_ignored_field_is_400(client: Any, auth: Any, body: bytes):
    response = await client.post(
        "/api/v1/segment/preview", data=body, headers={**auth, "Content-Type": "application/json"}
    )
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "bad_json"


async def test_multipart_without_its_closing_boundary_is_400_and_queues_nothing(
    client: Any, auth: Any, system: Crmd
):
    body = (
        b"--XYZ\r\n"
        b'Content-Disposition: form-data; name="file"; filename="a.csv"\r\n'
        b"Content-Type: text/csv\r\n\r\n"
        b"name,email\r\nA,a@x.io\r\n"
    )
    response = await client.post(
        "/api/v1/upload/customers",
        data=body,
        headers={**auth, "Content-Type": "multipart/form-data; boundary=XYZ"},
    )
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "bad_multipart"
    assert await nothing_queued(system)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data", b"--XX\r\n\r\nname,email\r\n--XX--\r\n"),
        ("multipart/form-data; boundary=" + "B" * 80, b"--" + b"B" * 80 + b"\r\n"),
        ("multipart/form-data; boundary=XX", b"--XX\r\nContent-Disposition\r\n\r\nA\r\n--XX--\r\n"),
    ],
)
async def test_forms_that_are_not_well_formed_are_400(
    client: Any, auth: Any, system: Crmd, content_type: str, body: bytes
):
    response = await client.post(
        "/api/v1/upload/customers", data=body, headers={**auth, "Content-Type": content_type}
    )
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "bad_multipart"
    assert await nothing_queued(system)


FILE_PART = (
    b"--XX\r\n"
    b'Content-Disposition: form-data; name="file"; filename="a.csv"\r\n'
    b"Content-Type: text/csv\r\n"
    b"\r\n"
    b"name,email\r\nA,a@x.io\r\n"
)
MAPPING_PART = b'--XX\r\nContent-Disposition: form-data; name="mapping"\r\n\r\n{}\r\n'
WHOLE_FORM = MAPPING_PART + FILE_PART + b"--XX--\r\n"


def cut_before(form: bytes, marker: bytes, *, keep: int = 0) -> bytes:
    """``form`` cut just before the last ``marker``, keeping ``keep`` of its bytes."""
    return form[: form.rindex(marker) + keep]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"--XX", id="in the first boundary line"),
        pytest.param(b"--XX\r\n", id="right after the first boundary line"),
        pytest.param(b"--XX\r\nContent-Disp", id="in the first header's name"),
        pytest.param(b"--XX\r\nContent-Disposition: form-da", id="in the first header's value"),
        pytest.param(cut_before(FILE_PART, b"\r\nContent-Type"), id="at the end of a header"),
        pytest.param(cut_before(FILE_PART, b"Content-Type"), id="after a header's line"),
        pytest.param(cut_before(FILE_PART, b"\r\n\r\n", keep=3), id="in the blank line"),
        pytest.param(cut_before(FILE_PART, b"\r\n\r\n", keep=4), id="after the blank line"),
        pytest.param(
            cut_before(WHOLE_FORM, b"--XX\r\nContent-Disposition", keep=6),
            id="right after a later part's boundary line",
        ),
        pytest.param(cut_before(WHOLE_FORM, b'; filename="a.csv"'), id="in a later part's header"),
        pytest.param(
            cut_before(WHOLE_FORM, b"\r\n\r\nname,email", keep=3),
            id="in a later part's blank line",
        ),
        pytest.param(
            cut_before(WHOLE_FORM, b"name,email", keep=4), id="in the file after a mapping"
        ),
        pytest.param(cut_before(MAPPING_PART, b"}"), id="in the mapping's value"),
    ],
)
async def test_a_form_cut_short_anywhere_is_400_bad_multipart_and_leaves_nothing(
    client: Any, auth: Any, system: Crmd, body: bytes
):
    response = await client.post(
        "/api/v1/upload/customers",
        data=body,
        headers={
            **auth,
            "Content-Type": "multipart/form-data; boundary=XX",
            "Idempotency-Key": "cut-short",
        },
    )
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "bad_multipart"
    assert await nothing_queued(system)
    # The key is not taken: the whole form sent again with it is imported.
    response = await client.post(
        "/api/v1/upload/customers",
        data=WHOLE_FORM,
        headers={
            **auth,
            "Content-Type": "multipart/form-data; boundary=XX",
            "Idempotency-Key": "cut-short",
        },
    )
    assert response.status == 202
    assert (await response.json())["rows"] == {"received": 1, "valid": 1, "rejected": 0}


async def test_a_record_spread_over_many_lines_is_bounded_too(client: Any, auth: Any, system: Crmd):
    # Quoted fields may hold newlines, which the line bound alone does not see.
    hostile = "name,email\n" + '"\nxy",' * 2_000_000 + "\n"
    response = await upload(client, auth, "customers", hostile)
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["code"] == "record_too_long" and error["details"] == {"line": 2}
    assert await nothing_queued(system)
