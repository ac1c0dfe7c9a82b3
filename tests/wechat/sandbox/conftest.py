"""The sandbox under test: a fresh world per test, callbacks delivered synchronously to a
recorder, a clock the test moves, and an httpx client on the WSGI app (no network, no
Django database)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from weiying.wechat import crypto
from weiying.wechat.sandbox import SandboxConfig, SandboxState, create_app

NOW = 1_780_000_000.0


@pytest.fixture(scope="session")
def platform_keys() -> tuple[bytes, bytes]:
    return crypto.generate_test_keypair()


@dataclass
class Posted:
    url: str
    body: bytes
    headers: dict[str, str]

    @property
    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.url).query).items()}

    @property
    def path(self) -> str:
        return urlsplit(self.url).path


@dataclass
class Recorder:
    """Stands in for the app: records every post and answers the statuses queued in
    `answers` (then 200). An answer that is an exception is raised instead."""

    posts: list[Posted] = field(default_factory=list)
    answers: list[Any] = field(default_factory=list)

    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        self.posts.append(Posted(url, body, dict(headers)))
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, BaseException):
            raise answer
        return int(answer)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state(platform_keys: tuple[bytes, bytes], clock: Clock) -> Iterator[SandboxState]:
    private, public = platform_keys
    config = SandboxConfig(
        delivery_mode="sync", callback_timeout=0.5,
        wecom_retry_seconds=[5.0, 5.0], oa_retry_seconds=[5.0, 5.0],
        pay_retry_seconds=[15.0, 15.0, 30.0],
        pay_platform_private_key=private.decode(), pay_platform_public_key=public.decode(),
    )
    world = SandboxState(config)
    world.clock = clock
    world.slept = []  # type: ignore[attr-defined]
    world.sleep = world.slept.append  # type: ignore[attr-defined]
    yield world
    world.deliverer.stop()


@pytest.fixture
def app_posts(state: SandboxState) -> Recorder:
    recorder = Recorder()
    state.deliver = recorder
    return recorder


@pytest.fixture
def client(state: SandboxState, app_posts: Recorder) -> Iterator[httpx.Client]:
    with httpx.Client(transport=httpx.WSGITransport(app=create_app(state)),
                      base_url="http://sandbox") as http:
        yield http


def wecom_token(client: httpx.Client, secret: str = "app-secret") -> str:
    data = client.get("/wecom/cgi-bin/gettoken",
                      params={"corpid": SandboxConfig().corp_id, "corpsecret": secret}).json()
    assert data["errcode"] == 0, data
    return str(data["access_token"])


def oa_token(client: httpx.Client) -> str:
    config = SandboxConfig()
    data = client.post("/oa/cgi-bin/stable_token", json={
        "grant_type": "client_credential", "appid": config.oa_app_id,
        "secret": config.oa_secret}).json()
    return str(data["access_token"])


def seed_company(client: httpx.Client) -> None:
    """总部 1 → 销售部 2 → 华东组 3; three reps and a manager."""
    response = client.post("/sandbox/api/seed", json={
        "mode": "replace",
        "departments": [
            {"id": 1, "name": "总部", "parentid": 0, "order": 1},
            {"id": 2, "name": "销售部", "parentid": 1, "order": 1},
            {"id": 3, "name": "华东组", "parentid": 2, "order": 1},
            {"id": 4, "name": "财务部", "parentid": 1, "order": 2},
        ],
        "users": [
            {"userid": "manager", "name": "王经理", "department": [2], "position": "销售经理",
             "is_leader_in_dept": [1]},
            {"userid": "rep_a", "name": "李雷", "department": [3], "position": "销售",
             "direct_leader": ["manager"]},
            {"userid": "rep_b", "name": "韩梅梅", "department": [3, 4],
             "direct_leader": ["manager"]},
            {"userid": "finance", "name": "赵会计", "department": [4], "contact_enabled": False},
        ],
    })
    assert response.status_code == 200, response.text


def open_callback(posted: Posted, *, token: str | None = None, aes_key: str | None = None,
                  receive_id: str | None = None) -> dict[str, str]:
    """Check a WeCom callback like the app would and return its decrypted fields."""
    config = SandboxConfig()
    box = crypto.CallbackCrypto(token or config.callback_token,
                                aes_key or config.callback_aes_key,
                                receive_id or config.corp_id)
    q = posted.query
    plain = box.decrypt(q["msg_signature"], q["timestamp"], q["nonce"],
                        crypto.envelope_encrypt(posted.body))
    return crypto.parse_xml(plain)


def open_oa_callback(posted: Posted) -> dict[str, str]:
    config = SandboxConfig()
    q = posted.query
    assert crypto.oa_url_signature_ok(config.oa_token, q["signature"], q["timestamp"],
                                      q["nonce"])
    assert q["encrypt_type"] == "aes"
    box = crypto.CallbackCrypto(config.oa_token, config.oa_aes_key, config.oa_app_id)
    plain = box.decrypt(q["msg_signature"], q["timestamp"], q["nonce"],
                        crypto.envelope_encrypt(posted.body))
    return crypto.parse_xml(plain)


def elapsed_since(started: float) -> float:
    return time.monotonic() - started
