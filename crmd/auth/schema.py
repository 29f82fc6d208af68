"""Signing in on the wire: what the sign-in routes take and answer.

Shared by the routes and the typed client (``crmd.client``), which imports it without a
database or Redis driver: keep it to msgspec and the other schema modules.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from crmd.http.schema import Body

Token = Annotated[str, msgspec.Meta(min_length=1, max_length=8192)]


class GoogleLogin(Body):
    credential: Token | None = None
    code: Token | None = None


class DevLogin(Body):
    email: Annotated[str, msgspec.Meta(min_length=1, max_length=320)]
    """Normalised (and refused when it hides characters) by ``normalise_email``."""


class UserView(msgspec.Struct):
    id: str
    email: str
    name: str
    picture: str


class SignedIn(msgspec.Struct):
    token: str
    """Send it as ``Authorization: Bearer <token>``."""
    user: UserView
    message: str


class Me(msgspec.Struct):
    user: UserView
