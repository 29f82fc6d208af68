"""setup.cfg lists its packages by hand (the plugins live outside crmd/): keep it true,
and the wheel built from it whole and quiet."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _config() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    return config


def _data_directories() -> set[str]:
    """Directories of files inside crmd/ that are no Python package (the console's
    templates and static files): setuptools installs them as data packages."""
    return {
        ".".join(path.relative_to(REPO).parts)
        for path in (REPO / "crmd").rglob("*")
        if path.is_dir()
        and path.name != "__pycache__"
        and not (path / "__init__.py").exists()
        and any(child.is_file() for child in path.iterdir())
    }


def test_every_crmd_package_is_listed():
    config = _config()
    listed = set(config["options"]["packages"].split())
    on_disk = {
        ".".join(path.parent.relative_to(REPO).parts)
        for path in (REPO / "crmd").rglob("__init__.py")
    } | _data_directories()
    assert on_disk <= listed, f"missing from setup.cfg: {sorted(on_disk - listed)}"
    for package in listed - on_disk:
        mapped = config["options"]["package_dir"]
        assert package in mapped, f"{package} is listed but neither in crmd/ nor mapped"


def test_the_wheel_builds_without_warnings_and_holds_the_consoles_files(tmp_path: Path):
    """`make run` installs crmd from setup.cfg: the build says nothing about data
    directories (setuptools warned about every console file once), and the wheel
    carries every template and static file the console serves."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "crmd", source / "crmd", ignore=ignore)
    for where in _mapped_packages().values():
        shutil.copytree(REPO / where, source / where, ignore=ignore)
    build = subprocess.run(
        [
            sys.executable,
            "-W",
            "default",
            "-c",
            "import sys; from setuptools import build_meta; "
            "print(build_meta.build_wheel(sys.argv[1]))",
            str(tmp_path / "dist"),
        ],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    said = build.stdout + build.stderr
    assert "Installing 'crmd" not in said and "as data is deprecated" not in said, said[-3000:]
    assert "SetuptoolsDeprecationWarning" not in said, said[-3000:]
    wheel = tmp_path / "dist" / build.stdout.strip().splitlines()[-1]
    names = set(zipfile.ZipFile(wheel).namelist())
    console = REPO / "crmd" / "console"
    expected = {
        path.relative_to(REPO).as_posix()
        for folder in ("templates", "static")
        for path in (console / folder).iterdir()
        if path.is_file()
    }
    assert expected and any(name.endswith(".html") for name in expected)
    assert expected <= names, f"missing from the wheel: {sorted(expected - names)}"
    assert "crmd/py.typed" in names


def _mapped_packages() -> dict[str, str]:
    mapped = _config()["options"]["package_dir"]
    pairs = (line.split("=") for line in mapped.strip().splitlines())
    return {name.strip(): where.strip() for name, where in pairs}
