"""The token secret's rules, and `crmd token` without a running daemon."""

from __future__ import annotations

import stat
from pathlib import Path

import msgspec
import pytest

from crmd.auth.secret import SecretError, resolve_jwt_secret
from crmd.auth.tokens import verify_token
from crmd.config import Config
from tests.commands import crmd_token

pytestmark = pytest.mark.slow  # runs crmd as a process


def with_auth(config: Config, data_dir: Path, **mongo: str) -> Config:
    auth = msgspec.structs.replace(config.auth, jwt_secret="")
    embedded = msgspec.structs.replace(config.embedded, data_dir=str(data_dir))
    return msgspec.structs.replace(
        config,
        auth=auth,
        embedded=embedded,
        mongodb=msgspec.structs.replace(config.mongodb, **mongo),
    )


def test_embedded_default_generates_a_private_secret_once(config: Config, tmp_path: Path):
    embedded = with_auth(config, tmp_path, url="embedded")
    first = resolve_jwt_secret(embedded)
    assert len(first.encode()) >= 32
    assert resolve_jwt_secret(embedded) == first
    mode = stat.S_IMODE((tmp_path / "jwt_secret").stat().st_mode)
    assert mode == 0o600


def test_real_servers_without_a_secret_refuse_to_start(config: Config, tmp_path: Path):
    with pytest.raises(SecretError, match="jwt_secret is not set"):
        resolve_jwt_secret(with_auth(config, tmp_path))


def test_token_command_starts_what_it_needs_and_signs_with_the_data_dirs_secret(
    tmp_path: Path,
):
    result = crmd_token(tmp_path, "Script@Example.com")
    assert result.returncode == 0, result.stderr
    claims = verify_token(result.stdout.strip(), (tmp_path / "jwt_secret").read_text())
    assert claims.email == "script@example.com"
    assert not (tmp_path / "urls.json").exists()  # the servers it started are gone
    # A data dir with no secret yet gets one, and the command says so: a crmd serving
    # from elsewhere would refuse the token. Once there, nothing is said.
    assert f"crmd: note: {tmp_path.resolve()} held no token secret" in result.stderr
    again = crmd_token(tmp_path, "script@example.com")
    assert again.returncode == 0 and "crmd: note:" not in again.stderr


def test_token_command_refuses_a_bad_email(tmp_path: Path):
    result = crmd_token(tmp_path, "nobody")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "crmd: cannot make a token: 'nobody' is not an email address"
    )
