"""crmd's settings: one tree of msgspec Structs, each section with its defaults and
limits, and the rules that span sections (``cross_checks``)."""

from __future__ import annotations

import ipaddress
import re
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from crmd.config.audit import AuditConfig
from crmd.config.bounces import BouncesConfig, bounce_checks
from crmd.config.flows import FlowsConfig, flow_checks
from crmd.config.keys import KeysConfig
from crmd.config.webhooks import WebhooksConfig
from crmd.config.workspaces import WorkspacesConfig
from crmd.emails import InvalidEmail, normalise_email

DEFAULT_PATHS = (Path("crmd.toml"), Path("/etc/crmd/crmd.toml"))
EMBEDDED = "embedded"

Port = Annotated[int, Meta(ge=1, le=65535)]
Seconds = Annotated[float, Meta(gt=0, le=3600)]
Millis = Annotated[int, Meta(ge=1, le=3_600_000)]
LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("auto", "json", "console")


class ConfigError(Exception):
    """A setting is missing or wrong. ``str(err)`` is the one line an operator sees."""


ORIGIN = re.compile(
    r"https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?"
)


class _Section(Struct, forbid_unknown_fields=True, kw_only=True):
    pass


# A Meta pattern is searched with Python's re, where $ also matches before a final line
# break ("crmd\n" was a database name): the patterns below end with \Z, the very end.


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: Port = 8080
    shutdown_timeout: Seconds = 20.0
    """How long a drain may take on SIGTERM before the remaining work is cancelled."""
    public_url: Annotated[str, Meta(pattern=r"^(https?://[^\s/]+(/[^\s]*)?)?\Z")] = ""
    """Where crmd is reached from outside (receipt callbacks, links); empty means
    ``http://<host>:<port>``."""

    cors_origins: list[str] = msgspec.field(default_factory=list)
    """Exact origins (``https://app.example.com``, no path, no wildcard) whose browser
    pages may call the API; empty: none."""

    database_connections: Annotated[int, Meta(ge=1, le=100)] = 1
    """The most database commands this process's requests and audience counts have in
    flight at once (a pool of their own; more wait their turn in crmd): the stream
    actors and the clock have their own, so imports and sends keep the rest of the
    database's time."""
    read_slots: Annotated[int, Meta(ge=1, le=1000)] = 4
    """Expensive reads (rule previews, filtered lists, counts) this process works on at
    once, all users together."""
    read_slots_per_user: Annotated[int, Meta(ge=1, le=1000)] = 3
    """Expensive reads one user may have in progress at once in this process."""
    read_wait: Annotated[float, Meta(ge=0, le=60)] = 0.5
    """How long an expensive read waits for a slot before it is answered 429."""
    count_slots: Annotated[int, Meta(ge=1, le=64)] = 1
    """Audience counts reading the database at once in this process: the share of the
    database counting may take from imports and sends."""
    count_wait: Annotated[float, Meta(ge=0, le=60)] = 0.5
    """How long a preview or a filtered list waits for its count before answering with
    what is counted so far (202)."""

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return (self.public_url or f"http://{host}:{self.port}").rstrip("/")


class MongoConfig(_Section):
    url: str = EMBEDDED
    database: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{1,63}\Z")] = "crmd"
    connect_timeout: Seconds = 60.0
    """How long start-up keeps retrying an unreachable server before giving up."""


class RedisConfig(_Section):
    url: str = EMBEDDED
    stream_prefix: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.:-]{1,64}\Z")] = "crmd"
    connect_timeout: Seconds = 60.0
    socket_timeout: Seconds = 10.0
    """Must exceed the streams' BLOCK time, or a blocking read looks like a dead server."""


class EmbeddedConfig(_Section):
    data_dir: str = ".crmd"
    start_timeout: Seconds = 60.0


class AuthConfig(_Section):
    google_login: bool | None = None
    """Sign-in with Google. Unset, it is on exactly when a client id is set, so that
    the built-in defaults are a valid configuration; ``true`` needs a client id."""
    google_client_ids: list[str] = msgspec.field(default_factory=list)
    google_client_secret: str = ""
    """Only for the authorization-code (popup) flow."""
    google_certs_url: str = "https://www.googleapis.com/oauth2/v1/certs"
    google_token_url: str = "https://oauth2.googleapis.com/token"
    google_auth_url: str = "https://accounts.google.com/o/oauth2/v2/auth"
    """Where the console sends people to sign in with Google (needs the client secret)."""
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

    def __post_init__(self) -> None:
        if self.google_login is None:
            self.google_login = bool(self.google_client_ids)
        # Spelt as crmd spells every address it reads, so that the allow-list compares
        # like with like; an entry that is no address would never let anyone in.
        emails = []
        for entry in self.allowed_emails:
            try:
                emails.append(normalise_email(entry))
            except InvalidEmail as exc:
                shown = entry.encode("ascii", "backslashreplace").decode()
                raise ValueError(f"allowed_emails: '{shown}' {exc}") from None
        self.allowed_emails = emails


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
    handler_timeout_ms: Annotated[int, Meta(ge=0, le=3_600_000)] = 0
    """How long a batch's handling may take before it is cancelled as stuck and taken up
    again; 0 means ten minutes. While it is handled the batch is held (its claim renewed
    every claim_idle_ms/3), so no other consumer takes work in progress."""
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
    uploads_at_once: Annotated[int, Meta(ge=1, le=64)] = 2
    """Files parsed at the same time by one process; more wait their turn."""
    max_batch: Annotated[int, Meta(ge=1, le=10_000)] = 1000
    """Records one ``POST /api/v1/customers`` or ``/orders`` may carry (more: 413)."""


class EventsConfig(_Section):
    """``POST /api/v1/events`` and the events actor."""

    max_batch: Annotated[int, Meta(ge=1, le=10_000)] = 1000
    """Events one request may carry (an array); more is refused whole (422)."""
    max_properties_bytes: Annotated[int, Meta(ge=64, le=1024 * 1024)] = 16 * 1024
    """An event's ``properties``, encoded as JSON, at most this many bytes."""
    max_depth: Annotated[int, Meta(ge=1, le=32)] = 5
    """How deeply ``properties`` may nest objects and arrays (a flat object is 1)."""
    unknown_customer: Literal["refuse", "create"] = "refuse"
    """An event naming no known customer: refused (422, field ``customer``), or the
    customer is created with that external id (or e-mail, when it is one)."""
    retention_days: Annotated[int, Meta(ge=1, le=36_500)] = 365
    """Events older than this are deleted by the clock, and refused when posted."""
    retention_batch: Annotated[int, Meta(ge=1, le=100_000)] = 5_000
    """Events one clock pass deletes at most (the next pass goes on)."""


class CampaignsConfig(_Section):
    default_vendor: str = ""
    """The vendor of a campaign that names none (``smtp``...); empty: the first vendor
    loaded, which may be the dummy vendor."""
    receipt_window_seconds: Annotated[int, Meta(ge=1)] = 86_400
    """After a campaign is sent, how long receipts are waited for before the messages
    still PENDING become UNKNOWN and the campaign is completed."""
    clock_interval_seconds: Seconds = 5.0
    stranded_after_seconds: Annotated[int, Meta(ge=30)] = 600
    """A campaign queued or planning that has not moved for this long, with no plan job
    waiting, has its plan job queued again (crmd died before it queued the job)."""
    clock_lease_seconds: Seconds = 30.0
    """One process's clock ticks at a time, under a lease in Redis; when that process
    dies another takes over within this time and one interval. At least twice
    clock_interval_seconds."""
    track_clicks: bool = True
    """A new campaign's default: its links are sent as click links
    (``<public_url>/c/<token>``) that count each click and redirect."""
    track_opens: bool = False
    """A new campaign's default: its HTML body carries a 1x1 image
    (``<public_url>/o/<token>``) whose loading counts as an open."""
    tracking_days: Annotated[int, Meta(ge=1, le=3650)] = 365
    """How long a message's click and open links work; after that they answer 404."""
    machine_open_seconds: Annotated[int, Meta(ge=0, le=3600)] = 60
    """An open from a known mail proxy's user agent this soon after hand-over is a
    machine's (a privacy proxy fetching every image), counted apart from people's."""
    holdout_percent: Annotated[float, Meta(ge=0, le=50)] = 0.0
    """A new campaign's default holdout: this share of its audience, drawn at random,
    is not sent to, so that its orders show what the message changed."""
    attribution_days: Annotated[int, Meta(ge=1, le=90)] = 7
    """A new campaign's default: orders this many days after a recipient's message
    count for it."""


class AiConfig(_Section):
    order: list[str] = msgspec.field(default_factory=lambda: ["gemini", "basic_ai"])
    """Suggesters asked first to last; the first good answer wins."""
    timeout: Seconds = 10.0


class ConsoleConfig(_Section):
    currency: Annotated[str, Meta(pattern=r"^[A-Z]{3}\Z")] = "INR"
    """The currency of customers' spend and of order amounts, as an ISO 4217 code
    (``INR``, ``USD``, ``EUR``...): the console shows every amount in it. crmd stores
    amounts as plain numbers and converts nothing."""


ROLES = (
    "http",
    "ingest",
    "dispatch",
    "receipts",
    "tracking",
    "events",
    "flows",
    "clock",
    "bounces",
)
"""The actors a process can be asked to run: its roles in a cluster."""


class SupervisorConfig(_Section):
    restart_initial_delay: Seconds = 0.5
    restart_max_delay: Seconds = 30.0
    actors: list[str] = msgspec.field(default_factory=lambda: list(ROLES))
    """What this process runs (``crmd serve --actors``): all of them by default. A
    process without ``http`` still answers /healthz, /readyz and /metrics on its port."""


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
    events: EventsConfig = msgspec.field(default_factory=EventsConfig)
    ai: AiConfig = msgspec.field(default_factory=AiConfig)
    console: ConsoleConfig = msgspec.field(default_factory=ConsoleConfig)
    bounces: BouncesConfig = msgspec.field(default_factory=BouncesConfig)
    flows: FlowsConfig = msgspec.field(default_factory=FlowsConfig)
    webhooks: WebhooksConfig = msgspec.field(default_factory=WebhooksConfig)
    workspaces: WorkspacesConfig = msgspec.field(default_factory=WorkspacesConfig)
    keys: KeysConfig = msgspec.field(default_factory=KeysConfig)
    audit: AuditConfig = msgspec.field(default_factory=AuditConfig)
    plugins: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)
    """Each plugin's own table, ``[plugins.<name>]``, passed to it untouched."""

    @property
    def smtp_sender(self) -> str:
        """The address of ``[plugins.smtp] from`` ("" when unset): the right side of its
        domain is that of every Message-ID the smtp vendor writes."""
        sender = self.plugins.get("smtp", {}).get("from", "")
        return parseaddr(sender)[1] if isinstance(sender, str) else ""

    @property
    def bounce_sender(self) -> tuple[str, str]:
        """(local part, domain) of the envelope senders bounces come back to: the local
        part of ``[plugins.smtp] from`` and ``[bounces] domain``, else from's domain."""
        local, _, domain = self.smtp_sender.rpartition("@")
        return local, (self.bounces.domain or domain.lower())


def cross_checks(config: Config) -> list[tuple[tuple[str, ...], str]]:
    """Rules that span keys or sections: (the key to blame, the problem)."""
    problems: list[tuple[tuple[str, ...], str]] = []
    auth = config.auth
    if auth.google_login and not auth.google_client_ids:
        problems.append(
            (
                ("auth", "google_client_ids"),
                "Google login is on (auth.google_login = true) but no client id is set; "
                "set one, or leave google_login unset",
            )
        )
    if auth.jwt_secret and len(auth.jwt_secret.encode()) < 32:
        problems.append((("auth", "jwt_secret"), "must be at least 32 bytes"))
    if auth.dev_login and not is_loopback(config.server.host):
        problems.append(
            (("server", "host"), "dev login (auth.dev_login) is only allowed on a loopback address")
        )
    for origin in config.server.cors_origins:
        found = ORIGIN.fullmatch(origin)
        port = found and (found[1] or found[2])
        if not found or (port and not 1 <= int(port[1:]) <= 65535):
            problems.append(
                (
                    ("server", "cors_origins"),
                    f"{origin!r} is not an origin: write scheme://host[:port] as the browser "
                    "sends it, with no path and no wildcard",
                )
            )
    actors = config.supervisor.actors
    unknown = [name for name in actors if name not in ROLES]
    twice = sorted({name for name in actors if actors.count(name) > 1})
    if twice:
        problems.append((("supervisor", "actors"), f"{', '.join(twice)} named twice"))
    if unknown or not actors:
        problems.append(
            (
                ("supervisor", "actors"),
                f"{', '.join(map(repr, unknown)) or 'an empty list'}: name one or more of "
                f"{', '.join(ROLES)}",
            )
        )
    if "dispatch" in actors and "http" not in actors and not config.server.public_url:
        problems.append(
            (
                ("server", "public_url"),
                "this process dispatches without serving the API (supervisor.actors), so "
                "vendors' receipts would be sent to it: set the address of the web "
                "process or of the proxy in front of it",
            )
        )
    campaigns = config.campaigns
    if campaigns.clock_lease_seconds < 2 * campaigns.clock_interval_seconds:
        problems.append(
            (
                ("campaigns", "clock_lease_seconds"),
                f"must be at least twice campaigns.clock_interval_seconds "
                f"({campaigns.clock_interval_seconds} s), or the lease lapses between ticks",
            )
        )
    problems += bounce_checks(config.bounces, *config.bounce_sender)
    problems += flow_checks(config.flows)
    if config.redis.socket_timeout * 1000 <= config.streams.block_ms:
        problems.append(
            (
                ("redis", "socket_timeout"),
                f"must exceed streams.block_ms ({config.streams.block_ms} ms), "
                "or a blocking read looks like a dead server",
            )
        )
    return problems


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
