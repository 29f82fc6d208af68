"""The connection to the relay: one per process, kept open from batch to batch (a
relay's handshake, TLS and login, costs more than a message), and opened again when the
relay has dropped it. Whoever uses it holds ``lock``."""

from __future__ import annotations

import asyncio
import ssl

import aiosmtplib

from crmd.plugins import VendorMisconfigured
from crmd_smtp.settings import Settings

AUTH_CODES = frozenset({530, 534, 535, 538})
"""Authentication required, mechanism too weak, credentials invalid, encryption needed."""


class RelayDown(Exception):
    """The relay cannot be reached now (refused, timed out, hung up): try again later."""


class Relay:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lock = asyncio.Lock()
        self.client: aiosmtplib.SMTP | None = None
        self._tls: ssl.SSLContext | None = None

    @property
    def where(self) -> str:
        return f"{self.settings.host}:{self.settings.relay_port}"

    async def connection(self) -> aiosmtplib.SMTP:
        """The pooled connection if it still answers (a NOOP: relays hang up on idle
        clients), else a new one, logged in. Raises RelayDown or VendorMisconfigured."""
        if self.client is not None and self.client.is_connected:
            try:
                await self.client.noop()
                return self.client
            except (aiosmtplib.SMTPException, OSError):
                self.drop()
        self.client = await self.open()
        return self.client

    async def open(self) -> aiosmtplib.SMTP:
        """A new connection, through TLS and login as the settings say."""
        settings = self.settings
        client = aiosmtplib.SMTP(
            hostname=settings.host,
            port=settings.relay_port,
            username=settings.username or None,
            password=settings.password or None,
            local_hostname=settings.helo or settings.domain,
            timeout=settings.timeout,
            use_tls=settings.tls == "implicit",
            start_tls=settings.tls == "starttls",
            tls_context=self._tls_context(),
        )
        try:
            await client.connect()
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise VendorMisconfigured(
                f"the relay {self.where} refused the login of {settings.username!r} "
                f"({exc.code} {exc.message}): check username and password"
            ) from None
        except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPTimeoutError, OSError) as exc:
            if isinstance(exc, ssl.SSLError) or isinstance(exc.__cause__, ssl.SSLError):
                raise VendorMisconfigured(
                    f"TLS with {self.where} failed: {exc.__cause__ or exc} (check tls, ca_file)"
                ) from None
            raise RelayDown(f"cannot reach {self.where}: {exc}") from None
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code in AUTH_CODES:
                raise VendorMisconfigured(
                    f"the relay {self.where} refused the login ({exc.code} {exc.message})"
                ) from None
            raise RelayDown(f"{self.where} answered {exc.code} {exc.message}") from None
        except aiosmtplib.SMTPException as exc:  # STARTTLS or AUTH not offered
            raise VendorMisconfigured(f"{self.where}: {exc} (check tls and username)") from None
        return client

    def drop(self) -> None:
        """Forget the connection (it is lost or in an unknown state)."""
        if self.client is not None:
            self.client.close()
        self.client = None

    async def close(self) -> None:
        """Say QUIT, politely and briefly, at shutdown."""
        client, self.client = self.client, None
        if client is not None and client.is_connected:
            try:
                await client.quit(timeout=2)
            except (aiosmtplib.SMTPException, OSError):
                client.close()

    def _tls_context(self) -> ssl.SSLContext | None:
        if self.settings.tls == "none":
            return None
        if self._tls is None:  # made once: loading the trusted certificates takes a while
            self._tls = ssl.create_default_context(cafile=self.settings.ca_file or None)
        return self._tls
