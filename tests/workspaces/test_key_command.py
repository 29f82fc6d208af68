"""``crmd keys create|list|revoke`` as an operator runs it, in a process of its own,
against the test's database, with a REST client using what it made."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crmd.app import Crmd
from crmd.config import Config
from tests.workspaces.key_kit import bearer, make_key, sign_in

pytestmark = pytest.mark.slow  # runs crmd as a process


def config_file(tmp_path: Path, config: Config) -> str:
    path = tmp_path / "crmd.toml"
    path.write_text(
        f'[mongodb]\nurl = "{config.mongodb.url}"\ndatabase = "{config.mongodb.database}"\n'
        f'[redis]\nurl = "{config.redis.url}"\n'
        f'[embedded]\ndata_dir = "{tmp_path / "data"}"\n'
        "[auth]\ngoogle_login = false\n"
        "[keys]\nmax_per_workspace = 2\n"
    )
    return str(path)


async def crmd_keys(tmp_path: Path, config: Config, *args: str) -> tuple[int, str, str]:
    """``crmd --config ... keys ARGS``: exit code, stdout, stderr."""
    argv = ["-m", "crmd", "--config", config_file(tmp_path, config), "keys", *args]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if not k.startswith("CRMD_")},
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_made_listed_and_revoked_from_the_command_line(
    client: Any, system: Crmd, config: Config, tmp_path: Path
):
    owner, workspace = await sign_in(client, "owner@example.com")
    code, out, err = await crmd_keys(
        tmp_path,
        config,
        "create",
        "--workspace",
        "Owner@Example.com",
        "--name",
        "nightly export",
        "--scope",
        "read",
        "--scope",
        "import",
        "--expires",
        "30d",
    )
    assert code == 0, err
    key = out.strip()
    assert key.startswith("crmd_") and out.count("\n") == 1  # the key alone on stdout
    assert "shown this once" in err and key not in err
    assert (await client.get("/api/v1/customers", headers=bearer(key))).status == 200
    [listed] = (await (await client.get("/api/v1/keys", headers=owner)).json())["items"]
    assert (listed["name"], listed["scopes"]) == ("nightly export", ["read", "import"])
    assert listed["createdBy"] == {"via": "command", "userId": "", "email": ""}
    expires = datetime.fromisoformat(listed["expiresAt"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=2)

    code, out, _ = await crmd_keys(tmp_path, config, "list", "--workspace", workspace)
    header, line = out.splitlines()
    assert header.split()[:4] == ["ID", "PREFIX", "STATE", "SCOPES"]
    assert line.split()[:4] == [listed["id"], key[:12] + "…", "live", "read,import"]
    assert line.endswith("127.0.0.1  nightly export") and key[12:] not in out

    code, out, _ = await crmd_keys(
        tmp_path, config, "revoke", "--workspace", workspace, listed["id"]
    )
    assert code == 0 and out.strip() == f"revoked API key {listed['id']} (nightly export)"
    assert (await client.get("/api/v1/customers", headers=bearer(key))).status == 401
    code, _, err = await crmd_keys(
        tmp_path, config, "revoke", "--workspace", workspace, listed["id"]
    )
    assert code == 1 and "revoked already" in err
    actions = [
        (e["action"], e["objectId"], e["from"], e["details"])
        async for e in system.db.audit.find({"userId": workspace}, sort=[("at", 1)])
    ]
    assert actions == [
        (action, listed["id"], "command line", {"via": "crmd keys"})
        for action in ("key.created", "key.revoked")
    ]


async def test_the_command_refuses_what_it_cannot_do(
    client: Any, system: Crmd, config: Config, tmp_path: Path
):
    owner, workspace = await sign_in(client, "owner@example.com")
    for _ in range(2):
        await make_key(client, owner, "read")
    base = ("--name", "n", "--scope", "read")
    for args, said in (
        (("--workspace", "nobody@example.com", *base), "no one with the e-mail address"),
        (("--workspace", "0123456789abcdef01234567", *base), "no workspace"),
        (("--workspace", "not-an-id", *base), "no workspace 'not-an-id'"),
        (("--workspace", workspace, "--name", "x" * 81, "--scope", "read"), "--name:"),
        (("--workspace", workspace, *base, "--expires", "2020-01-01"), "in the future"),
        (("--workspace", workspace, *base, "--expires", "soon"), "'soon' is neither a duration"),
        (("--workspace", workspace, *base), "at most 2 live API keys"),
    ):
        code, out, err = await crmd_keys(tmp_path, config, "create", *args)
        assert code == 1 and out == "", (args, err)
        assert said in err.splitlines()[-1], (args, err)
    code, _, err = await crmd_keys(
        tmp_path, config, "create", "--workspace", workspace, "--name", "n", "--scope", "manage"
    )
    assert code == 2 and "invalid choice: 'manage'" in err
    assert await system.db.api_keys.count_documents({}) == 2
