"""Loading the settings: the TOML file, the environment, the command line, in that
order of precedence after the defaults, each error one line naming the key, its problem
and where the value came from. This is the only module that reads the environment.

Precedence, lowest first: built-in defaults, the TOML file, the original project's
environment variables (``DB_URL``, ``JWT_SECRET``, ...), ``CRMD_<SECTION>__<KEY>``
variables, then command-line flags.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from crmd.config.redact import redact_value
from crmd.config.schema import DEFAULT_PATHS, Config, ConfigError, LoadedConfig, cross_checks


def client_token(environ: Mapping[str, str]) -> str | None:
    """The API token command-line clients use when --token is not given."""
    return environ.get("CRMD_TOKEN") or None


def client_url(environ: Mapping[str, str]) -> str | None:
    """crmd's address for command-line clients when --url is not given (``CRMD_URL``,
    e.g. after ``make run PORT=9000``)."""
    return environ.get("CRMD_URL") or None


# --- loading -----------------------------------------------------------------------------


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
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
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
    _resolve_references(tree, environ, origins, file_origin)
    try:
        config = msgspec.convert(tree, Config, strict=False)
    except msgspec.ValidationError as exc:
        raise _explain(exc, tree, origins, file_origin) from None
    for key, problem in cross_checks(config):
        raise _error(key, problem, tree, origins, file_origin)
    return LoadedConfig(config=config, path=path)


def _resolve_references(
    node: Any,
    environ: Mapping[str, str],
    origins: dict[tuple[str, ...], str],
    file_origin: str,
    at: tuple[str, ...] = (),
) -> None:
    """In any table, ``$env:NAME`` and ``$file:/path`` (systemd's LoadCredential=) stand
    for a secret kept out of crmd.toml (``auth.jwt_secret``, a plugin's password):
    replaced here by the variable's value or the file's content. A ``${NAME}`` in the
    path is the variable's value, so ``$file:${CREDENTIALS_DIRECTORY}/smtp_password``
    reads systemd's credential. (Only plugins' tables had them once: a jwt_secret written
    ``$env:...`` then became that very text, a secret anyone could read here.)"""
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        here = (*at, str(key))
        if isinstance(value, dict):
            _resolve_references(value, environ, origins, file_origin, here)
        elif isinstance(value, str) and value.startswith(("$env:", "$file:")):
            node[key] = _referenced(value, ".".join(here), environ, origins.get(here, file_origin))


def _referenced(value: str, name: str, environ: Mapping[str, str], origin: str) -> str:
    kind, _, where = value[1:].partition(":")
    if kind == "env":
        if where not in environ:
            raise ConfigError(f"{origin}: {name}: {value} is not set")
        return environ[where]
    unset = [v for v in _VARIABLE.findall(where) if v not in environ]
    if unset:
        raise ConfigError(f"{origin}: {name}: {value}: ${{{unset[0]}}} is not set")
    where = _VARIABLE.sub(lambda match: environ[match.group(1)], where)
    try:
        return Path(where).read_text().strip()
    except OSError as exc:
        raise ConfigError(f"{origin}: {name}: {value} cannot be read ({exc.strerror})") from None


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
        section["data_dir"] = str((base / Path(section["data_dir"]).expanduser()).resolve())


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
        ("server", "cors_origins"),
        ("supervisor", "actors"),
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
