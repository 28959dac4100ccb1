"""``redis+sentinel://`` URLs: what each part means, and a clear error for each bad one."""

from __future__ import annotations

import pytest
import redis

from podfleet.local.ports import free_port
from podfleet.redis_client import (
    InvalidRedisUrl,
    SentinelUrl,
    connect,
    is_sentinel_url,
    parse_sentinel_url,
)
from podfleet.settings import Settings


def test_a_sentinel_url_names_the_sentinels_the_service_and_the_db() -> None:
    assert parse_sentinel_url("redis+sentinel://s1:26380,10.0.0.2:26381/mymaster/2") == \
        SentinelUrl((("s1", 26380), ("10.0.0.2", 26381)), "mymaster", 2)


def test_the_port_defaults_to_sentinels_and_the_db_to_0() -> None:
    assert parse_sentinel_url("redis+sentinel://s1/mymaster") == \
        SentinelUrl((("s1", 26379),), "mymaster", 0)


def test_user_and_password_are_the_primarys() -> None:
    found = parse_sentinel_url("redis+sentinel://app:p%40ss@s1:26379/mymaster")
    assert (found.username, found.password) == ("app", "p@ss")
    assert parse_sentinel_url("redis+sentinel://:pw@s1/m").username is None


@pytest.mark.parametrize(("url", "message"), [
    ("redis+sentinel://s1:26379", "expected /service_name"),
    ("redis+sentinel://s1:26379/a/b/c", "expected /service_name"),
    ("redis+sentinel://s1:26379/mymaster/x", "db must be a number"),
    ("redis+sentinel://s1:99999/mymaster", "no valid port"),
    ("redis+sentinel://:26379/mymaster", "has no host"),
])
def test_a_bad_sentinel_url_says_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(InvalidRedisUrl, match=message):
        parse_sentinel_url(url)


def test_plain_urls_are_not_sentinel_urls_and_settings_take_both() -> None:
    assert not is_sentinel_url("redis://r:6379/0")
    url = "redis+sentinel://s1:26379,s2:26379/mymaster/0"
    assert Settings.from_env({"PODFLEET_REDIS_URL": url}).redis.url == url


def test_unreachable_sentinels_are_named_in_one_line_not_in_a_pool_repr() -> None:
    # Given a sentinel URL whose sentinels nobody listens on (free ports, nothing bound)
    ports = [free_port(), free_port()]
    url = f"redis+sentinel://127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}/mymaster"
    client = connect(url, socket_timeout=1, socket_connect_timeout=1)
    # When a command needs the primary
    with pytest.raises(redis.ConnectionError) as failure:
        client.ping()
    # Then the error names both sentinels and the service, on one short line
    message = str(failure.value)
    assert f"127.0.0.1:{ports[0]}" in message and f"127.0.0.1:{ports[1]}" in message
    assert "'mymaster'" in message
    assert "ConnectionPool" not in message and "\n" not in message and len(message) < 300
