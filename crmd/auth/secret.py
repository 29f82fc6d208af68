"""The secret that signs crmd's tokens: configured, or generated once per data dir."""

from __future__ import annotations

from pathlib import Path

from crmd.config import EMBEDDED, Config
from crmd.services.secretfile import read_or_create_secret

SECRET_FILE = "jwt_secret"


class SecretError(Exception):
    """No usable token secret."""


def resolve_jwt_secret(config: Config) -> str:
    """``[auth] jwt_secret`` when set. Otherwise, with an embedded server, the secret in
    ``<data_dir>/jwt_secret``, created (mode 0600) on first use so tokens outlive a
    restart. With real servers only and no secret, crmd refuses to start: processes on
    several machines must share one secret, so it cannot be made up locally."""
    if config.auth.jwt_secret:
        return config.auth.jwt_secret
    if EMBEDDED not in (config.mongodb.url, config.redis.url):
        raise SecretError(
            "auth.jwt_secret is not set: set it (32 bytes or more) in the config or as "
            "CRMD_AUTH__JWT_SECRET / JWT_SECRET"
        )
    path = Path(config.embedded.data_dir) / SECRET_FILE
    try:
        return read_or_create_secret(path)
    except (OSError, ValueError) as exc:
        raise SecretError(f"token secret: {exc}") from None
