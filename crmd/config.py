"""crmd's configuration: one tree of msgspec Structs, read from TOML and the environment.

Precedence, lowest first: built-in defaults, the TOML file, the original project's
environment variables (``DB_URL``, ``JWT_SECRET``, ...), ``CRMD_<SECTION>__<KEY>``
variables, then command-line flags. This is the only module that reads the environment.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

DEFAULT_PATHS = (Path("crmd.toml"), Path("/etc/crmd/crmd.toml"))
EMBEDDED = "embedded"

Port = Annotated[int, Meta(ge=1, le=65535)]
Seconds = Annotated[float, Meta(gt=0, le=3600)]
Millis = Annotated[int, Meta(ge=1, le=3_600_000)]
LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("auto", "json", "console")


class ConfigError(Exception):
    """A setting is missing or wrong. ``str(err)`` is the one line an operator sees."""


class _Section(Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: Port = 8080
    shutdown_timeout: Seconds = 20.0
    """How long a drain may take on SIGTERM before the remaining work is cancelled."""


class MongoConfig(_Section):
    url: str = EMBEDDED
    database: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{1,63}$")] = "crmd"
    connect_timeout: Seconds = 60.0
    """How long start-up keeps retrying an unreachable server before giving up."""


class RedisConfig(_Section):
    url: str = EMBEDDED
    stream_prefix: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")] = "crmd"
    connect_timeout: Seconds = 60.0
    socket_timeout: Seconds = 10.0
    """Must exceed the streams' BLOCK time, or a blocking read looks like a dead server."""


class EmbeddedConfig(_Section):
    data_dir: str = ".crmd"
    start_timeout: Seconds = 60.0


class AuthConfig(_Section):
    google_login: bool = True
    """Sign-in with Google; needs at least one client id."""
    google_client_ids: list[str] = msgspec.field(default_factory=list)
    google_client_secret: str = ""
    """Only for the authorization-code (popup) flow."""
    google_certs_url: str = "https://www.googleapis.com/oauth2/v1/certs"
    google_token_url: str = "https://oauth2.googleapis.com/token"
    allowed_domains: list[str] = msgspec.field(default_factory=list)
    """Google Workspace domains (the ``hd`` claim) allowed to sign in; empty: any."""
    allowed_emails: list[str] = msgspec.field(default_factory=list)
    """Addresses allowed to sign in (besides allowed_domains); empty: any."""
    clock_skew_seconds: Annotated[int, Meta(ge=0, le=300)] = 60
    jwt_secret: str = ""
    """At least 32 bytes. Empty: generated once into the embedded data dir."""
    jwt_ttl_seconds: Annotated[int, Meta(ge=60, le=31_536_000)] = 86_400
    dev_login: bool = False
    """Sign-in by email alone, for local use; only on a loopback address."""


class LoggingConfig(_Section):
    level: str = "info"
    format: str = "auto"

    def __post_init__(self) -> None:
        self.level = self.level.lower()
        self.format = self.format.lower()
        if self.level not in LEVELS:
            raise ValueError(f"level: must be one of {', '.join(LEVELS)}")
        if self.format not in FORMATS:
            raise ValueError(f"format: must be one of {', '.join(FORMATS)}")


class StreamsConfig(_Section):
    batch_size: Annotated[int, Meta(ge=1, le=10_000)] = 500
    block_ms: Millis = 2_000
    claim_idle_ms: Millis = 60_000
    claim_interval_ms: Millis = 15_000
    max_deliveries: Annotated[int, Meta(ge=1, le=1_000)] = 5
    trim_interval_ms: Millis = 60_000
    consumer_name: str = ""
    """Unique per process; empty means the host name. Set it when several crmd
    processes share one host, so that each drains only its own pending entries."""


class IngestConfig(_Section):
    max_file_bytes: Annotated[int, Meta(ge=1024)] = 100 * 1024 * 1024
    max_rows: Annotated[int, Meta(ge=1)] = 1_000_000
    max_columns: Annotated[int, Meta(ge=2, le=10_000)] = 100
    max_field_bytes: Annotated[int, Meta(ge=64, le=16 * 1024 * 1024)] = 64 * 1024
    chunk_rows: Annotated[int, Meta(ge=1, le=10_000)] = 500
    spool_dir: str = ""
    """Where an upload's parsed rows wait until the whole file has passed; empty means
    the system's temporary directory."""


class CampaignsConfig(_Section):
    receipt_window_seconds: Annotated[int, Meta(ge=1)] = 86_400
    """After a campaign is sent, how long receipts are waited for before the messages
    still PENDING become UNKNOWN and the campaign is completed."""
    clock_interval_seconds: Seconds = 5.0


class AiConfig(_Section):
    order: list[str] = msgspec.field(default_factory=lambda: ["gemini", "basic_ai"])
    """Suggesters asked first to last; the first good answer wins."""
    timeout: Seconds = 10.0


class SupervisorConfig(_Section):
    restart_initial_delay: Seconds = 0.5
    restart_max_delay: Seconds = 30.0


class Config(_Section):
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    mongodb: MongoConfig = msgspec.field(default_factory=MongoConfig)
    redis: RedisConfig = msgspec.field(default_factory=RedisConfig)
    embedded: EmbeddedConfig = msgspec.field(default_factory=EmbeddedConfig)
    auth: AuthConfig = msgspec.field(default_factory=AuthConfig)
    logging: LoggingConfig = msgspec.field(default_factory=LoggingConfig)
    streams: StreamsConfig = msgspec.field(default_factory=StreamsConfig)
    supervisor: SupervisorConfig = msgspec.field(default_factory=SupervisorConfig)
    ingest: IngestConfig = msgspec.field(default_factory=IngestConfig)
    campaigns: CampaignsConfig = msgspec.field(default_factory=CampaignsConfig)
    ai: AiConfig = msgspec.field(default_factory=AiConfig)
    plugins: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)
    """Each plugin's own table, ``[plugins.<name>]``, passed to it untouched."""


def cross_checks(config: Config) -> list[tuple[tuple[str, ...], str]]:
    """Rules that span keys or sections: (the key to blame, the problem)."""
    problems: list[tuple[tuple[str, ...], str]] = []
    auth = config.auth
    if auth.google_login and not auth.google_client_ids:
        problems.append(
            (
                ("auth", "google_client_ids"),
                "Google login is on (auth.google_login) but no client id is set; "
                "set one, or google_login = false",
            )
        )
    if auth.jwt_secret and len(auth.jwt_secret.encode()) < 32:
        problems.append((("auth", "jwt_secret"), "must be at least 32 bytes"))
    if auth.dev_login and not is_loopback(config.server.host):
        problems.append(
            (("server", "host"), "dev login (auth.dev_login) is only allowed on a loopback address")
        )
    if config.redis.socket_timeout * 1000 <= config.streams.block_ms:
        problems.append(
            (
                ("redis", "socket_timeout"),
                f"must exceed streams.block_ms ({config.streams.block_ms} ms), "
                "or a blocking read looks like a dead server",
            )
        )
    return problems


def client_token(environ: Mapping[str, str]) -> str | None:
    """The API token command-line clients use when --token is not given."""
    return environ.get("CRMD_TOKEN") or None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LoadedConfig(Struct, frozen=True):
    config: Config
    path: Path | None
    """The file it came from, or None when only defaults and the environment were used."""


# --- loading -----------------------------------------------------------------------------

SECRET_KEYS = frozenset({"jwt_secret", "google_client_secret", "api_key", "secret", "password"})

# The original Node project's variables, mapped onto crmd's keys.
LEGACY_ENV: Mapping[str, tuple[str, ...]] = {
    "CLIENT_ID": ("auth", "google_client_ids"),
    "CLIENT_SECRET": ("auth", "google_client_secret"),
    "DB_URL": ("mongodb", "url"),
    "JWT_SECRET": ("auth", "jwt_secret"),
    "JWT_TIMEOUT": ("auth", "jwt_ttl_seconds"),
    "GEMINI_API_KEY": ("plugins", "gemini", "api_key"),
}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_UNKNOWN_FIELD = re.compile(r"^Object contains unknown field `([^`]+)`$")
_NAMED_FIELD = re.compile(r"^([a-z_]+(?:\.[a-z_]+)*): (.*)$", re.DOTALL)
_ERROR_PATH = re.compile(r"^(?P<problem>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)


def load_config(
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[tuple[str, ...], Any] | None = None,
    *,
    search: bool = True,
) -> LoadedConfig:
    """Read the config file (``path``, else, when ``search``, the first default that
    exists), apply the environment and ``overrides`` (from command-line flags, keyed by
    path) and validate.

    Raises ConfigError with one line that names the key, the problem and the source.
    """
    environ = os.environ if environ is None else environ
    path = _find_file(path, search)
    tree: dict[str, Any] = {}
    origins: dict[tuple[str, ...], str] = {}
    if path is not None:
        tree = _read_toml(path)
        _resolve_data_dir(tree, path.parent)
    file_origin = str(path) if path else "defaults"
    for var, key in LEGACY_ENV.items():
        if var in environ:
            _set(tree, key, _legacy_value(var, environ[var]))
            origins[key] = f"environment variable {var}"
    for var, value in environ.items():
        if var.startswith("CRMD_") and "__" in var:
            key = tuple(part.lower() for part in var[len("CRMD_") :].split("__"))
            if not all(key) or (key[0] != "plugins" and len(key) != 2):
                raise ConfigError(f"{var}: expected CRMD_<SECTION>__<KEY>")
            _set(tree, key, _env_value(key, value))
            origins[key] = f"environment variable {var}"
    for key, value in (overrides or {}).items():
        _set(tree, key, value)
        origins[key] = "command line"
    try:
        config = msgspec.convert(tree, Config, strict=False)
    except msgspec.ValidationError as exc:
        raise _explain(exc, tree, origins, file_origin) from None
    for key, problem in cross_checks(config):
        raise _error(key, problem, tree, origins, file_origin)
    return LoadedConfig(config=config, path=path)


def _find_file(path: Path | None, search: bool) -> Path | None:
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        return path
    if not search:
        return None
    return next((p for p in DEFAULT_PATHS if p.is_file()), None)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}") from None


def _resolve_data_dir(tree: dict[str, Any], base: Path) -> None:
    """A relative data_dir in a file is relative to that file, not to the working dir."""
    section = tree.get("embedded")
    if isinstance(section, dict) and isinstance(section.get("data_dir"), str):
        section["data_dir"] = str(base / Path(section["data_dir"]).expanduser())


def _set(tree: dict[str, Any], key: tuple[str, ...], value: Any) -> None:
    node = tree
    for part in key[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{'.'.join(key)}: {part} is not a table")
        node = child
    node[key[-1]] = value


def _env_value(key: tuple[str, ...], raw: str) -> Any:
    """Environment values are strings; lists are comma-separated."""
    if key in {
        ("auth", "google_client_ids"),
        ("auth", "allowed_domains"),
        ("auth", "allowed_emails"),
    }:
        return [item.strip() for item in raw.split(",") if item.strip()]
    return raw


def _legacy_value(var: str, raw: str) -> Any:
    if var == "CLIENT_ID":
        return [item.strip() for item in raw.split(",") if item.strip()]
    if var == "JWT_TIMEOUT":
        return parse_duration(raw)
    return raw


def parse_duration(raw: str) -> int | str:
    """``3600``, ``90s``, ``30m``, ``12h``, ``7d``, ``2w`` → seconds; anything else is
    returned unchanged so validation reports it against the key."""
    match = _DURATION.match(raw)
    if not match:
        return raw
    return int(match.group(1)) * _DURATION_UNITS[match.group(2)]


def _explain(
    exc: msgspec.ValidationError,
    tree: dict[str, Any],
    origins: dict[tuple[str, ...], str],
    file_origin: str,
) -> ConfigError:
    match = _ERROR_PATH.match(str(exc))
    assert match is not None
    problem = match.group("problem").strip()
    key: tuple[str, ...] = tuple(p for p in (match.group("path") or "").split(".") if p)
    # Unknown fields and __post_init__ checks name the field inside the message.
    unknown = _UNKNOWN_FIELD.match(problem)
    named = _NAMED_FIELD.match(problem)
    if unknown:
        key, problem = (*key, unknown.group(1)), "unknown setting"
    elif named:
        key, problem = (*key, *named.group(1).split(".")), named.group(2)
    if not key:
        return ConfigError(f"{file_origin}: {problem}")
    return _error(key, problem, tree, origins, file_origin)


def _error(
    key: tuple[str, ...],
    problem: str,
    tree: dict[str, Any],
    origins: dict[tuple[str, ...], str],
    file_origin: str,
) -> ConfigError:
    origin = next(
        (origins[key[:n]] for n in range(len(key), 0, -1) if key[:n] in origins),
        next((o for k, o in origins.items() if k[: len(key)] == key), file_origin),
    )
    dotted = ".".join(key)
    value = _lookup(tree, key)
    # An unknown key may be a misspelt secret: never echo its value.
    hidden = value is _MISSING or problem == "unknown setting"
    shown = "" if hidden else f" = {redact_value(key[-1], value)!r}"
    return ConfigError(f"{origin}: {dotted}{shown}: {problem}")


_MISSING = object()


def _lookup(tree: Mapping[str, Any], key: tuple[str, ...]) -> Any:
    node: Any = tree
    for part in key:
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def redact_value(key: str, value: Any) -> Any:
    """The value as it may appear in an error or a log: secrets hidden, URL passwords cut."""
    if key in SECRET_KEYS or key.endswith(("_secret", "_key", "password", "token")):
        return "***"
    if isinstance(value, str) and "://" in value:
        return redact_url(value)
    return value


def redact_url(url: str) -> str:
    """``mongodb://user:pw@host/db`` → ``mongodb://user:***@host/db``; a password in the
    query string goes too. Works on the text, not a parse, so that malformed URLs (an
    unescaped ``/`` or ``#`` in a password) are cut as well."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "***" if "@" in url else url
    if "@" in rest:
        userinfo, host = rest.rsplit("@", 1)
        user = userinfo.split(":", 1)[0] if ":" in userinfo else userinfo
        rest = f"{user}:***@{host}" if ":" in userinfo else rest
    rest = _QUERY_SECRET.sub(r"\1=***", rest)
    return f"{scheme}://{rest}"


_QUERY_SECRET = re.compile(r"((?:password|pass|secret|token|key)[^=&]*)=[^&#]*", re.I)
