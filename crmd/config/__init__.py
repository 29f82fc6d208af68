"""crmd's configuration: the settings' schema, their loading, and their redaction.

``load_config`` reads the file and the environment into one tree of Structs
(``crmd.config.schema``); ``crmd.config.load`` is the only module that reads the
environment.
"""

from crmd.config.bounces import BouncesConfig
from crmd.config.keys import KeysConfig
from crmd.config.load import client_token, client_url, load_config, parse_duration
from crmd.config.redact import redact_url, redact_value
from crmd.config.schema import (
    EMBEDDED,
    ROLES,
    AiConfig,
    AuthConfig,
    CampaignsConfig,
    Config,
    ConfigError,
    ConsoleConfig,
    EmbeddedConfig,
    EventsConfig,
    IngestConfig,
    LoadedConfig,
    LoggingConfig,
    MongoConfig,
    RedisConfig,
    ServerConfig,
    StreamsConfig,
    SupervisorConfig,
    is_loopback,
)
from crmd.config.webhooks import WebhooksConfig

__all__ = [
    "EMBEDDED",
    "ROLES",
    "AiConfig",
    "AuthConfig",
    "BouncesConfig",
    "CampaignsConfig",
    "Config",
    "ConfigError",
    "ConsoleConfig",
    "EmbeddedConfig",
    "EventsConfig",
    "IngestConfig",
    "KeysConfig",
    "LoadedConfig",
    "LoggingConfig",
    "MongoConfig",
    "RedisConfig",
    "ServerConfig",
    "StreamsConfig",
    "SupervisorConfig",
    "WebhooksConfig",
    "client_token",
    "client_url",
    "is_loopback",
    "load_config",
    "parse_duration",
    "redact_url",
    "redact_value",
]
