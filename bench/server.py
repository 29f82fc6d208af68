"""The benchmark's parts: the database servers, one ``crmd serve`` process pointed at
them, a sampler of its resident memory, and an HTTP client signed in to it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

from crmd.services.children import ServerProcess, free_port
from crmd.services.embedded import Urls
from crmd.services.servers import redis_process, secantus_process, start_and_wait

RECEIPT_SECRET = "bench-" + "r" * 40


class Servers(msgspec.Struct):
    urls: Urls
    kind: str
    """``embedded``, or ``from the environment``."""
    database_pid: int | None = None
    """The embedded database server's process (None: a server from the environment),
    whose CPU time the load figure reports."""


@contextmanager
def database_servers(work: Path) -> Iterator[Servers]:
    """The MongoDB and Redis URLs from the environment (``CRMD_MONGODB__URL``,
    ``CRMD_REDIS__URL``), else the embedded default's servers, with data on disk under
    ``work`` as ``make run`` keeps it."""
    mongo_url = os.environ.get("CRMD_MONGODB__URL", "embedded")
    redis_url = os.environ.get("CRMD_REDIS__URL", "embedded")
    started: list[ServerProcess] = []
    database_pid = None
    try:
        if redis_url == "embedded":
            server = redis_process(work / "redis", work)
            asyncio.run(start_and_wait(server, 30))
            started.append(server)
            redis_url = server.url
        if mongo_url == "embedded":
            server = secantus_process(work / "secantusdb", work)
            asyncio.run(start_and_wait(server, 60))
            started.append(server)
            mongo_url = server.url
            database_pid = server.process.pid if server.process else None
        kind = "embedded" if started else "from the environment"
        yield Servers(Urls(mongodb=mongo_url, redis=redis_url), kind, database_pid)
    finally:
        for server in started:
            server.stop()


def crmd_config(urls: Urls, port: int, database: str, max_rows: int) -> str:
    """The TOML the measured crmd runs with: the shipped defaults, but these servers, a
    database of the run's own, imports up to ``max_rows`` and a no-op vendor."""
    token = uuid.uuid4().hex
    return f"""
[server]
host = "127.0.0.1"
port = {port}
[mongodb]
url = "{urls.mongodb}"
database = "{database}"
[redis]
url = "{urls.redis}"
stream_prefix = "{database}"
[auth]
google_login = false
dev_login = true
jwt_secret = "bench-{token}"
[logging]
level = "warning"
format = "json"
[ingest]
max_rows = {max_rows}
max_file_bytes = {1024**3}
[flows]
time_scale = 3600
[plugins.dummy_vendor]
receipts = false
failure_rate = 0.0
rate = 1000000
secret = "{RECEIPT_SECRET}"
"""


class MemorySampler:
    """Polls a process's resident set size; ``phase(name)`` records the peak within."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.current = 0
        self.peaks: dict[str, int] = {}
        self.baselines: dict[str, int] = {}
        self._open: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        """Resident bytes now (0 once the process is gone)."""
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return 0
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.current = self.rss()
            for name in self._open:
                self.peaks[name] = max(self.peaks.get(name, 0), self.current)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self.baselines[name] = self.rss()
        self.peaks[name] = self.baselines[name]
        self._open.add(name)
        try:
            yield
        finally:
            self._open.discard(name)
            self.peaks[name] = max(self.peaks[name], self.rss())


class Spent(msgspec.Struct):
    """What crmd spent on a stretch of work: the documents it wrote to MongoDB (by its
    own ``crmd_mongo_documents_total``) and its process's CPU seconds."""

    documents: float = 0.0
    cpu: float = 0.0

    def per(self, items: int) -> dict[str, Any]:
        """The figure's detail: writes and CPU microseconds per item."""
        return {
            "writes_per_item": round(self.documents / items, 3),
            "cpu_us_per_item": round(self.cpu * 1e6 / items, 1),
        }


async def spent_so_far(http: aiohttp.ClientSession, base: str, pid: int) -> Spent:
    async with http.get(f"{base}/metrics") as response:
        text = await response.text()
    documents = sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("crmd_mongo_documents_total{")
    )
    return Spent(documents, cpu_seconds(pid))


def cpu_seconds(pid: int) -> float:
    """The process's user and system CPU time so far (its threads' included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return ticks / os.sysconf("SC_CLK_TCK")


@asynccontextmanager
async def spending(http: aiohttp.ClientSession, base: str, pid: int) -> AsyncIterator[Spent]:
    """The Spent of the block, filled in when it ends."""
    before = await spent_so_far(http, base, pid)
    spent = Spent()
    yield spent
    after = await spent_so_far(http, base, pid)
    spent.documents = after.documents - before.documents
    spent.cpu = after.cpu - before.cpu


@contextmanager
def crmd_process(
    work: Path, urls: Urls, database: str, max_rows: int
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``crmd serve`` in a process of its own (so its memory is its own); yields the
    process and its base URL once it is ready."""
    port = free_port()
    config = work / "crmd.toml"
    config.write_text(crmd_config(urls, port, database, max_rows))
    log = (work / "crmd.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "crmd", "serve", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "CRMD_LOGGING__FORMAT": "json"},
    )
    try:
        base = f"http://127.0.0.1:{port}"
        asyncio.run(wait_ready(process, base, work / "crmd.log"))
        yield process, base
    finally:
        stop(process)
        log.close()


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, and SIGKILL after 30 s."""
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def wait_ready(process: subprocess.Popen[bytes], base: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    said = f"crmd did not start; its log is {log}"
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(said)
            try:
                async with http.get(f"{base}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(said)


class Api:
    """An HTTP client for one signed-in user of the measured crmd."""

    def __init__(self, http: aiohttp.ClientSession, base: str, token: str) -> None:
        self.http = http
        self.base = base
        self.headers = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        async with self.http.request(
            method, self.base + path, headers=headers, **kwargs
        ) as response:
            body = await response.read()
            if response.status != expect:
                raise RuntimeError(f"{method} {path}: {response.status} {body[:500]!r}")
            return await response.json() if body else None


async def upload_csv(api: Api, path: Path, kind: str = "customers") -> tuple[str, float]:
    """POST the file as a raw text/csv body; (upload id, seconds until the 202)."""
    started = time.perf_counter()
    with path.open("rb") as body:
        answer = await api.call(
            "POST",
            f"/api/v1/upload/{kind}?filename={path.name}",
            expect=202,
            data=body,
            headers={"Content-Type": "text/csv"},
        )
    return answer["uploadId"], time.perf_counter() - started


@asynccontextmanager
async def signed_in(base: str, email: str) -> AsyncIterator[Api]:
    connector = aiohttp.TCPConnector(limit=64)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=600)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        async with http.post(f"{base}/api/v1/user/dev-login", json={"email": email}) as r:
            if r.status != 200:
                raise RuntimeError(f"dev login: {r.status} {await r.text()}")
            token = (await r.json())["token"]
        yield Api(http, base, token)
