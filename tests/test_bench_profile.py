"""Where a profile's samples go (``bench.profile``): to the innermost frame of crmd's own
code on each stack, else to the package at the top of it."""

from __future__ import annotations

import msgspec

from bench.profile import Speedscope, markdown, top_costs

SITE = "/srv/.venv/lib/python3.11/site-packages"
FRAMES = [
    {"name": "run", "file": "/usr/lib/python3.11/asyncio/base_events.py"},  # 0
    {"name": "persist_chunk", "file": "/work/crmd/ingest/persist.py"},  # 1
    {"name": "insert_many", "file": f"{SITE}/pymongo/asynchronous/collection.py"},  # 2
    {"name": "send_chunk", "file": "/work/crmd/campaigns/dispatch.py"},  # 3
    {"name": "message", "file": "/work/crmd/campaigns/compose.py"},  # 4
    {"name": "handle", "file": f"{SITE}/aiohttp/web_protocol.py"},  # 5
    {"name": "plan", "file": f"{SITE}/crmd/campaigns/planning.py"},  # 6: crmd installed
    {"name": "_serve", "file": "/work/crmd/cli.py"},  # 7: only starts the loop
]


def profile(*stacks: list[int], weights: list[float] | None = None) -> Speedscope:
    body = {
        "shared": {"frames": FRAMES},
        "profiles": [{"samples": list(stacks), "weights": weights or [1.0] * len(stacks)}],
    }
    return msgspec.convert(body, Speedscope)


def test_a_sample_goes_to_crmds_innermost_frame_whoever_did_the_work():
    samples, seconds, top = top_costs(
        profile([0, 1, 2], [0, 1, 2], [0, 3, 4], [0, 3], [0, 5], [0], weights=[1, 1, 1, 2, 1, 2])
    )
    assert (samples, seconds) == (6, 8.0)
    assert [(c.where, c.share) for c in top] == [
        ("crmd.ingest.persist:persist_chunk", 0.25),  # pymongo's work, asked for by crmd
        ("crmd.campaigns.dispatch:send_chunk", 0.25),
        ("base_events (outside crmd)", 0.25),
        ("crmd.campaigns.compose:message", 0.125),
        ("aiohttp (outside crmd)", 0.125),
    ]


def test_only_the_top_five_are_kept_and_an_empty_profile_has_none():
    stacks = [[0, 1], [0, 1], [0, 3], [0, 3], [0, 4], [0, 5], [0, 2], [0]]
    samples, seconds, top = top_costs(profile(*stacks))
    assert (samples, seconds) == (8, 8.0) and len(top) == 5 and top[0].share == 0.25
    assert top_costs(profile()) == (0, 0.0, [])
    assert top_costs(profile([0, 6, 2]))[2][0].where == "crmd.campaigns.planning:plan"
    assert top_costs(profile([7, 0]))[2][0].where == "base_events (outside crmd)"


def test_the_readme_table_names_each_phase_its_samples_and_its_costs():
    samples, seconds, top = top_costs(profile([0, 1, 2], [0, 5], weights=[0.75, 0.75]))
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
