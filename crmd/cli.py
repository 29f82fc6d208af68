"""The ``crmd`` command: serve (the default), check-config, plugins, version, and the
operator's tools (token, upload, dead-letters, keys, dummy-vendor)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

from crmd import __version__
from crmd.config import Config, ConfigError, LoadedConfig, load_config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crmd", description="crmd customer-engagement daemon")
    parser.add_argument(
        "--config", type=Path, help="config file (default: ./crmd.toml, then /etc/crmd/crmd.toml)"
    )
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="run the daemon (the default)")
    serve.add_argument("--config", type=Path, dest="serve_config", help=argparse.SUPPRESS)
    serve.add_argument("--host", help="listen address (overrides [server] host)")
    serve.add_argument("--port", type=int, help="listen port (overrides [server] port)")
    serve.add_argument("--data-dir", help="embedded data dir (overrides [embedded] data_dir)")
    serve.add_argument(
        "--actors",
        help="what this process runs, comma-separated: http,ingest,dispatch,receipts,clock "
        "(overrides [supervisor] actors; default all)",
    )
    commands.add_parser("check-config", help="validate the configuration and exit")
    commands.add_parser("plugins", help="list loaded plugins and the hooks each implements")
    commands.add_parser("version", help="print crmd's version")
    token = commands.add_parser("token", help="print an API token for a user (made if new)")
    token.add_argument("--email", required=True, help="the user's email address")
    vendor = commands.add_parser("dummy-vendor", help="run the dummy vendor as an HTTP server")
    vendor.add_argument("--host", default="127.0.0.1")
    vendor.add_argument("--port", type=int, default=9100)
    upload = commands.add_parser("upload", help="send a CSV file to a running crmd")
    upload.add_argument("kind", choices=["customers", "orders"])
    upload.add_argument("file", type=Path)
    upload.add_argument(
        "--url", help="crmd's address (default: $CRMD_URL, else from the config's [server])"
    )
    upload.add_argument("--token", help="API token (default: $CRMD_TOKEN)")
    upload.add_argument("--mapping", help='JSON, e.g. \'{"spend": "Total Spent"}\'')
    dead = commands.add_parser(
        "dead-letters", help="list, show, replay or drop the entries the stream actors gave up on"
    ).add_subparsers(dest="action", required=True)
    for action, about in (
        ("list", "the newest dead letters, one a line"),
        ("show", "everything about the given dead letters"),
        ("replay", "put dead letters back onto their stream, to be consumed again"),
        ("drop", "delete dead letters"),
    ):
        each = dead.add_parser(action, help=about)
        if action != "list":  # one word each, so that ids may follow the options
            each.add_argument("ids", nargs="*", help="dead-letter ids, as `list` prints them")
        each.add_argument("--stream", choices=["ingest", "dispatch", "receipts", "tracking"])
        if action != "show":
            each.add_argument("--all", action="store_true", help="every one (of --stream)")
        if action == "list":
            each.add_argument("--limit", type=int, default=50, help="at most N (default 50)")
            each.add_argument("--oldest-first", action="store_true")
    keys = commands.add_parser(
        "keys", help="make, list or revoke a workspace's API keys"
    ).add_subparsers(dest="action", required=True)
    for action, about in (
        ("create", "make a key and print it, this once"),
        ("list", "the workspace's keys, newest first, one a line"),
        ("revoke", "stop a key working, from its next request on"),
    ):
        each = keys.add_parser(action, help=about)
        each.add_argument(
            "--workspace",
            required=True,
            help="the workspace's id, or its owner's e-mail address (their own workspace)",
        )
        if action == "create":
            each.add_argument("--name", required=True, help="what the key is for")
            each.add_argument(
                "--scope",
                action="append",
                required=True,
                choices=["read", "write", "send", "import"],
                dest="scopes",
                help="what it may do (repeat the option for more than one)",
            )
            each.add_argument(
                "--expires",
                default="",
                help="90d, 12h, 2w, a day (2027-06-30) or a moment; default: never",
            )
        if action == "revoke":
            each.add_argument("id", help="the key's id, as `list` prints it")
    return parser


def _overrides(args: argparse.Namespace) -> dict[tuple[str, ...], Any]:
    overrides: dict[tuple[str, ...], Any] = {}
    if getattr(args, "host", None):
        overrides[("server", "host")] = args.host
    if getattr(args, "port", None) is not None:
        overrides[("server", "port")] = args.port
    if getattr(args, "actors", None) is not None:
        names = [name.strip() for name in args.actors.split(",")]
        overrides[("supervisor", "actors")] = [name for name in names if name]
    if getattr(args, "data_dir", None):
        overrides[("embedded", "data_dir")] = str(Path(args.data_dir).resolve())
    return overrides


def _load(args: argparse.Namespace) -> LoadedConfig:
    path = getattr(args, "serve_config", None) or args.config
    return load_config(path, os.environ, _overrides(args))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = args.command or "serve"
    if command == "version":
        print(f"crmd {__version__}")
        return 0
    try:
        loaded = _load(args)
    except ConfigError as exc:
        print(f"crmd: config error: {exc}", file=sys.stderr)
        return 1
    if command == "check-config":
        return _check_config(loaded)
    if command == "plugins":
        return _print_plugins(loaded)
    if command == "token":
        return _print_token(loaded, args.email)
    if command == "dead-letters":
        return _dead_letters(loaded, args)
    if command == "keys":
        return _keys(loaded, args)
    if command == "upload":
        return _upload(loaded, args)
    if command == "dummy-vendor":
        return _dummy_vendor(loaded, args.host, args.port)
    return _serve(loaded)


def _check_config(loaded: LoadedConfig) -> int:
    """The settings, then the plugins with theirs: one line either way."""
    from crmd.checking import check
    from crmd.plugins.manager import PluginError

    try:
        asyncio.run(check(loaded.config))
    except PluginError as exc:
        print(f"crmd: config error: {exc}", file=sys.stderr)
        return 1
    print(f"crmd: config ok ({loaded.path or 'built-in defaults'})")
    return 0


def _print_plugins(loaded: LoadedConfig) -> int:
    from crmd.plugins.manager import PluginError, describe, get_plugin_manager

    try:
        rows = describe(get_plugin_manager(loaded.config.plugins))
    except PluginError as exc:
        print(f"crmd: {exc}", file=sys.stderr)
        return 1
    if not rows:
        print("no plugins loaded")
    for name, hooks in rows:
        print(f"{name}: {', '.join(hooks) if hooks else '(no hooks)'}")
    return 0


def _print_token(loaded: LoadedConfig, email: str) -> int:
    from crmd.auth.command import TokenCommandError, token_for_email
    from crmd.auth.secret import SecretError
    from crmd.errors import Unavailable
    from crmd.services.children import EmbeddedError
    from crmd.telemetry.logs import configure_logging

    configure_logging(loaded.config.logging, stream=sys.stderr)  # stdout is the token
    made_secret = new_secret_made(loaded.config)
    try:
        print(asyncio.run(token_for_email(loaded.config, email)))
    except (TokenCommandError, SecretError, EmbeddedError, Unavailable) as exc:
        print(f"crmd: cannot make a token: {exc}", file=sys.stderr)
        return 1
    if made_secret is not None:
        print(
            f"crmd: note: {made_secret} held no token secret, so a new one was made there; "
            "a crmd serving from another data dir refuses this token (give `crmd token` "
            "the running crmd's config: crmd --config /path/to/crmd.toml token ...)",
            file=sys.stderr,
        )
    return 0


def new_secret_made(config: Config) -> Path | None:
    """The data dir whose token secret ``crmd token`` is about to make (None when one is
    configured, or already there): a token signed with it is only good for a crmd that
    keeps its data there, which from another directory is seldom the one running."""
    from crmd.auth.secret import SECRET_FILE

    data_dir = Path(config.embedded.data_dir).resolve()
    if config.auth.jwt_secret or (data_dir / SECRET_FILE).exists():
        return None
    return data_dir


def _dead_letters(loaded: LoadedConfig, args: argparse.Namespace) -> int:
    from crmd.app import dead_letter_describers
    from crmd.errors import Unavailable
    from crmd.services.children import EmbeddedError
    from crmd.streams.command import Request, UsageError, run
    from crmd.streams.dead import DeadLetterError
    from crmd.telemetry.logs import configure_logging

    configure_logging(loaded.config.logging, stream=sys.stderr)  # stdout is the answer
    request = Request(
        args.action,
        getattr(args, "ids", []),
        args.stream,
        getattr(args, "all", False),
        getattr(args, "limit", 50),
        getattr(args, "oldest_first", False),
    )
    try:
        return asyncio.run(run(loaded.config, request, dead_letter_describers()))
    except UsageError as exc:
        print(f"crmd: dead-letters: {exc}", file=sys.stderr)
        return 2
    except (DeadLetterError, EmbeddedError, Unavailable) as exc:
        print(f"crmd: dead-letters: {exc}", file=sys.stderr)
        return 1


def _keys(loaded: LoadedConfig, args: argparse.Namespace) -> int:
    from crmd.errors import Unavailable
    from crmd.services.children import EmbeddedError
    from crmd.telemetry.logs import configure_logging
    from crmd.workspaces.key_command import KeyCommandError, KeyRequest, run

    configure_logging(loaded.config.logging, stream=sys.stderr)  # stdout is the answer
    request = KeyRequest(
        args.action,
        args.workspace,
        getattr(args, "name", ""),
        getattr(args, "scopes", []),
        getattr(args, "expires", ""),
        getattr(args, "id", ""),
    )
    try:
        return asyncio.run(run(loaded.config, request, sys.stdout, sys.stderr))
    except (KeyCommandError, EmbeddedError, Unavailable) as exc:
        print(f"crmd: keys {args.action}: {exc}", file=sys.stderr)
        return 1


def _upload(loaded: LoadedConfig, args: argparse.Namespace) -> int:
    from crmd.client.upload import upload_file
    from crmd.config import client_token, client_url

    token = args.token or client_token(os.environ)
    if not token:
        print(
            "crmd: upload needs a token: --token, or CRMD_TOKEN (see `crmd token`)", file=sys.stderr
        )
        return 1
    if not args.file.is_file():
        print(f"crmd: no such file: {args.file}", file=sys.stderr)
        return 1
    server = loaded.config.server
    url = args.url or client_url(os.environ) or f"http://{server.host}:{server.port}"
    try:
        return asyncio.run(upload_file(url, token, args.kind, args.file, args.mapping, sys.stderr))
    except (OSError, aiohttp.ClientError) as exc:
        print(f"crmd: cannot reach crmd at {url}: {exc}", file=sys.stderr)
        return 1


def _dummy_vendor(loaded: LoadedConfig, host: str, port: int) -> int:
    """The dummy vendor's HTTP mode: a vendor server of its own, to watch real traffic.
    Its signing secret is the one the plugin inside crmd is given, from the same config."""
    from crmd.auth.secret import SecretError, resolve_jwt_secret
    from crmd.plugins.context import PluginContext, PluginSettingsError, plugin_secret
    from crmd.telemetry.logs import configure_logging

    try:
        from crmd_dummy_vendor import NAME, DummyVendor, Settings, gateway_app
    except ImportError:
        print("crmd: the dummy vendor plugin is not installed", file=sys.stderr)
        return 1
    configure_logging(loaded.config.logging)
    config = loaded.config
    try:
        secret = plugin_secret(resolve_jwt_secret(config), NAME)
    except SecretError as exc:
        print(f"crmd: {exc}", file=sys.stderr)
        return 1

    async def run() -> int:
        from aiohttp import web

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        async with aiohttp.ClientSession() as http:
            context = PluginContext(
                NAME, config.plugins.get(NAME, {}), http, config.server.base_url, secret
            )
            try:
                settings = context.settings(Settings)
            except PluginSettingsError as exc:
                print(f"crmd: config error: {exc}", file=sys.stderr)
                return 1
            runner = web.AppRunner(gateway_app(DummyVendor(settings, http, secret, "")))
            await runner.setup()
            await web.TCPSite(runner, host, port).start()
            print(f"dummy vendor listening on http://{host}:{port}/send", flush=True)
            await stop.wait()
            await runner.cleanup()
        return 0

    return asyncio.run(run())


def _serve(loaded: LoadedConfig) -> int:
    from crmd.app import serve
    from crmd.runtime.daemon import StartupError
    from crmd.telemetry.logs import configure_logging

    configure_logging(loaded.config.logging)
    try:
        return asyncio.run(serve(loaded.config, os.environ))
    except StartupError as exc:
        print(f"crmd: cannot start: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
