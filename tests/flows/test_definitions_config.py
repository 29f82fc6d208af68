"""``[flows]``: its defaults, and the values refused with the key named."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmd.config import ConfigError, load_config
from crmd.config.flows import FlowsConfig

REPO = Path(__file__).resolve().parents[2]
LOCAL = "[auth]\ngoogle_login = false\n"


def loaded(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> FlowsConfig:
    path = tmp_path / "crmd.toml"
    path.write_text(text + "\n" + LOCAL)
    return load_config(path, env or {}).config.flows


def test_the_defaults_run_flows_at_the_wall_clocks_pace_with_no_cap(tmp_path: Path):
    flows = loaded(tmp_path, "")
    assert flows == FlowsConfig()
    assert flows.time_scale == 1.0
    assert flows.max_wait_days == 365
    assert flows.max_messages_per_customer_per_day == 0
    assert flows.quiet_hours == ""
    assert flows.timezone == "UTC"
    assert flows.timer_batch == 500
    assert flows.segment_check_minutes == 15


def test_the_shipped_file_says_the_defaults():
    assert load_config(REPO / "crmd.toml", environ={}).config.flows == FlowsConfig()


def test_the_file_and_the_environment_set_them(tmp_path: Path):
    flows = loaded(
        tmp_path,
        '[flows]\ntime_scale = 3600\nquiet_hours = "21:00-08:00"\ntimezone = "Asia/Kolkata"\n',
        {"CRMD_FLOWS__MAX_MESSAGES_PER_CUSTOMER_PER_DAY": "2"},
    )
    assert flows.time_scale == 3600
    assert flows.quiet_hours == "21:00-08:00"
    assert flows.timezone == "Asia/Kolkata"
    assert flows.max_messages_per_customer_per_day == 2


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("time_scale = 0", "flows.time_scale = 0: Expected `float` > 0.0"),
        ("time_scale = -2", "flows.time_scale = -2"),
        ("max_wait_days = 0", "flows.max_wait_days = 0: Expected `int` >= 1"),
        ("max_messages_per_customer_per_day = -1", "flows.max_messages_per_customer_per_day"),
        ('quiet_hours = "9pm-8am"', "flows.quiet_hours = '9pm-8am'"),
        ('quiet_hours = "25:00-08:00"', "flows.quiet_hours = '25:00-08:00'"),
        (
            'quiet_hours = "08:00-08:00"',
            "flows.quiet_hours = '08:00-08:00': starts and ends at the same time",
        ),
        ('timezone = "Mars/Olympus"', "flows.timezone = 'Mars/Olympus': is not a time zone"),
        ("timer_batch = 0", "flows.timer_batch = 0"),
        ("segment_check_minutes = 0", "flows.segment_check_minutes = 0"),
        ("tme_scale = 2", "flows.tme_scale: unknown setting"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, toml: str, expected: str):
    with pytest.raises(ConfigError) as err:
        loaded(tmp_path, f"[flows]\n{toml}\n")
    assert expected in str(err.value)
