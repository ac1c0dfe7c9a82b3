import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from tests.conftest import user_of
from tests.wechat.conftest import CORP_ID, post_wecom, wecom_xml
from weiying.core.errors import InvalidTransition
from weiying.core.models import AuditLog
from weiying.wechat import inbox
from weiying.wechat.models import InboxMessage

TEXT = dict(ToUserName=CORP_ID, FromUserName="zhangsan", CreateTime="1700000000",
            MsgType="text", Content="hi", MsgId="1", AgentID="1000002")


@pytest.fixture
def effects():
    """A handler for WeCom text messages whose business effect is an audit row keyed by the
    message id (idempotent the way real handlers are: a unique effect per message)."""
    calls = []

    def on_text(row, message):
        calls.append(row.pk)
        if not AuditLog.objects.filter(action="test.effect", object_id=message["MsgId"]).exists():
            AuditLog.objects.create(action="test.effect", object_id=message["MsgId"])

    previous = inbox._HANDLERS.get(("wecom", "msg:text"))
    inbox._HANDLERS[("wecom", "msg:text")] = on_text
    yield calls
    if previous is None:
        inbox._HANDLERS.pop(("wecom", "msg:text"), None)
    else:
        inbox._HANDLERS[("wecom", "msg:text")] = previous


@pytest.fixture
def failing():
    def on_text(row, message):
        AuditLog.objects.create(action="test.half_done", object_id=message["MsgId"])
        raise RuntimeError("the CRM said no")

    previous = inbox._HANDLERS.get(("wecom", "msg:text"))
    inbox._HANDLERS[("wecom", "msg:text")] = on_text
    yield on_text
    if previous is None:
        inbox._HANDLERS.pop(("wecom", "msg:text"), None)
    else:
        inbox._HANDLERS[("wecom", "msg:text")] = previous


def _store(**fields):
    message = {**TEXT, **fields}
    row, _created = inbox.receive("wecom", wecom_xml(**message), message)
    return row


@pytest.mark.django_db
def test_a_handled_row_is_done_with_its_handler_recorded(wechat, effects):
    row = _store()

    assert inbox.process(row.pk) == "done"

    row.refresh_from_db()
    assert (row.status, row.handler, row.attempts, row.last_error) == ("done", "msg:text", 1, "")
    assert AuditLog.objects.filter(action="test.effect").count() == 1


@pytest.mark.django_db
def test_a_kind_nobody_handles_is_acknowledged_and_kept(wechat):
    row = _store(MsgType="location", MsgId="2")

    assert inbox.process(row.pk) == "ignored"

    row.refresh_from_db()
    assert row.status == "ignored"
    assert "location" in row.payload


@pytest.mark.django_db
def test_a_prefix_handler_covers_the_longer_kinds(wechat):
    seen = []
    inbox._HANDLERS[("wecom", "event:change_contact")] = lambda row, msg: seen.append(msg)
    try:
        row = _store(MsgType="event", Event="change_contact", ChangeType="create_party",
                     MsgId="")
        assert inbox.process(row.pk) == "done"
    finally:
        inbox._HANDLERS.pop(("wecom", "event:change_contact"))
    assert seen[0]["ChangeType"] == "create_party"


@pytest.mark.django_db
def test_a_failure_rolls_back_the_handlers_writes_and_retries_with_backoff(wechat, failing):
    row = _store()
    before = timezone.now()

    assert inbox.process(row.pk) == "failed"

    row.refresh_from_db()
    assert row.status == "failed"
    assert row.last_error == "RuntimeError: the CRM said no"
    assert not AuditLog.objects.filter(action="test.half_done").exists()
    delay = (row.next_attempt_at - before).total_seconds()
    assert inbox.BACKOFF_BASE_SECONDS * 0.5 - 1 <= delay <= inbox.BACKOFF_BASE_SECONDS * 1.5 + 1
    # Not due yet: the drain leaves it alone.
    assert inbox.drain() == {}


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    for attempts in range(1, 12):
        base = min(inbox.BACKOFF_BASE_SECONDS * 2 ** (attempts - 1), inbox.BACKOFF_CAP_SECONDS)
        for _ in range(20):
            seconds = inbox.backoff(attempts).total_seconds()
            assert base * 0.5 <= seconds <= base * 1.5


@pytest.mark.django_db
def test_after_the_last_attempt_a_row_is_dead_lettered_and_can_be_replayed(
        wechat, failing, company, settings):
    settings.WECHAT = {**settings.WECHAT, "INBOX_MAX_ATTEMPTS": 3}
    row = _store()
    for expected in ["failed", "failed", "dead"]:
        InboxMessage.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())
        assert inbox.process(row.pk) == expected
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("dead", 3)

    replayed = inbox.replay(actor=user_of(company.admin), message=row)

    assert (replayed.status, replayed.attempts) == ("pending", 0)
    assert AuditLog.objects.filter(action="wechat.inbox_replay", object_id=str(row.pk)).exists()
    with pytest.raises(InvalidTransition):
        inbox.replay(actor=user_of(company.admin), message=replayed)


@pytest.mark.django_db
def test_only_an_administrator_may_replay(wechat, failing, company):
    from weiying.core.errors import PermissionDenied

    row = _store()
    InboxMessage.objects.filter(pk=row.pk).update(status="dead")

    with pytest.raises(PermissionDenied):
        inbox.replay(actor=user_of(company.rep_a), message=row)


@pytest.mark.django_db
def test_the_sweeper_requeues_a_row_whose_worker_died(wechat, effects):
    row = _store()
    InboxMessage.objects.filter(pk=row.pk).update(
        status="processing", attempts=1, lease_until=timezone.now() - dt.timedelta(seconds=1))

    assert inbox.sweep() == 1
    assert inbox.drain() == {"done": 1}

    row.refresh_from_db()
    assert (row.status, row.attempts) == ("done", 2)


@pytest.mark.django_db
def test_a_row_someone_else_holds_is_not_processed_twice(wechat, effects):
    row = _store()
    InboxMessage.objects.filter(pk=row.pk).update(
        status="processing", lease_until=timezone.now() + dt.timedelta(minutes=1))

    assert inbox.process(row.pk) is None
    assert inbox.sweep() == 0
    assert effects == []


@pytest.mark.django_db(transaction=True)
def test_four_deliveries_two_at_once_make_exactly_one_business_effect(wechat, effects):
    # given: the callback endpoint, hit by two threads at once, then twice more
    from django.test import Client

    body = wecom_xml(**TEXT)
    barrier = threading.Barrier(2)
    statuses = []

    def deliver():
        try:
            barrier.wait()
            statuses.append(post_wecom(Client(), body).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses += [post_wecom(Client(), body).status_code for _ in range(2)]

    # when: workers process whatever is due, twice over
    inbox.drain()
    inbox.drain()

    # then
    assert statuses == [200, 200, 200, 200]
    row = InboxMessage.objects.get()
    assert (row.deliveries, row.status) == (4, "done")
    assert AuditLog.objects.filter(action="test.effect").count() == 1
