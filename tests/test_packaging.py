"""setup.cfg lists its packages by hand (the plugins live outside crmd/): keep it true."""

from __future__ import annotations

import configparser
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_every_crmd_package_is_listed():
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    on_disk = {
        ".".join(path.parent.relative_to(REPO).parts)
        for path in (REPO / "crmd").rglob("__init__.py")
    }
    assert on_disk <= listed, f"missing from setup.cfg: {sorted(on_disk - listed)}"
    for package in listed - on_disk:
        mapped = config["options"]["package_dir"]
        assert package in mapped, f"{package} is listed but neither in crmd/ nor mapped"
