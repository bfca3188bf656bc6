"""Settings: the environment is read in one place, and every setting is documented."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from proxy.errors import ConfigError
from proxy.settings import Settings

EXAMPLE = Path(__file__).resolve().parent.parent / "deploy" / "airlock.env.example"


def test_every_setting_is_documented_in_the_env_example() -> None:
    documented = set(re.findall(r"^(AIRLOCK_[A-Z_]+)=", EXAMPLE.read_text(), re.MULTILINE))
    assert documented == set(Settings.env_names())


def test_env_example_values_parse() -> None:
    values = dict(
        line.split("=", 1)
        for line in EXAMPLE.read_text().splitlines()
        if line.startswith("AIRLOCK_")
    )
    settings = Settings.from_env(values)
    assert settings == Settings()  # the example shows the defaults


def test_defaults_are_the_embedded_ones() -> None:
    settings = Settings.from_env({})
    assert settings.upstream == "https://huggingface.co"
    assert settings.data_dir == Path("airlock-data")
    assert settings.port == 8080


def test_env_and_flags() -> None:
    env = {
        "AIRLOCK_UPSTREAM": "http://127.0.0.1:9",
        "AIRLOCK_PORT": "9000",
        "AIRLOCK_UPSTREAM_CDN_HOSTS": "a.example, *.b.example",
        "AIRLOCK_HEAD_WAIT_S": "1.5",
    }
    settings = Settings.from_env(env, port=9100, host=None)
    assert settings.upstream == "http://127.0.0.1:9"
    assert settings.port == 9100  # a flag wins over the environment
    assert settings.upstream_cdn_hosts == ("a.example", "*.b.example")
    assert settings.head_wait_s == 1.5


@pytest.mark.parametrize(
    "env, variable",
    [
        ({"AIRLOCK_PORT": "eighty"}, "AIRLOCK_PORT"),
        ({"AIRLOCK_PORT": "70000"}, "AIRLOCK_PORT"),
        ({"AIRLOCK_UPSTREAM": "ftp://example"}, "AIRLOCK_UPSTREAM"),
        ({"AIRLOCK_UPSTREAM": "https://huggingface.co/some/path"}, "AIRLOCK_UPSTREAM"),
        ({"AIRLOCK_HEAD_WAIT_S": "-1"}, "AIRLOCK_HEAD_WAIT_S"),
        ({"AIRLOCK_LOG_LEVEL": "loud"}, "AIRLOCK_LOG_LEVEL"),
        ({"AIRLOCK_PUBLIC_URL": "airlock:8080"}, "AIRLOCK_PUBLIC_URL"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as error:
        Settings.from_env(env)
    assert error.value.variable == variable
    assert variable in str(error.value)


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]
    assert {f.name for f in fields(Settings)} >= {"upstream", "data_dir", "host", "port"}
