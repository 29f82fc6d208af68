"""``crmd token --email X``: a token for scripts, made beside (or without) the daemon."""

from __future__ import annotations

from pathlib import Path

from crmd.auth.secret import resolve_jwt_secret
from crmd.auth.tokens import issue_token
from crmd.auth.users import find_user_by_email, upsert_dev_user
from crmd.config import Config
from crmd.emails import InvalidEmail, normalise_email
from crmd.services.connect import connect_mongo
from crmd.services.embedded import attach_services
from crmd.store.indexes import ensure_indexes


class TokenCommandError(Exception):
    pass


async def token_for_email(config: Config, email: str) -> str:
    """A token for the user with this email, created (as a dev user) when there is none."""
    try:
        email = normalise_email(email)
    except InvalidEmail as exc:
        shown = email.encode("ascii", "backslashreplace").decode()
        raise TokenCommandError(f"'{shown}' {exc}") from None
    secret = resolve_jwt_secret(config)
    # Only MongoDB is needed: a Redis URL other than "embedded" starts nothing.
    async with attach_services(
        config.mongodb.url, "", Path(config.embedded.data_dir), config.embedded.start_timeout
    ) as urls:
        mongo = await connect_mongo(urls.mongodb, config.mongodb.connect_timeout)
        try:
            db = mongo[config.mongodb.database]
            await ensure_indexes(db)
            user = await find_user_by_email(db, email) or await upsert_dev_user(db, email)
        finally:
            await mongo.close()
    return issue_token(user.id, user.email, secret, config.auth.jwt_ttl_seconds)
