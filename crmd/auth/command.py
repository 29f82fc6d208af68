"""``crmd token --email X``: a token for scripts, made beside (or without) the daemon."""

from __future__ import annotations

from crmd.auth.secret import resolve_jwt_secret
from crmd.auth.tokens import issue_token
from crmd.auth.users import find_user_by_email, upsert_dev_user
from crmd.config import Config
from crmd.emails import InvalidEmail, normalise_email
from crmd.store.command import command_database


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
    async with command_database(config) as db:
        user = await find_user_by_email(db, email) or await upsert_dev_user(db, email)
    return issue_token(user.id, user.email, secret, config.auth.jwt_ttl_seconds)
