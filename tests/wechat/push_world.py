"""Shared set-up of the push, login and JS-SDK tests: a scripted WeCom on httpx's
MockTransport, WeCom user ids on the personas, a frozen clock, and the in-process sandbox."""

from __future__ import annotations

import datetime as dt
import json
import threading
from typing import Any

import httpx
import pytest
from django.utils import timezone

from weiying.wechat import client

NOW = dt.datetime(2025, 3, 10, 1, 0, tzinfo=dt.UTC)  # 09:00 in Shanghai, a Monday
USERIDS = {"rep_a": "lilei", "rep_a2": "zhaoxs", "rep_b": "qianxs", "manager_a": "wangjl",
           "manager_b": "sunjl", "director": "zhouzj", "finance": "chenkj",
           "operations": "wuyy", "admin": "guanly"}


class Clock:
    """A frozen `timezone.now` that tests move by hand."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: Any) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now


class FakeWeCom:
    """Answers gettoken, records every message/send body; `answers` are the replies to the
    next sends in order (a dict is JSON, an int an HTTP status, an exception is raised)."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.answers: list[Any] = []
        self.userinfo: dict[str, dict[str, Any]] = {}
        self.tickets = {"corp": "corp-ticket", "agent": "agent-ticket"}
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.calls.append(path)
        if path == "/cgi-bin/gettoken":
            return httpx.Response(200, json={"errcode": 0, "access_token": "TOKEN",
                                             "expires_in": 7200})
        if path == "/cgi-bin/message/send":
            with self.lock:
                self.sent.append(json.loads(request.content))
                answer = self.answers.pop(0) if self.answers else None
            if isinstance(answer, Exception):
                raise answer
            if isinstance(answer, int):
                return httpx.Response(answer, text="down")
            return httpx.Response(200, json=answer or {
                "errcode": 0, "errmsg": "ok", "msgid": f"MSG{len(self.sent)}"})
        if path == "/cgi-bin/auth/getuserinfo":
            code = request.url.params.get("code", "")
            answer = self.userinfo.pop(code, None)
            return httpx.Response(200, json=answer or {"errcode": 40029,
                                                       "errmsg": "invalid code"})
        if path == "/cgi-bin/get_jsapi_ticket":
            return httpx.Response(200, json={"errcode": 0, "ticket": self.tickets["corp"],
                                             "expires_in": 7200})
        if path == "/cgi-bin/ticket/get":
            assert request.url.params["type"] == "agent_config"
            return httpx.Response(200, json={"errcode": 0, "ticket": self.tickets["agent"],
                                             "expires_in": 7200})
        return httpx.Response(404)

    def to(self, userid: str) -> list[dict[str, Any]]:
        return [body for body in self.sent if body["touser"] == userid]


@pytest.fixture(name="fake_wecom")
def fake_wecom_fixture(wechat: Any, monkeypatch: Any) -> FakeWeCom:
    world = FakeWeCom()
    monkeypatch.setattr(client, "TRANSPORT", httpx.MockTransport(world))
    return world


@pytest.fixture(name="clock")
def clock_fixture(monkeypatch: Any) -> Clock:
    c = Clock(NOW)
    monkeypatch.setattr(timezone, "now", c)
    return c


@pytest.fixture(name="wecom_ids")
def wecom_ids_fixture(company: Any) -> Any:
    """The personas with WeCom user ids (USERIDS), saved and on the fixture's objects."""
    from weiying.org.models import Employee

    for who, userid in USERIDS.items():
        Employee.objects.filter(pk=getattr(company, who).pk).update(wecom_userid=userid)
        getattr(company, who).wecom_userid = userid
    return company


# --- the in-process sandbox -------------------------------------------------------------------
def seed_sandbox(http: httpx.Client, company: Any) -> None:
    """The personas as members of the sandbox's corp (user ids above)."""
    users = [{"userid": userid, "name": getattr(company, who).name, "department": [1]}
             for who, userid in USERIDS.items()]
    answer = http.post("/sandbox/api/seed", json={
        "mode": "replace", "departments": [{"id": 1, "name": "总部", "parentid": 0}],
        "users": users})
    assert answer.status_code == 200, answer.text


@pytest.fixture(name="sandbox")
def sandbox_fixture(wechat: Any, wecom_ids: Any, settings: Any, monkeypatch: Any) -> Any:
    """The sandbox in-process: WeCom API, OAuth and QR pages on http://sandbox/…; its clock is
    `sandbox.clock` (seconds, moved with the Django clock by the tests that need both)."""
    sandbox_pkg = pytest.importorskip("weiying.wechat.sandbox")
    state = sandbox_pkg.SandboxState(sandbox_pkg.SandboxConfig(
        delivery_mode="sync", app_base_url="http://testserver", public_url="http://sandbox"))
    state.sleep = lambda seconds: None
    state.clock = lambda: timezone.now().timestamp()  # the Django clock, frozen or not
    app = sandbox_pkg.create_app(state)
    monkeypatch.setattr(client, "TRANSPORT", httpx.WSGITransport(app=app))
    settings.WECHAT = {**settings.WECHAT, "WECOM_API": "http://sandbox/wecom",
                       "WECOM_OAUTH": "http://sandbox/wecom-open",
                       "WECOM_QR_LOGIN": "http://sandbox/wecom-login"}
    http = httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://sandbox")
    seed_sandbox(http, wecom_ids)
    state.http = http  # type: ignore[attr-defined]
    yield state
    http.close()
    state.deliverer.stop()


def sandbox_messages(state: Any, userid: str) -> list[dict[str, Any]]:
    answer = state.http.get("/sandbox/api/messages", params={"userid": userid})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["messages"])
