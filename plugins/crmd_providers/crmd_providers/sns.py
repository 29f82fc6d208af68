"""Amazon SNS's HTTP(S) delivery: a message's signature checked as AWS documents it
("Verifying the signatures of Amazon SNS messages"), the signing certificate fetched
only from an ``sns.<region>.amazonaws.com`` host and kept, and a subscription confirmed.

The string signed is, for a ``Notification``, the lines ``Message``, ``MessageId``,
``Subject`` (when there is one), ``Timestamp``, ``TopicArn``, ``Type``, each name then its
value, each followed by a line break; for a ``SubscriptionConfirmation`` or
``UnsubscribeConfirmation``, ``Message``, ``MessageId``, ``SubscribeURL``, ``Timestamp``,
``Token``, ``TopicArn``, ``Type``. SignatureVersion 1 is RSA with SHA-1, 2 RSA with
SHA-256 (PKCS #1 v1.5)."""

from __future__ import annotations

import asyncio
import base64
import re
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import msgspec
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SNS_HOST = re.compile(
    r"sns\.[a-z]{2}(-gov)?-[a-z]+-[0-9]{1,2}\.amazonaws\.com"
    r"|sns\.cn-[a-z]+-[0-9]{1,2}\.amazonaws\.com\.cn"
)
"""Matched whole: the hosts AWS serves signing certificates and confirmations from,
``sns.`` and a region's name (``eu-west-1``, ``us-gov-west-1``; ``cn-north-1`` under
``amazonaws.com.cn``). Only a region's shape: ``sns.s3-external-1.amazonaws.com`` is
the S3 bucket named ``sns``, whose owner, not AWS, chooses the files it serves."""
CERTIFICATE_PATH = re.compile(r"/SimpleNotificationService-[0-9A-Za-z]{1,64}\.pem")
"""Matched whole: the path of every signing certificate SNS names."""
MAX_CERTIFICATE = 64 * 1024
CACHED_CERTIFICATES = 32
HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}

Fetch = Callable[[str], Coroutine[Any, Any, bytes]]
"""GET a URL and answer its body (raising on anything but 200), on crmd's event loop."""


class Envelope(msgspec.Struct, rename="pascal"):
    """An SNS message as posted to an HTTP(S) subscription."""

    type: Literal["Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"]
    message_id: str
    topic_arn: str
    message: str
    timestamp: str
    signature_version: str
    signature: str
    signing_cert_url: str = msgspec.field(name="SigningCertURL")
    subject: str | None = None
    subscribe_url: str = msgspec.field(name="SubscribeURL", default="")
    token: str = ""


def signed_text(envelope: Envelope) -> bytes:
    """The string SNS signs for this message."""
    if envelope.type == "Notification":
        pairs = [("Message", envelope.message), ("MessageId", envelope.message_id)]
        if envelope.subject is not None:
            pairs.append(("Subject", envelope.subject))
        pairs += [("Timestamp", envelope.timestamp), ("TopicArn", envelope.topic_arn)]
    else:
        pairs = [
            ("Message", envelope.message),
            ("MessageId", envelope.message_id),
            ("SubscribeURL", envelope.subscribe_url),
            ("Timestamp", envelope.timestamp),
            ("Token", envelope.token),
            ("TopicArn", envelope.topic_arn),
        ]
    pairs.append(("Type", envelope.type))
    return "".join(f"{name}\n{value}\n" for name, value in pairs).encode()


def checked_sns_url(url: str) -> str:
    """``url`` when it is https on an SNS host (no user, no port), else ValueError: a
    certificate or a confirmation is fetched from nowhere else."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme != "https" or not SNS_HOST.fullmatch(host) or parts.port or parts.username:
        raise ValueError(f"not an https://sns.<region>.amazonaws.com URL: {url[:120]!r}")
    return url


def redirected(url: str, endpoint: str) -> str:
    """``url``'s path and query on ``endpoint`` (the tests' local stand-in for AWS)."""
    if not endpoint:
        return url
    parts, base = urlsplit(url), urlsplit(endpoint)
    return urlunsplit(
        (base.scheme, base.netloc, base.path.rstrip("/") + parts.path, parts.query, "")
    )


class SnsVerifier:
    """Checks SNS signatures with certificates fetched through ``fetch`` on ``loop``
    (crmd calls the source from a worker thread), each kept once fetched."""

    def __init__(
        self,
        fetch: Fetch,
        loop: asyncio.AbstractEventLoop | None,
        endpoint: str = "",
        timeout: float = 4.0,
    ) -> None:
        self.fetch = fetch
        self.loop = loop
        self.endpoint = endpoint
        self.timeout = timeout
        self.certificates: dict[str, rsa.RSAPublicKey] = {}
        self.lock = threading.Lock()

    def verify(self, envelope: Envelope) -> None:
        """ValueError unless SNS signed this message."""
        algorithm = HASHES.get(envelope.signature_version)
        if algorithm is None:
            raise ValueError(f"unknown SignatureVersion {envelope.signature_version!r}")
        url = checked_sns_url(envelope.signing_cert_url)
        if not CERTIFICATE_PATH.fullmatch(urlsplit(url).path) or urlsplit(url).query:
            raise ValueError("SigningCertURL is not the URL of an SNS signing certificate")
        key = self.public_key(url)
        try:
            signature = base64.b64decode(envelope.signature, validate=True)
            key.verify(signature, signed_text(envelope), padding.PKCS1v15(), algorithm())
        except (InvalidSignature, ValueError):
            raise ValueError("the SNS signature does not match") from None

    def public_key(self, url: str) -> rsa.RSAPublicKey:
        with self.lock:
            known = self.certificates.get(url)
        if known is not None:
            return known
        pem = self.get(url)
        if len(pem) > MAX_CERTIFICATE:
            raise ValueError("the signing certificate is too large")
        try:
            key = x509.load_pem_x509_certificate(pem).public_key()
        except ValueError:
            raise ValueError("the signing certificate is not a PEM certificate") from None
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError("the signing certificate's key is not RSA")
        with self.lock:
            if len(self.certificates) >= CACHED_CERTIFICATES:
                self.certificates.pop(next(iter(self.certificates)))
            self.certificates[url] = key
        return key

    def get(self, url: str) -> bytes:
        """GET an SNS URL (already checked) from this worker thread, on crmd's loop."""
        if self.loop is None:
            raise ValueError("no event loop to fetch from")
        fetching = self._fetched(redirected(url, self.endpoint))
        future = asyncio.run_coroutine_threadsafe(fetching, self.loop)
        host = urlsplit(url).hostname
        try:
            # A little longer than the fetch's own timeout, which normally ends it first.
            answer, error = future.result(self.timeout + 0.5)
        except TimeoutError:
            future.cancel()
            raise ValueError(f"{host} did not answer in {self.timeout:g} s") from None
        if error:
            raise ValueError(f"could not fetch from {host}: {error}"[:200])
        return answer

    async def _fetched(self, url: str) -> tuple[bytes, str]:
        """The body, or what went wrong: never an exception, which a task whose waiter
        has given up would leave unretrieved."""
        try:
            return await self.fetch(url), ""
        except TimeoutError:
            return b"", f"no answer in {self.timeout:g} s"
        except Exception as exc:
            return b"", f"{type(exc).__name__}: {exc}"

    def confirm(self, envelope: Envelope) -> None:
        """Follow a verified SubscriptionConfirmation's SubscribeURL (an SNS URL only)."""
        self.get(checked_sns_url(envelope.subscribe_url))
