"""Configuration: TOML, environment, the original project's variables, and errors."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from crmd.auth.tokens import verify_token
from crmd.cli import main
from crmd.config import ConfigError, load_config, redact_url
from crmd.services.embedded import Urls

REPO = Path(__file__).resolve().parent.parent


LOCAL = "[auth]\ngoogle_login = false\n"


def write(tmp_path: Path, text: str) -> Path:
    """A config file; without an [auth] table of its own, Google login is off."""
    path = tmp_path / "crmd.toml"
    path.write_text(text if "[auth]" in text else text + "\n" + LOCAL)
    return path


def test_shipped_config_is_valid_and_embedded():
    loaded = load_config(REPO / "crmd.toml", environ={})
    config = loaded.config
    assert config.mongodb.url == "embedded" and config.redis.url == "embedded"
    assert config.auth.dev_login is True
    assert Path(config.embedded.data_dir) == REPO / ".crmd"


def test_environment_overrides_the_file(tmp_path: Path):
    path = write(tmp_path, "[server]\nport = 8000\n")
    env = {
        "CRMD_SERVER__PORT": "9000",
        "CRMD_AUTH__GOOGLE_CLIENT_IDS": "a.apps, b.apps",
        "CRMD_AUTH__DEV_LOGIN": "false",
        "CRMD_PLUGINS__DUMMY_VENDOR__SEED": "7",
        "CRMD_SERVER__CORS_ORIGINS": "http://localhost:5173, https://crm.example.com",
    }
    config = load_config(path, env).config
    assert config.server.port == 9000
    assert config.auth.google_client_ids == ["a.apps", "b.apps"]
    assert config.auth.dev_login is False
    assert config.plugins == {"dummy_vendor": {"seed": "7"}}
    assert config.server.cors_origins == ["http://localhost:5173", "https://crm.example.com"]


def test_original_projects_variables_are_honoured(tmp_path: Path):
    env = {
        "CLIENT_ID": "x.apps.googleusercontent.com",
        "CLIENT_SECRET": "s3cret",
        "DB_URL": "mongodb://db.example:27017",
        "JWT_SECRET": "k" * 40,
        "JWT_TIMEOUT": "2h",
        "GEMINI_API_KEY": "g-key",
    }
    config = load_config(None, env, search=False).config
    assert config.auth.google_login is True
    assert config.auth.google_client_ids == ["x.apps.googleusercontent.com"]
    assert config.auth.google_client_secret == "s3cret"
    assert config.mongodb.url == "mongodb://db.example:27017"
    assert config.auth.jwt_secret == "k" * 40
    assert config.auth.jwt_ttl_seconds == 7200
    assert config.plugins["gemini"]["api_key"] == "g-key"


def test_crmd_variables_win_over_the_original_ones():
    env = {
        "DB_URL": "mongodb://old",
        "CRMD_MONGODB__URL": "mongodb://new",
        "CRMD_AUTH__GOOGLE_LOGIN": "false",
    }
    assert load_config(None, env, search=False).config.mongodb.url == "mongodb://new"


@pytest.mark.parametrize(
    ("toml", "env", "expected"),
    [
        ("[server]\nport = 'eighty'\n", {}, "crmd.toml: server.port = 'eighty': Expected `int`"),
        ("[server]\nport = 70000\n", {}, "server.port = 70000: Expected `int` <= 65535"),
        ("[server]\nprot = 1\n", {}, "crmd.toml: server.prot: unknown setting"),
        ("[logging]\nlevel = 'loud'\n", {}, "logging.level = 'loud': must be one of"),
        (
            "",
            {"CRMD_SERVER__PORT": "x"},
            "environment variable CRMD_SERVER__PORT: server.port = 'x': Expected `int`",
        ),
        (
            "",
            {"JWT_TIMEOUT": "forever"},
            "environment variable JWT_TIMEOUT: auth.jwt_ttl_seconds = 'forever'",
        ),
        ("[redis]\nsocket_timeout = 1\n", {}, "redis.socket_timeout = 1: must exceed"),
        (
            "",
            {"CRMD_SERVER__CORS_ORIGINS": "*"},
            "CRMD_SERVER__CORS_ORIGINS: server.cors_origins = ['*']: '*' is not an origin",
        ),
        (
            "",
            {"CRMD_SERVER__CORS_ORIGINS": "http://a.example:99999"},
            "'http://a.example:99999' is not an origin",
        ),
        (
            "[server]\ncors_origins = ['http://a.example/app']\n",
            {},
            "crmd.toml: server.cors_origins = ['http://a.example/app']: "
            "'http://a.example/app' is not an origin: write scheme://host[:port]",
        ),
        ("[server\n", {}, "crmd.toml: not valid TOML"),
        (
            '[bounces]\nhost = "0.0.0.0"\n',
            {},
            "crmd.toml: bounces.host = '0.0.0.0': the bounces listener is for mail the smtp "
            "vendor sends: set [plugins.smtp] from",
        ),
        (
            '[bounces]\nhost = "0.0.0.0"\n'
            '[plugins.smtp]\nfrom = "a-very-long-local-part-here@s.io"\n',
            {},
            "crmd.toml: plugins.smtp.from = 'a-very-long-local-part-here@s.io': with bounces on, "
            "its local part ('a-very-long-local-part-here') is the start of every envelope sender",
        ),
        (
            '[bounces]\nhost = "0.0.0.0"\n[plugins.smtp]\nfrom = "news@localhost"\n',
            {},
            "crmd.toml: bounces.domain: the domain of [plugins.smtp] from, 'localhost', is not one",
        ),
        (
            '[bounces]\ndomain = "bad_name"\n',
            {},
            "bounces.domain = 'bad_name': must be a domain name",
        ),
        ("[bounces]\nmax_bytes = 100\n", {}, "bounces.max_bytes = 100: Expected `int` >= 16384"),
        ("[bounces]\nsoft_limit = 0\n", {}, "bounces.soft_limit = 0: Expected `int` >= 1"),
        # A final line break is no part of a name: msgspec's patterns are searched with
        # Python's re, where $ also matches before one.
        ('[mongodb]\ndatabase = "crmd\\n"\n', {}, "crmd.toml: mongodb.database = 'crmd\\n'"),
        ('[redis]\nstream_prefix = "crmd\\n"\n', {}, "crmd.toml: redis.stream_prefix = 'crmd\\n'"),
        (
            '[server]\npublic_url = "https://crm.example/\\n"\n',
            {},
            "crmd.toml: server.public_url = 'https://crm.example/\\n'",
        ),
        (
            "",
            {"CRMD_SUPERVISOR__ACTORS": "http,mailer"},
            "CRMD_SUPERVISOR__ACTORS: supervisor.actors = ['http', 'mailer']: 'mailer': name "
            "one or more of http, ingest, dispatch, receipts, tracking, events, flows, clock, "
            "bounces",
        ),
        (
            "",
            {"CRMD_SUPERVISOR__ACTORS": "http,http"},
            "supervisor.actors = ['http', 'http']: http named twice",
        ),
        (
            "",
            {"CRMD_SUPERVISOR__ACTORS": "ingest,dispatch"},
            "crmd.toml: server.public_url: this process dispatches without serving the API",
        ),
        (
            "[campaigns]\nclock_interval_seconds = 20\n",
            {},
            "crmd.toml: campaigns.clock_lease_seconds: must be at least twice "
            "campaigns.clock_interval_seconds",
        ),
        (
            "[auth]\ngoogle_login = true\n",
            {},
            "crmd.toml: auth.google_client_ids: Google login is on",
        ),
        (
            "",
            {"CRMD_AUTH__JWT_SECRET": "short"},
            "CRMD_AUTH__JWT_SECRET: auth.jwt_secret = '***': must be at least 32 bytes",
        ),
        (
            "[server]\nhost = '0.0.0.0'\n[auth]\ngoogle_login = false\ndev_login = true\n",
            {},
            "crmd.toml: server.host = '0.0.0.0': dev login (auth.dev_login) is only allowed",
        ),
    ],
)
def test_bad_values_name_the_key_the_problem_and_the_source(tmp_path, toml, env, expected):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, toml), env)
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_secrets_never_appear_in_errors(tmp_path: Path):
    path = write(tmp_path, "[auth]\ngoogle_login = false\njwt_secret = 12345\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, {})
    assert "12345" not in str(err.value) and "***" in str(err.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("mongodb://app:hunter2@db:27017/x", "mongodb://app:***@db:27017/x"),
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
        ("mongodb://u:p/ss@h:1/db", "mongodb://u:***@h:1/db"),
        ("redis://:pa#ss@h:6379", "redis://:***@h:6379"),
        ("redis://h:6379/0?password=hunter2&db=1", "redis://h:6379/0?password=***&db=1"),
    ],
)
def test_url_passwords_are_redacted(url: str, shown: str):
    assert redact_url(url) == shown


def test_a_misspelt_secret_is_not_echoed(tmp_path: Path):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, ""), {"CRMD_AUTH__JWTSECRET": "supersecretvalue"})
    assert "supersecretvalue" not in str(err.value)
    assert "auth.jwtsecret: unknown setting" in str(err.value)


def test_missing_explicit_file_is_an_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml", {})


def test_check_config_prints_the_error_and_exits_1(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CRMD_SERVER__PORT", "0")
    assert main(["--config", str(write(tmp_path, "")), "check-config"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("crmd: config error: environment variable CRMD_SERVER__PORT")
    assert len(err.splitlines()) == 1


def test_check_config_accepts_a_good_file(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CRMD_SERVER__PORT", raising=False)
    assert main(["--config", str(write(tmp_path, "[server]\nport = 9100\n")), "check-config"]) == 0
    assert "config ok" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["crmd.production.toml", "crmd.embedded.toml"])
def test_example_configs_are_valid(name: str):
    config = load_config(REPO / "config" / name, environ={}).config
    assert config.server.host == "127.0.0.1"


def unit_settings(name: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in (REPO / "config" / name).read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


@pytest.mark.parametrize("unit", ["crmd.service", "crmd@.service"])
def test_systemd_unit_has_the_hardening_and_notify_settings(unit: str):
    settings = unit_settings(unit)
    expected = {
        "Type": "notify",
        "Restart": "on-failure",
        "DynamicUser": "yes",
        "ProtectSystem": "strict",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "SystemCallFilter": "@system-service",
        "KillMode": "mixed",
    }
    for key, value in expected.items():
        assert settings.get(key) == [value], key
    assert int(settings["WatchdogSec"][0]) > 0
    # The drain must fit in the stop timeout systemd allows.
    assert (
        int(settings["TimeoutStopSec"][0])
        > load_config(
            REPO / "config" / "crmd.embedded.toml", environ={}
        ).config.server.shutdown_timeout
    )


def test_the_template_unit_gives_each_instance_its_name_role_and_state():
    settings = unit_settings("crmd@.service")
    assert "CRMD_STREAMS__CONSUMER_NAME=%H-%i" in settings["Environment"]
    assert settings["EnvironmentFile"] == ["-/etc/crmd/crmd.env", "/etc/crmd/%i.env"]
    assert settings["StateDirectory"] == ["crmd/%i"]
    assert unit_settings("crmd.service")["StateDirectory"] == ["crmd"]


def test_a_relative_data_dir_of_a_file_found_by_a_relative_path_is_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Redis changes into its dir before it binds its socket: a relative path there
    broke `make run` (crmd.toml found as ./crmd.toml)."""
    (tmp_path / "crmd.toml").write_text(
        '[embedded]\ndata_dir = ".crmd"\n[auth]\ngoogle_login = false\n'
    )
    monkeypatch.chdir(tmp_path)
    config = load_config(Path("crmd.toml"), environ={}).config
    assert Path(config.embedded.data_dir).is_absolute()
    assert Path(config.embedded.data_dir) == tmp_path.resolve() / ".crmd"


def test_a_secret_anywhere_may_come_from_the_environment_or_a_file(tmp_path: Path):
    # Once only plugins' tables read these: jwt_secret = "$env:..." became that text.
    secret = tmp_path / "jwt"
    secret.write_text("from-a-file-" + "s" * 40 + "\n")
    path = write(tmp_path, '[auth]\njwt_secret = "$env:CRMD_TEST_JWT"\ngoogle_login = false\n')
    loaded = load_config(path, {"CRMD_TEST_JWT": "from-the-environment-" + "e" * 40})
    assert loaded.config.auth.jwt_secret == "from-the-environment-" + "e" * 40
    path.write_text(f'[auth]\njwt_secret = "$file:{secret}"\ngoogle_login = false\n')
    assert load_config(path, {}).config.auth.jwt_secret == "from-a-file-" + "s" * 40
    path.write_text('[auth]\njwt_secret = "$env:NOT_SET_ANYWHERE"\ngoogle_login = false\n')
    with pytest.raises(ConfigError, match=r"auth\.jwt_secret: \$env:NOT_SET_ANYWHERE is not set"):
        load_config(path, {})


def test_the_built_in_defaults_are_a_valid_configuration():
    """No file and no environment: crmd's own defaults load, with Google login off
    until a client id is set, then on; ``true`` without one is still refused."""
    config = load_config(None, {}, search=False).config
    assert config.auth.google_login is False
    with_id = load_config(None, {"CRMD_AUTH__GOOGLE_CLIENT_IDS": "x.apps"}, search=False)
    assert with_id.config.auth.google_login is True
    off = {"CRMD_AUTH__GOOGLE_CLIENT_IDS": "x.apps", "CRMD_AUTH__GOOGLE_LOGIN": "false"}
    assert load_config(None, off, search=False).config.auth.google_login is False
    with pytest.raises(ConfigError, match=r"auth\.google_client_ids: Google login is on"):
        load_config(None, {"CRMD_AUTH__GOOGLE_LOGIN": "true"}, search=False)


def test_crmd_token_works_outside_the_repository(tmp_path: Path, services: Urls):
    """Run where no crmd.toml is found, on the built-in defaults and the environment,
    as a newcomer would after ``cd`` elsewhere: a token, valid under the secret."""
    secret = "outside-the-repository-" + "s" * 32
    env = {
        **os.environ,
        "CRMD_MONGODB__URL": services.mongodb,
        "CRMD_MONGODB__DATABASE": f"token_{uuid.uuid4().hex[:12]}",
        "CRMD_REDIS__URL": services.redis,
        "CRMD_AUTH__JWT_SECRET": secret,
    }
    done = subprocess.run(
        [sys.executable, "-m", "crmd", "token", "--email", "New@Example.com"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "config error" not in done.stderr
    claims = verify_token(done.stdout.strip(), secret)
    assert claims.email == "new@example.com"
    assert not (tmp_path / "crmd.toml").exists() and not (tmp_path / ".crmd").exists()


def test_a_plugins_password_can_come_from_a_systemd_credential(tmp_path: Path):
    (tmp_path / "smtp_password").write_text("from-the-credential\n")
    table = {"host": "relay", "from": "a@b.io", "username": "u"}
    table["password"] = "$file:${CREDENTIALS_DIRECTORY}/smtp_password"
    overrides: dict[tuple[str, ...], Any] = {("auth", "google_login"): False}
    overrides |= {("plugins", "smtp", key): value for key, value in table.items()}
    environ = {"CREDENTIALS_DIRECTORY": str(tmp_path)}
    config = load_config(None, environ, overrides, search=False).config
    assert config.plugins["smtp"]["password"] == "from-the-credential"
