"""crmd on a Redis Cluster of three masters (``redis+cluster://``): each stream and every
key kept about it share a hash slot, so the transactions and scripts crmd runs stay on
one node. The tests below are the suite's own, run again with the cluster underneath.
(The renaming of an older crmd's keys is not among them: that crmd could not run on a
cluster, so it left no keys there to rename.)"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from crmd.errors import Unavailable
from crmd.services.children import free_port
from crmd.services.connect import connect_redis
from crmd.services.embedded import Urls
from crmd.services.servers import redis_server_binary
from tests.campaigns.test_delivery_loop import (
    test_campaign_reaches_completed_with_exact_stats as test_campaign_on_the_cluster,
)
from tests.campaigns.test_rate_limit import (
    key,
)
from tests.campaigns.test_rate_limit import (
    test_processes_sharing_a_vendor_share_its_rate as test_rate_on_the_cluster,
)
from tests.ingest import test_upload_api
from tests.runtime.test_clock_lease import (
    test_one_clock_ticks_and_the_other_takes_over_when_it_dies as test_clock_on_the_cluster,
)
from tests.streams.test_dead_letters import (
    test_a_replayed_chunk_is_stored_by_the_ingest_actor as test_replay_on_the_cluster,
)

pytestmark = pytest.mark.slow  # several crmd processes

__all__ = [
    "key",
    "test_campaign_on_the_cluster",
    "test_clock_on_the_cluster",
    "test_rate_on_the_cluster",
    "test_replay_on_the_cluster",
    "test_upload_on_the_cluster",
]
SLOTS = 16384
# Its module runs the ingest actor for all its tests; here it is this test's own.
test_upload_on_the_cluster = pytest.mark.usefixtures("ingesting")(
    test_upload_api.test_original_formats_load_with_bad_rows_reported
)


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Three masters, the slots split between them; the URL of one of them."""
    home = tmp_path_factory.mktemp("cluster")
    ports = [cluster_port() for _ in range(3)]
    processes = [
        subprocess.Popen(
            [
                redis_server_binary(),
                "--port", str(port), "--bind", "127.0.0.1", "--dir", str(home),
                "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
                "--save", "", "--appendonly", "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        for port in ports
    ]  # fmt: skip
    try:
        nodes = [Redis(port=port) for port in ports]
        for node in nodes:
            wait_until(lambda node=node: node.ping())
        share = SLOTS // len(nodes)
        for i, node in enumerate(nodes):
            last = SLOTS if i == len(nodes) - 1 else (i + 1) * share
            node.execute_command("CLUSTER ADDSLOTS", *range(i * share, last))
            for port in ports:
                node.execute_command("CLUSTER MEET", "127.0.0.1", port)
        for node in nodes:
            wait_until(lambda node=node: state(node) == "ok")
        yield f"redis+cluster://127.0.0.1:{ports[0]}"
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)


def cluster_port() -> int:
    """A free port whose cluster bus port (10,000 above it) is free too."""
    while True:
        port = free_port()
        if port + 10_000 < 65_536 and port_is_free(port + 10_000):
            return port


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def state(node: Redis) -> str:
    return str(node.execute_command("CLUSTER INFO")["cluster_state"])


def wait_until(ready: object, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ready():  # type: ignore[operator]
                return
        except OSError:
            pass
        except Exception as exc:  # not up yet
            if "Connection" not in type(exc).__name__:
                raise
        assert time.monotonic() < deadline, "the Redis cluster did not form"
        time.sleep(0.1)


@pytest.fixture
def services(services: Urls, redis_cluster: str) -> Urls:
    """The suite's database, and the cluster in place of its Redis."""
    return Urls(mongodb=services.mongodb, redis=redis_cluster)


def test_the_cluster_is_three_masters(redis_cluster: str):
    port = int(redis_cluster.rsplit(":", 1)[1])
    nodes = Redis(port=port).execute_command("CLUSTER NODES").values()
    assert sum(1 for node in nodes if "master" in node["flags"] and node["slots"]) == 3


async def test_a_cluster_url_at_a_single_server_fails_at_once_saying_so(tmp_path: Path):
    """A Redis that is no cluster node: no minute of retries, one line that says why."""
    port = free_port()
    server = subprocess.Popen(
        [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    try:
        wait_until(lambda: Redis(port=port).ping())
        started = time.monotonic()
        with pytest.raises(Unavailable, match="the server is not a Redis Cluster node"):
            await connect_redis(f"redis+cluster://127.0.0.1:{port}", 5, timeout=60)
        assert time.monotonic() - started < 10
    finally:
        server.terminate()
        server.wait(10)
