"""A sampling profile of the crmd process, one a phase of ``make bench``: py-spy attached
from outside (it pauses nothing: ``--nonblocking``), a speedscope file per phase beside
``results.json`` (open it at https://www.speedscope.app), and each phase's top costs by
share of crmd's CPU.

A sample's cost goes to the innermost frame of crmd's own code on its stack: the function
that asked for the work, whoever did it (pymongo encoding its documents, msgspec, the
event loop's sockets). A sample with no crmd frame at all is the HTTP server, the event
loop or a driver at work for nobody crmd named, and goes to its package (``aiohttp``,
``asyncio``...). py-spy counts only samples of threads on the CPU (not idle), so the shares
are shares of crmd's CPU time in the phase."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

RATE = 200
"""Samples a second."""
TOP = 5
CRMD_PACKAGES = ("crmd", "crmd_dummy_vendor", "crmd_basic_ai", "crmd_smtp", "crmd_webhook")
ENTRY = ("crmd.cli", "crmd.__main__")
"""Modules that only start the event loop: a sample whose innermost crmd frame is one of
them is the loop's own work (or a library's), named by the leaf's package."""


class Frame(msgspec.Struct):
    name: str
    file: str = ""
    line: int | None = None


class Sampled(msgspec.Struct):
    samples: list[list[int]]
    weights: list[float] = []


class Shared(msgspec.Struct):
    frames: list[Frame]


class Speedscope(msgspec.Struct):
    shared: Shared
    profiles: list[Sampled]


class Cost(msgspec.Struct):
    where: str
    """``module:function`` of crmd's innermost frame, or ``package (outside crmd)``."""
    share: float
    """Of the phase's samples (crmd's CPU in the phase)."""


class PhaseProfile(msgspec.Struct):
    file: str
    """The speedscope file, relative to results.json's folder."""
    samples: int
    seconds: float
    """crmd's CPU seconds the samples stand for."""
    top: list[Cost]
    note: str = ""


def py_spy() -> str | None:
    """The py-spy beside this Python (the bench's extras install it), else on the PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


Roots = dict[Path, str]
"""The folders crmd's packages are imported from, and each one's name."""


def package_roots() -> Roots:
    """Where this Python imports crmd's packages from: the crmd process, on the same
    machine and the same environment, runs the same files."""
    roots: Roots = {}
    for name in CRMD_PACKAGES:
        spec = importlib.util.find_spec(name)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            roots[Path(folder)] = roots[Path(folder).resolve()] = name
    return roots


def module_of(file: str, roots: Roots) -> str | None:
    """``crmd.campaigns.dispatch`` for a file of crmd's own packages, else None (a
    checkout in a folder named ``crmd`` is not a package of that name)."""
    path = Path(file).with_suffix("")
    for root, name in roots.items():
        if path.is_relative_to(root):
            parts = [p for p in path.relative_to(root).parts if p != "__init__"]
            module = ".".join((name, *parts))
            return None if module in ENTRY else module
    return None


def package_of(file: str) -> str:
    """The top package of a library's or the standard library's file (``aiohttp``,
    ``asyncio``), or the module's own name for a top-level one (``selectors``)."""
    parts = Path(file).with_suffix("").parts
    for folder in ("site-packages", "dist-packages"):
        if folder in parts[:-1]:
            return parts[parts.index(folder) + 1]
    for i, part in enumerate(parts[:-1]):
        if re.fullmatch(r"python3\.\d+", part):
            return parts[i + 1]
    return parts[-1] if parts else "?"


def top_costs(
    profile: Speedscope, top: int = TOP, roots: Roots | None = None
) -> tuple[int, float, list[Cost]]:
    """The number of samples, the CPU seconds they stand for (py-spy weighs each sample
    by its interval), and the ``top`` places they went (see the module)."""
    frames = profile.shared.frames
    roots = package_roots() if roots is None else roots
    where: list[str] = []
    for frame in frames:
        module = module_of(frame.file, roots)
        where.append(f"{module}:{frame.name}" if module else "")
    costs: dict[str, float] = defaultdict(float)
    total, count = 0.0, 0
    for sampled in profile.profiles:
        weights = sampled.weights or [1.0] * len(sampled.samples)
        for stack, weight in zip(sampled.samples, weights, strict=False):
            if not stack:
                continue
            total += weight
            count += 1
            ours = next((where[i] for i in reversed(stack) if where[i]), None)
            if ours is None:
                ours = f"{package_of(frames[stack[-1]].file)} (outside crmd)"
            costs[ours] += weight
    if not total:
        return 0, 0.0, []
    best = sorted(costs.items(), key=lambda kv: -kv[1])[:top]
    costed = [Cost(name, round(weight / total, 3)) for name, weight in best]
    return count, round(total, 2), costed


class Profiler:
    """Profiles of ``pid``, a phase at a time, into ``folder`` (nothing when ``folder``
    is None: ``--profile`` was not asked for)."""

    def __init__(self, pid: int, folder: Path | None) -> None:
        self.pid = pid
        self.folder = folder
        self.phases: dict[str, PhaseProfile] = {}

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        if self.folder is None:
            yield
            return
        tool = py_spy()
        if tool is None:
            self.phases[name] = PhaseProfile("", 0, 0.0, [], "py-spy is not installed")
            yield
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        out = self.folder / f"{name}.speedscope.json"
        command = [tool, "record", "--pid", str(self.pid), "--rate", str(RATE)]
        command += ["--nonblocking", "--format", "speedscope", "--output", str(out)]
        recording = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            yield
        finally:
            self.phases[name] = self._stop(recording, out)

    def _stop(self, recording: subprocess.Popen[bytes], out: Path) -> PhaseProfile:
        if recording.poll() is None:
            recording.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
        try:
            _, err = recording.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            recording.kill()
            _, err = recording.communicate()
        relative = os.path.relpath(out, self.folder.parent if self.folder else out.parent)
        if not out.exists():
            why = err.decode(errors="replace").strip().splitlines()
            return PhaseProfile(
                "", 0, 0.0, [], f"py-spy could not record: {why[-1] if why else '?'}"
            )
        samples, seconds, top = top_costs(msgspec.json.decode(out.read_bytes(), type=Speedscope))
        return PhaseProfile(relative, samples, seconds, top)

    def results(self) -> dict[str, Any]:
        return {name: msgspec.to_builtins(p) for name, p in self.phases.items()}


def markdown(profiles: dict[str, Any]) -> str:
    """The README's table: each phase's top costs by share of crmd's CPU."""
    lines = ["| phase | CPU s | top five costs, by share of crmd's CPU |", "|---|---:|---|"]
    for name, found in profiles.items():
        profile = msgspec.convert(found, PhaseProfile)
        costs = ", ".join(f"`{c.where}` {c.share:.0%}" for c in profile.top) or profile.note
        lines.append(f"| {name} | {profile.seconds:,.1f} | {costs} |")
    return "\n".join(lines)
