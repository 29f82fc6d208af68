"""Where a profile's samples go (``bench.profile``): to the innermost frame of crmd's own
code on each stack, else to the package at the top of it."""

from __future__ import annotations

from pathlib import Path

import msgspec

from bench import profile as profiles
from bench.profile import Speedscope, markdown, top_costs

CHECKOUT = "/home/ops/crmd"  # a checkout in a folder named like the package
SITE = f"{CHECKOUT}/.venv/lib/python3.11/site-packages"
ROOTS = {Path(f"{CHECKOUT}/crmd"): "crmd", Path(f"{SITE}/crmd"): "crmd"}
FRAMES = [
    {"name": "run", "file": "/usr/lib/python3.11/asyncio/base_events.py"},  # 0
    {"name": "persist_chunk", "file": f"{CHECKOUT}/crmd/ingest/persist.py"},  # 1
    {"name": "insert_many", "file": f"{SITE}/pymongo/asynchronous/collection.py"},  # 2
    {"name": "send_chunk", "file": f"{CHECKOUT}/crmd/campaigns/dispatch.py"},  # 3
    {"name": "message", "file": f"{CHECKOUT}/crmd/campaigns/compose.py"},  # 4
    {"name": "handle", "file": f"{SITE}/aiohttp/web_protocol.py"},  # 5
    {"name": "plan", "file": f"{SITE}/crmd/campaigns/planning.py"},  # 6: crmd installed
    {"name": "_serve", "file": f"{CHECKOUT}/crmd/cli.py"},  # 7: only starts the loop
    {"name": "select", "file": "/usr/lib/python3.11/selectors.py"},  # 8
]


def profile(*stacks: list[int], weights: list[float] | None = None) -> Speedscope:
    body = {
        "shared": {"frames": FRAMES},
        "profiles": [{"samples": list(stacks), "weights": weights or [1.0] * len(stacks)}],
    }
    return msgspec.convert(body, Speedscope)


def test_a_sample_goes_to_crmds_innermost_frame_whoever_did_the_work():
    samples, seconds, top = top_costs(
        profile([0, 1, 2], [0, 1, 2], [0, 3, 4], [0, 3], [0, 5], [0], weights=[1, 1, 1, 2, 1, 2]),
        roots=ROOTS,
    )
    assert (samples, seconds) == (6, 8.0)
    assert [(c.where, c.share) for c in top] == [
        ("crmd.ingest.persist:persist_chunk", 0.25),  # pymongo's work, asked for by crmd
        ("crmd.campaigns.dispatch:send_chunk", 0.25),
        ("asyncio (outside crmd)", 0.25),
        ("crmd.campaigns.compose:message", 0.125),
        ("aiohttp (outside crmd)", 0.125),
    ]


def test_only_the_top_five_are_kept_and_an_empty_profile_has_none():
    stacks = [[0, 1], [0, 1], [0, 3], [0, 3], [0, 4], [0, 5], [0, 2], [0]]
    samples, seconds, top = top_costs(profile(*stacks), roots=ROOTS)
    assert (samples, seconds) == (8, 8.0) and len(top) == 5 and top[0].share == 0.25
    assert top_costs(profile(), roots=ROOTS) == (0, 0.0, [])


def where(*stack: int) -> str:
    return top_costs(profile(list(stack)), roots=ROOTS)[2][0].where


def test_crmd_is_known_by_where_it_is_imported_from_not_by_a_folders_name():
    # The checkout's folder is named crmd: the libraries in its .venv are not crmd's.
    assert where(0, 5) == "aiohttp (outside crmd)"
    assert where(0, 6, 2) == "crmd.campaigns.planning:plan"  # crmd installed, not editable
    assert where(7, 0) == "asyncio (outside crmd)"  # crmd.cli only starts the loop
    assert where(7, 8) == "selectors (outside crmd)"  # a top-level standard module
    # The roots this Python imports crmd from: the repository's own package.
    roots = profiles.package_roots()
    assert roots[Path(profiles.__file__).resolve().parent.parent / "crmd"] == "crmd"


def test_the_readme_table_names_each_phase_its_samples_and_its_costs():
    samples, seconds, top = top_costs(profile([0, 1, 2], [0, 5], weights=[0.75, 0.75]), roots=ROOTS)
    found = {
        "ingestion": {
            "file": "profiles/ingestion.speedscope.json",
            "samples": samples,
            "seconds": seconds,
            "top": top,
        },
        "flows": {
            "file": "",
            "samples": 0,
            "seconds": 0,
            "top": [],
            "note": "py-spy is not installed",
        },
    }
    table = markdown(msgspec.to_builtins(found))
    assert table.splitlines()[2] == (
        "| ingestion | 1.5 | `crmd.ingest.persist:persist_chunk` 50%, "
        "`aiohttp (outside crmd)` 50% |"
    )
    assert table.splitlines()[3] == "| flows | 0.0 | py-spy is not installed |"
