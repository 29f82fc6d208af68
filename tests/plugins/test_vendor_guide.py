"""The vendor guide's test file is a real one: the guide shows it whole, as it runs."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_guide_shows_the_webhook_vendors_whole_test_file_as_it_is():
    guide = (REPO / "docs" / "writing-a-vendor-plugin.md").read_text()
    brief = (REPO / "plugins/crmd_webhook/tests/test_webhook_in_brief.py").read_text()
    assert f"```python\n{brief}```" in guide
    assert len([line for line in brief.splitlines() if line.strip()]) <= 30
