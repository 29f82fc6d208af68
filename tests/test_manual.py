"""The README is a front page and docs/ is the manual: every promise they make is held
here. The pages link to each other and every link resolves; each page's examples are
run (the five-minute tour and the pages' shell examples against a real ``crmd serve``,
the typed client's example too) or checked by crmd itself (TOML by ``crmd
check-config``, rules by the preview route, command lines by crmd's argument parser,
the configuration reference against the settings' schema)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from crmd.cli import build_parser, main
from crmd.config import Config
from crmd.config.load import LEGACY_ENV
from crmd.services.children import free_port
from crmd.services.embedded import Urls
from tests.commands import Daemon, call

pytestmark = pytest.mark.slow  # runs crmd as a daemon

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
DOCS = REPO / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```$", re.DOTALL | re.MULTILINE)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def page(name: str) -> str:
    return (REPO / name).read_text()


def blocks(text: str, language: str) -> list[str]:
    return [code for lang, code in FENCE.findall(text) if lang == language]


def section(text: str, heading: str) -> str:
    """The text under a ``## heading``, up to the next heading of that level."""
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text())
    return {slug(m) for m in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}


# --- the front page and the links ------------------------------------------------------


def test_the_readme_is_a_front_page_that_links_every_page_of_the_manual():
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    linked = {target.split("#")[0] for target in LINK.findall(text)}
    pages = {f"docs/{path.name}" for path in DOCS.glob("*.md")}
    assert len(pages) >= 12
    assert pages <= linked, f"not linked from the README: {sorted(pages - linked)}"
    shown = [t for t in linked if t.endswith(".png")]
    assert shown and all((REPO / t).is_file() for t in shown)
    for command in ("make run", "make test", "make check"):
        assert command in text


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_every_link_between_pages_resolves(path: Path):
    """Files exist and anchors name a heading of the page they point into."""
    text = FENCE.sub("", path.read_text())
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        where = (path.parent / file).resolve() if file else path
        assert where.exists(), f"{path.name}: {target} does not exist"
        if anchor:
            assert anchor in anchors(where), f"{path.name}: no heading for {target}"


# --- examples checked by crmd itself -------------------------------------------------


TOML = [
    pytest.param(code, id=f"{path.name}-{n}")
    for path in PAGES
    for n, code in enumerate(blocks(path.read_text(), "toml"))
]


@pytest.mark.parametrize("example", TOML)
def test_every_toml_example_passes_check_config(
    example: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
):
    """Each TOML block, as a crmd.toml of its own, is accepted by ``crmd check-config``
    (settings and the plugins' own tables), its ``$env:`` secrets set."""
    for name in re.findall(r'"\$env:([A-Z_]+)"', example):
        value = "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB" if "WEBHOOK" in name else "x" * 40
        monkeypatch.setenv(name, value)
    path = tmp_path / "crmd.toml"
    path.write_text(example)
    status = main(["--config", str(path), "check-config"])
    assert status == 0, capsys.readouterr().err
    assert "config ok" in capsys.readouterr().out


def test_the_pages_have_toml_examples():
    assert len(TOML) >= 6


ERRORS = {
    "environment variable CRMD_SERVER__PORT": {"CRMD_SERVER__PORT": "0"},
    "plugins.dummy_vendor.failure_rate": {"CRMD_PLUGINS__DUMMY_VENDOR__FAILURE_RATE": "lots"},
}
ERRORS_ELSEWHERE = {
    # Needs a plugin package with a misspelt hook installed: tests/plugins/test_context.py
    # loads one and checks this message.
    "plugin 'acme' implements unknown hook(s)",
}


def test_the_config_errors_shown_are_what_crmd_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
):
    monkeypatch.chdir(tmp_path)  # no crmd.toml: the built-in defaults and the variable
    shown = [
        line
        for path in PAGES
        for code in blocks(path.read_text(), "text")
        for line in code.splitlines()
        if line.startswith("crmd: config error: ")
    ]
    assert len(shown) == len(ERRORS) + len(ERRORS_ELSEWHERE)
    for line in shown:
        problem = line.removeprefix("crmd: config error: ")
        if any(problem.startswith(prefix) for prefix in ERRORS_ELSEWHERE):
            continue
        env = next(env for prefix, env in ERRORS.items() if problem.startswith(prefix))
        with monkeypatch.context() as patched:
            for name, value in env.items():
                patched.setenv(name, value)
            assert main(["check-config"]) == 1
        assert capsys.readouterr().err.strip() == line


def test_the_configuration_reference_names_every_key():
    """Each section's row names every key the schema has, and no key it has not."""
    text = page("docs/configuration.md")
    rows = dict(re.findall(r"^\| `\[([a-z_.<>]+)\]` \| (.+) \|$", text, re.MULTILINE))
    sections = {
        f.name: f.type
        for f in msgspec.structs.fields(Config)
        if isinstance(f.type, type) and issubclass(f.type, msgspec.Struct)
    }
    assert set(sections) | {"plugins.<name>"} == set(rows)
    missing: list[str] = []
    for name, kind in sections.items():
        keys = {f.name for f in msgspec.structs.fields(kind)}
        named = set(re.findall(r"`([a-z_]+)`", rows[name]))
        missing.extend(f"{name}.{key}" for key in sorted(keys - named))
        described = set(re.findall(r"`([a-z_]+)` \(", rows[name]))
        assert described <= keys, f"[{name}] names no such key {sorted(described - keys)}"
    assert not missing, f"not in the configuration reference: {missing}"


def test_the_original_projects_variables_are_listed_as_crmd_reads_them():
    text = page("docs/configuration.md")
    listed = dict(re.findall(r"^\| `([A-Z_]+)` \| `([a-z_.]+)`", text, re.MULTILINE))
    assert listed == {var: ".".join(key) for var, key in LEGACY_ENV.items()}


def test_the_command_line_synopsis_is_crmds():
    """Every command crmd has is in the synopsis, and each line of it is one of them."""
    synopsis = blocks(section(page("docs/operating.md"), "The command line"), "text")[0]
    shown = {
        re.sub(r"^crmd (\[--config PATH\] )?", "", line).split()[0]
        for line in synopsis.splitlines()
    }
    parser = build_parser()
    choices = next(
        set(action.choices)
        for action in parser._actions
        if isinstance(action.choices, dict)  # the subcommands
    )
    assert shown == choices


def test_every_crmd_command_shown_in_a_shell_example_is_one_crmd_takes():
    lines = [
        line.split("#")[0].strip()
        for path in PAGES
        for code in blocks(path.read_text(), "sh")
        for line in code.splitlines()
        if re.match(r"^(sudo )?(\.venv/bin/)?crmd ", line.split("#")[0].strip())
    ]
    concrete = [line for line in lines if not re.search(r"[\[\]|]|\.\.\.|\bID\b", line)]
    assert len(concrete) >= 4
    parser = build_parser()
    for line in concrete:
        words = shlex.split(line)
        words = words[words.index(next(w for w in words if w.endswith("crmd"))) + 1 :]
        try:
            parser.parse_args(words)
        except SystemExit:
            pytest.fail(f"crmd does not take: {line}")


def rules() -> list[str]:
    """The segments page's rule examples: the first text block under its title."""
    code = blocks(page("docs/segments.md"), "text")[0]
    return [line for line in code.splitlines() if line.strip()]


async def test_every_rule_example_is_a_rule_crmd_takes(client: Any, auth: dict[str, str]):
    examples = rules()
    assert len(examples) >= 4
    for rule in examples:
        response = await client.post("/api/v1/segments/preview", json={"rule": rule}, headers=auth)
        assert response.status in (200, 202), (rule, await response.text())
    response = await client.post("/api/v1/segments/preview", json={"rule": "spend >"}, headers=auth)
    assert response.status == 422


async def test_the_api_reference_page_points_at_the_manual(client: Any):
    response = await client.get("/reference")
    assert response.status == 200
    text = await response.text()
    assert "docs/api.md" in text and "manual" in text
    assert (DOCS / "api.md").is_file()


# --- the tour and the pages' shell examples, run against crmd serve ------------------


@pytest.fixture(scope="module")
def daemon(services: Urls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    port = free_port()
    daemon = Daemon(
        services.mongodb,
        services.redis,
        port,
        f"manual_{uuid.uuid4().hex[:8]}",
        f"manual{uuid.uuid4().hex[:6]}",
        tmp_path_factory.mktemp("manual") / "crmd.log",
        CRMD_SERVER__PUBLIC_URL=f"http://127.0.0.1:{port}",
    )
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


def run_shell(script: str, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"{script}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    return done.stdout


def eventually(check: Any, seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


def test_the_tour_and_the_pages_shell_examples_work_as_pasted(daemon: Daemon, tmp_path: Path):
    """The README's five-minute tour, from a directory that is not crmd's, in a shell
    whose home holds crmd where the tour says (``~/crmd``), then every shell example of
    the manual that talks to crmd, in the same shell's environment."""
    crmd_command = REPO / ".venv" / "bin" / "crmd"
    assert crmd_command.exists(), "the tour runs .venv/bin/crmd: make .venv/.test-deps"
    home = tmp_path / "home"
    home.mkdir()
    (home / "crmd").symlink_to(REPO)
    work = tmp_path / "elsewhere"
    work.mkdir()
    # The second terminal knows where the servers and the secret are (make run's crmd
    # keeps them in ~/crmd/.crmd; this one is on the suite's servers), and nothing else.
    servers = ("MONGODB__URL", "MONGODB__DATABASE", "REDIS__URL", "REDIS__STREAM_PREFIX")
    env = {name: value for name, value in os.environ.items() if not name.startswith("CRMD_")}
    env |= {f"CRMD_{name}": daemon.env[f"CRMD_{name}"] for name in servers}
    env |= {"CRMD_AUTH__JWT_SECRET": daemon.env["CRMD_AUTH__JWT_SECRET"], "HOME": str(home)}

    tour = section(README.read_text(), "A five-minute tour")
    scripts = blocks(tour, "sh")
    assert "make run" in scripts[0]  # the first terminal's; the rest is the second's
    script = "\n".join(scripts[1:])
    assert "export CRMD_URL=http://127.0.0.1:8080\n" in script
    script = script.replace("http://127.0.0.1:8080", daemon.url)  # where this crmd listens
    examples = [
        code
        for path in sorted(DOCS.glob("*.md"))
        for code in blocks(path.read_text(), "sh")
        if "$CRMD_URL" in code
    ]
    assert len(examples) >= 3
    (work / "orders.csv").write_text(
        "order_external_id,customerEmail,amount,orderDate\n"
        "o-1,asha@example.com,2500,2026-11-02\no-2,meera@example.com,900,2026-11-20\n"
    )
    (work / "unsubscribed.csv").write_text("email,reason\nravi@example.com,asked by phone\n")
    said = run_shell(script + "\n" + "\n".join(examples), work, env)
    assert '"email":"you@example.com"' in said.replace(" ", "")

    token = daemon.token("you@example.com")  # the same user the tour's token names
    assert call(f"{daemon.url}/api/v1/customers", token=token)[1]["total"] == 3
    orders = eventually(lambda: call(f"{daemon.url}/api/v1/orders", token=token)[1]["total"])
    assert orders == 2
    _, campaigns = call(f"{daemon.url}/api/v1/campaigns", token=token)
    assert {c["name"] for c in campaigns["items"]} == {"Win back"}

    def audience() -> list[Any]:
        items = call(f"{daemon.url}/api/v1/campaigns", token=token)[1]["items"]
        return [c["audienceSize"] for c in items if c["audienceSize"] is not None]

    assert eventually(lambda: len(audience()) == len(campaigns["items"]))
    assert set(audience()) == {2}
    status, found = call(f"{daemon.url}/api/v1/suppressions?email=ravi@example.com", token=token)
    assert status == 200 and found["items"][0]["reason"] == "asked by phone"


def test_the_typed_clients_example_runs(daemon: Daemon, tmp_path: Path):
    """The API page's Python example, with this crmd's address and a token put in."""
    code = blocks(page("docs/api.md"), "python")[0]
    assert 'Client("http://127.0.0.1:8080", token="...")' in code
    token = daemon.token("client-example@example.com")
    code = code.replace('"http://127.0.0.1:8080"', json.dumps(daemon.url))
    code = code.replace('token="..."', f"token={json.dumps(token)}")
    (tmp_path / "customers.csv").write_text(
        "name,email,spend,visits\nA,a@example.com,5000,4\nB,b@example.com,10,1\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**os.environ},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "done 2 rows; 0 rejected", done.stdout
    assert len(lines) == 2 and "pending=" in lines[1], done.stdout  # the campaign's stats


def test_the_benchmarks_page_is_what_make_bench_prints():
    """The figures' table's columns are the ones ``--markdown`` prints, the phases it
    names are the benchmark's, the sizes it gives for a full and a default run are the
    ones they take, and --quick is as much smaller as the page says."""
    from bench.run import PHASES, Sizes, markdown

    text = page("docs/benchmarks.md")
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("| figure |"))
    machine = {"cores": 2, "cpu": "x", "memory_gib": 1, "python": "3", "redis": "6"}
    machine |= {"database": "8", "crmd": "0"}
    result = {"figures": [], "machine": machine, "servers": "embedded", "when": "2026"}
    result |= {"seconds": 60, "mode": "budget", "sizes": msgspec.to_builtins(Sizes())}
    assert lines[first : first + 2] == markdown(result).splitlines()[:2]
    for phases in re.findall(r'--phases ([a-z,]+)"', text):
        assert set(phases.split(",")) <= set(PHASES), phases
    full, budget = Sizes(), Sizes().budget()
    sizes = {
        "rows imported (upload, ingestion)": ["upload_rows"],
        "customers previewed and sent to": ["audience"],
        "receipts in posts of 1,000": ["batched_receipts"],
        "receipts one per post": ["single_receipts"],
        "clicks": ["clicks"],
        "orders attributed": ["attribution"],
        "customers through a flow / waiting": ["flows", "flow_waiting"],
        "rows and messages, scaling": ["scaling_rows"],
        "rows copied raw for the ingestion's limit": ["raw_ingest"],
    }
    for label, names in sizes.items():
        row = next(line for line in lines if line.startswith(f"| {label} |"))
        said = [cell.strip() for cell in row.strip("|").split("|")[1:]]
        assert said == [
            " / ".join(f"{getattr(of, name):,}" for name in names) for of in (full, budget)
        ], row
    row = next(line for line in lines if line.startswith("| rows imported under load |"))
    assert f"| {full.load.rows:,} | {budget.load.rows:,} |" in row
    assert Sizes().audience // Sizes().quick().audience == 100
    assert "`BENCH_ARGS=--quick` a hundredth of" in text
