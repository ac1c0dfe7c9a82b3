"""The in-process sandbox for the channel and Official Account tests: WeCom and OA API calls
go to it through httpx's WSGI transport, and its callbacks are posted into the Django test
client (the real callback endpoints), then the inbox is drained."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from django.db import connection
from django.test import Client
from django.utils import translation

from weiying.wechat import client
from weiying.wechat.sandbox import SandboxConfig, SandboxState, create_app

# WeCom user ids and department ids of the personas (tests/conftest.py `company`).
USERIDS = {"rep_a": "lilei", "rep_a2": "zhaoxs", "rep_b": "qianxs", "manager_a": "wangjl",
           "manager_b": "sunjl", "director": "zhouzj"}
DEPARTMENT_IDS = {"team_a": 31, "team_b": 51, "east": 30, "north": 50, "hq": 1}


class Sandbox:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.app = create_app(state)
        self.http = httpx.Client(transport=httpx.WSGITransport(app=self.app),
                                 base_url="http://sandbox")
        self.posted: list[int] = []

    def api(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.http.post(f"/sandbox/api{path}", json=body or {})
        assert response.status_code == 200, response.text
        return dict(response.json())

    def deliver(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        target = httpx.URL(url)
        path = target.path + (f"?{target.query.decode()}" if target.query else "")
        content_type = next((v for k, v in headers.items() if k.lower() == "content-type"),
                            "text/xml")
        # Tencent's own headers (Wechatpay-Signature, …) reach the view as Django META keys.
        meta = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()
                if k.lower() != "content-type"}
        try:
            response = Client().post(path, body, content_type=content_type, **meta)
        finally:
            if threading.current_thread() is not threading.main_thread():
                connection.close()
        self.posted.append(response.status_code)
        return response.status_code

    def calls(self, path: str) -> int:
        """How many times the app called a sandbox path (e.g. "/wecom/cgi-bin/…")."""
        return int(self.state.calls.get(path, 0))


def seed_directory(box: Sandbox, company: Any) -> None:
    """The personas as WeCom members (user ids above), their teams as WeCom departments,
    and the same ids on the app's employees and departments."""
    from weiying.org.models import Department, Employee

    departments = [
        {"id": 1, "name": "总部", "parentid": 0, "order": 1},
        {"id": 30, "name": "华东分公司", "parentid": 1, "order": 1},
        {"id": 31, "name": "上海一组", "parentid": 30, "order": 1},
        {"id": 50, "name": "华北分公司", "parentid": 1, "order": 2},
        {"id": 51, "name": "北京一组", "parentid": 50, "order": 1},
    ]
    dept_of = {"rep_a": 31, "rep_a2": 31, "manager_a": 31, "director": 30, "rep_b": 51,
               "manager_b": 51}
    users = [{"userid": uid, "name": getattr(company, who).name, "department": [dept_of[who]]}
             for who, uid in USERIDS.items()]
    box.api("/seed", {"mode": "replace", "departments": departments, "users": users})
    for who, uid in USERIDS.items():
        Employee.objects.filter(pk=getattr(company, who).pk).update(wecom_userid=uid)
        getattr(company, who).wecom_userid = uid
    for name, wid in DEPARTMENT_IDS.items():
        Department.objects.filter(pk=getattr(company, name).pk).update(wecom_id=str(wid))
        getattr(company, name).wecom_id = str(wid)


@pytest.fixture(name="english", autouse=True)
def english_fixture() -> Any:
    """Service messages in English, as the tests read them (pages: login(language="en"))."""
    with translation.override("en"):
        yield


@pytest.fixture(name="sandbox")
def sandbox_fixture(wechat: Any, company: Any, settings: Any, monkeypatch: Any) -> Any:
    # Tasks run immediately in tests, so a callback's answer time includes handling it: a
    # generous answer window keeps a slow database from turning into sandbox retries.
    state = SandboxState(SandboxConfig(delivery_mode="sync", app_base_url="http://testserver",
                                       public_url="http://sandbox", callback_timeout=60.0,
                                       wecom_retry_seconds=[0.0, 0.0],
                                       oa_retry_seconds=[0.0, 0.0]))
    state.sleep = lambda seconds: None
    box = Sandbox(state)
    state.deliver = box.deliver
    monkeypatch.setattr(client, "TRANSPORT", httpx.WSGITransport(app=box.app))
    settings.WECHAT = {**settings.WECHAT, "WECOM_API": "http://sandbox/wecom",
                       "OA_API": "http://sandbox/oa", "OA_QR": "http://sandbox/oa-mp"}
    seed_directory(box, company)
    yield box
    state.deliverer.stop()
