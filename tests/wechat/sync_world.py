"""The sandbox for the sync tests: an in-process WeCom whose API the app's client reaches
through a WSGI transport and whose callbacks go to the app's real endpoints through Django's
test client (stored in the inbox, processed by `inbox.drain()`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from django.test import Client

from weiying.core.models import AuditLog, DomainEvent
from weiying.customers.models import Customer, OwnershipChange, Tag, WeChatIdentity
from weiying.org.models import Department, Employee
from weiying.wechat import client as wechat_client
from weiying.wechat.models import CustomerFollow, InboxMessage, Transfer
from weiying.wechat.sandbox import SandboxConfig, SandboxState, create_app


@pytest.fixture
def sandbox(wechat: Any, settings: Any) -> Iterator[SandboxState]:
    """A fresh WeCom world; the app's client points at it, its callbacks at the app."""
    state = SandboxState(SandboxConfig(delivery_mode="sync", callback_timeout=5.0,
                                       wecom_retry_seconds=[]))
    app_client = Client()

    def deliver(url: str, body: bytes, headers: dict[str, str]) -> int:
        parts = urlsplit(url)
        response = app_client.post(f"{parts.path}?{parts.query}", body,
                                   content_type="text/xml")
        return int(response.status_code)

    state.deliver = deliver
    settings.WECHAT = {**settings.WECHAT, "WECOM_API": "http://sandbox/wecom"}
    previous = wechat_client.TRANSPORT
    wechat_client.TRANSPORT = httpx.WSGITransport(app=create_app(state))
    yield state
    wechat_client.TRANSPORT = previous
    state.deliverer.stop()


def api_calls(state: SandboxState, prefix: str = "/wecom/cgi-bin/") -> int:
    return sum(n for path, n in state.calls.items() if path.startswith(prefix)
               and not path.endswith("/gettoken"))


def snapshot() -> dict[str, Any]:
    """Everything a handler may write, to prove a replay writes nothing more."""
    return {
        "audit": AuditLog.objects.count(), "events": DomainEvent.objects.count(),
        "customers": sorted(Customer.objects.values_list("pk", "owner_id", "name", "kind")),
        "identities": WeChatIdentity.objects.count(),
        "ownership": OwnershipChange.objects.count(),
        "tags": sorted(Customer.tags.through.objects.values_list("customer_id", "tag__name")),
        "tag_rows": Tag.objects.count(),
        "collaborators": sorted(Customer.collaborators.through.objects.values_list(
            "customer_id", "employee_id")),
        "follows": sorted(CustomerFollow.objects.values_list(
            "employee_id", "external_userid", "relation", "remark", "ended_at", "ended_by",
            "retain_until")),
        "departments": sorted(Department.objects.values_list(
            "pk", "name", "parent_id", "path", "is_active", "manager_id")),
        "employees": sorted(Employee.objects.values_list(
            "pk", "name", "position", "department_id", "leader_id", "status", "path",
            "wecom_userid")),
        "transfers": sorted(Transfer.objects.values_list("external_userid", "status", "error")),
    }


def replay_last(source: str | None = None) -> None:
    """Process the newest handled inbox row once more, as an administrator's replay or a
    redelivery would."""
    from weiying.wechat import inbox

    rows = InboxMessage.objects.order_by("-pk")
    if source:
        rows = rows.filter(source=source)
    row = rows.first()
    assert row is not None and row.status == "done", (row, row and row.last_error)
    InboxMessage.objects.filter(pk=row.pk).update(status="pending")
    assert inbox.process(row.pk) == "done"


def drain_all() -> dict[str, int]:
    from weiying.wechat import inbox

    counts = inbox.drain()
    failed = list(InboxMessage.objects.exclude(status__in=["done", "ignored"])
                  .values_list("kind", "last_error"))
    assert not failed, failed
    return counts
