import json
import threading

import httpx
import pytest
from django.db import connection

from weiying.wechat import client, tokens
from weiying.wechat.models import AccessToken


class FakeWeCom:
    """A scripted WeCom: counts token fetches; `script` answers API calls in order."""

    def __init__(self, script=None):
        self.token_calls = 0
        self.api_calls = []
        self.script = list(script or [])
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/cgi-bin/gettoken":
            with self.lock:
                self.token_calls += 1
                n = self.token_calls
            assert request.url.params["corpsecret"] in ("app-secret", "contact-secret")
            return httpx.Response(200, json={"errcode": 0, "access_token": f"TOKEN{n}",
                                             "expires_in": 7200})
        self.api_calls.append((request.url.path, request.url.params.get("access_token")))
        if self.script:
            answer = self.script.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return httpx.Response(200, json=answer)
        return httpx.Response(200, json={"errcode": 0, "errmsg": "ok"})


@pytest.fixture
def fake(monkeypatch):
    def install(script=None):
        world = FakeWeCom(script)
        monkeypatch.setattr(client, "TRANSPORT", httpx.MockTransport(world))
        return world

    return install


@pytest.mark.django_db
def test_a_token_is_fetched_once_and_shared_by_every_client(wechat, fake):
    world = fake()

    client.WeCom().get("/cgi-bin/department/list")
    client.WeCom().get("/cgi-bin/department/list")

    assert world.token_calls == 1
    assert [token for _path, token in world.api_calls] == ["TOKEN1", "TOKEN1"]
    stored = AccessToken.objects.get()
    assert "TOKEN1" not in stored.value_enc  # encrypted at rest


@pytest.mark.django_db
def test_the_contact_secret_has_a_token_of_its_own(wechat, fake):
    world = fake()

    client.WeCom().get("/cgi-bin/department/list")
    client.WeCom(contact=True).get("/cgi-bin/externalcontact/list", userid="u1")

    assert world.token_calls == 2
    assert AccessToken.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize("errcode", [40014, 42001])
def test_an_expired_token_is_refreshed_and_the_call_retried_once(wechat, fake, errcode):
    world = fake([{"errcode": errcode, "errmsg": "expired"}, {"errcode": 0, "department": []}])

    answer = client.WeCom().get("/cgi-bin/department/list")

    assert answer == {"errcode": 0, "department": []}
    assert world.token_calls == 2
    assert [token for _p, token in world.api_calls] == ["TOKEN1", "TOKEN2"]


@pytest.mark.django_db
def test_a_token_that_stays_expired_is_not_retried_forever(wechat, fake):
    world = fake([{"errcode": 42001}, {"errcode": 42001}, {"errcode": 0}])

    with pytest.raises(client.ApiError) as caught:
        client.WeCom().get("/cgi-bin/department/list")

    assert caught.value.code == 42001
    assert len(world.api_calls) == 2


@pytest.mark.django_db
def test_a_rate_limit_raises_with_a_wait(wechat, fake):
    fake([{"errcode": 45009, "errmsg": "api freq out of limit"}])

    with pytest.raises(client.RateLimited) as caught:
        client.WeCom().get("/cgi-bin/user/get", userid="u1")

    assert caught.value.code == 45009
    assert caught.value.retry_after > 0


@pytest.mark.django_db
def test_a_timeout_is_a_wechat_error_not_a_hang(wechat, fake):
    fake([httpx.ReadTimeout("slow")])

    with pytest.raises(client.WeChatError) as caught:
        client.WeCom().get("/cgi-bin/user/get", userid="u1")

    assert "ReadTimeout" in str(caught.value)


@pytest.mark.django_db
def test_an_unconfigured_wecom_says_what_is_missing(db):
    from weiying.wechat import config

    config.forget()
    with pytest.raises(client.NotConfigured, match="corp id"):
        client.WeCom()


@pytest.mark.django_db
def test_a_token_close_to_expiry_is_renewed(wechat, fake):
    import datetime as dt

    from django.utils import timezone

    world = fake()
    client.WeCom().get("/cgi-bin/department/list")
    AccessToken.objects.update(expires_at=timezone.now() + dt.timedelta(
        seconds=tokens.REFRESH_MARGIN - 10))

    client.WeCom().get("/cgi-bin/department/list")

    assert world.token_calls == 2


@pytest.mark.django_db(transaction=True)
def test_eight_processes_wanting_a_token_at_once_make_one_fetch(wechat, fake):
    world = fake()
    barrier = threading.Barrier(8)
    got = []

    def want():
        try:
            barrier.wait()
            got.append(client.WeCom().token())
        finally:
            connection.close()

    threads = [threading.Thread(target=want) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert got == ["TOKEN1"] * 8
    assert world.token_calls == 1


def test_secrets_never_show_in_the_configs_repr(wechat):
    text = repr(wechat)
    assert "app-secret" not in text and "contact-secret" not in text
    assert "ww0a1b2c3d4e5f6789" in text
    assert json.dumps(text)


def _redis_up() -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not _redis_up(), reason="needs Redis on 127.0.0.1:6379")
@pytest.mark.django_db
def test_with_redis_configured_the_token_lives_in_redis(wechat, fake, settings):
    import redis

    settings.REDIS_URL = "redis://127.0.0.1:6379/15"
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    tokens.reset_store()
    try:
        world = fake([{"errcode": 42001}, {"errcode": 0}])
        client.WeCom().get("/cgi-bin/department/list")
        client.WeCom().get("/cgi-bin/department/list")

        assert world.token_calls == 2  # the expired one, then one fresh token for both calls
        assert AccessToken.objects.count() == 0
        keys = redis.Redis.from_url(settings.REDIS_URL).keys("weiying:token:*")
        assert len(keys) == 1
    finally:
        redis.Redis.from_url(settings.REDIS_URL).flushdb()
        tokens.reset_store()
