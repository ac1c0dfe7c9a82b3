import os
import subprocess
import sys

import pytest


def run_check(**env):
    full = {**os.environ, "DJANGO_SETTINGS_MODULE": "weiying.conf.settings", **env}
    full.pop("DATABASE_URL", None) if "DATABASE_URL" not in env else None
    return subprocess.run(
        [sys.executable, "-m", "weiying.cli", "check"], env=full, capture_output=True,
        text=True, timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"DATABASE_URL": "mysql://x@y/z"}, "DATABASE_URL must start with sqlite:/// or postgres://"),
        ({"REDIS_URL": "http://localhost"}, "REDIS_URL must start with redis://"),
        ({"TIME_ZONE": "Mars/Olympus"}, "TIME_ZONE='Mars/Olympus' is not a known time zone"),
        ({"LANGUAGE_CODE": "fr"}, "LANGUAGE_CODE='fr' is not one of: en, zh-hans"),
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not a yes/no value"),
        ({"POOL_DAILY_CLAIM_LIMIT": "ten"}, "POOL_DAILY_CLAIM_LIMIT='ten' is not a whole number"),
        ({"WEIYING_REQUIRE_SECRET_KEY": "1", "SECRET_KEY": ""}, "SECRET_KEY is empty"),
    ],
)
def test_bad_configuration_stops_start_up_with_a_sentence(env, says, tmp_path):
    result = run_check(WEIYING_DATA_DIR=str(tmp_path), **env)
    assert result.returncode == 2
    assert says in result.stderr


def test_good_configuration_passes_the_check(tmp_path):
    result = run_check(WEIYING_DATA_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "database: sqlite ok" in result.stdout
