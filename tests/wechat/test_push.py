import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.conftest import user_of
from tests.wechat.push_world import (  # noqa: F401 - fixtures
    NOW,
    USERIDS,
    clock_fixture,
    fake_wecom_fixture,
    sandbox_fixture,
    sandbox_messages,
    wecom_ids_fixture,
)
from weiying.catalog.models import Product
from weiying.core import events
from weiying.core.errors import InvalidTransition, PermissionDenied
from weiying.core.models import AuditLog, DomainEvent, EventHandling
from weiying.core.scope import scoped
from weiying.customers.models import Customer
from weiying.org.models import Employee
from weiying.pipeline.models import Contract, FollowUp, Instalment, Lead, Receipt
from weiying.pipeline.services import contracts as contract_svc
from weiying.pipeline.services.followups import log_followup
from weiying.pipeline.services.leads import assign_lead, capture_lead
from weiying.pipeline.tasks_followups import remind_due_followups
from weiying.wechat import jobs, push, subscribers
from weiying.wechat.models import OutboxMessage

pytestmark = pytest.mark.django_db

MINUTE = dt.timedelta(minutes=1)


def card(title="测试", url="http://127.0.0.1:8000/m/"):
    return push.textcard(title=title, lines=["一行"], url=url)


def enqueue(employee, key, **kw):
    return push.enqueue(kind=kw.pop("kind", "test"), employee=employee,
                        content=kw.pop("content", None) or card(), dedup_key=key)


# --- the outbox -------------------------------------------------------------------------------
def test_the_same_event_twice_writes_one_message(wecom_ids, fake_wecom, clock):
    first = enqueue(wecom_ids.rep_a, "lead.assigned:1:to:2:3")
    second = enqueue(wecom_ids.rep_a, "lead.assigned:1:to:2:3")

    assert first is not None and second is None
    assert OutboxMessage.objects.count() == 1
    push.send_due()
    push.send_due()
    assert len(fake_wecom.sent) == 1


def test_a_sent_message_is_a_card_to_the_employee_with_the_app_agent(wecom_ids, fake_wecom,
                                                                     clock):
    row = enqueue(wecom_ids.rep_a, "k1", content=card("新线索", push.absolute_url(
        "mobile:lead_detail", 7)))

    counts = push.send_due()

    body = fake_wecom.sent[0]
    assert counts == {"sent": 1}
    assert body["touser"] == "lilei" and body["agentid"] == 1000002
    assert body["msgtype"] == "textcard"
    assert body["textcard"]["url"] == "http://127.0.0.1:8000/m/leads/7/"
    assert body["enable_duplicate_check"] == 1
    row.refresh_from_db()
    assert (row.status, row.wecom_msgid, row.sent_at, row.attempts) == ("sent", "MSG1", NOW, 1)


def test_card_links_follow_the_base_url_setting(settings):
    settings.WEIYING_BASE_URL = "https://crm.example.com"

    assert push.absolute_url("mobile:my_day") == "https://crm.example.com/m/"


def test_a_long_card_is_cut_to_what_wecom_accepts():
    content = push.textcard(title="标" * 100, lines=["行" * 150] * 5, url="http://x/")["textcard"]

    assert len(content["title"].encode()) <= 128 and content["title"].endswith("…")
    assert len(content["description"].encode()) <= 512
    assert content["description"].count("<div") == content["description"].count("</div>")


def test_an_employee_without_a_wecom_id_gets_a_skipped_row(company, fake_wecom, clock):
    row = enqueue(company.rep_a, "k-no-id")

    push.send_due()

    assert row.status == "skipped" and row.last_error == "the employee has no WeCom user id"
    assert OutboxMessage.objects.get(pk=row.pk).status == "skipped"
    assert fake_wecom.sent == []


def test_an_employee_who_left_gets_a_skipped_row(wecom_ids, fake_wecom, clock):
    Employee.objects.filter(pk=wecom_ids.rep_a.pk).update(status="left")
    wecom_ids.rep_a.refresh_from_db()

    row = enqueue(wecom_ids.rep_a, "k-left")

    assert (row.status, row.last_error) == ("skipped", "the employee has left")


def test_forty_messages_in_a_minute_send_25_and_the_rest_a_minute_later(wecom_ids, fake_wecom,
                                                                        clock):
    for n in range(40):
        enqueue(wecom_ids.rep_a, f"burst:{n}")

    first = push.send_due()
    postponed = OutboxMessage.objects.filter(status="pending")
    clock.advance(seconds=30)
    meanwhile = push.send_due()
    clock.advance(seconds=31)
    later = push.send_due()

    assert first == {"sent": 25, "postponed": 15}
    assert meanwhile == {}  # nothing due: the postponed wait for their slot
    assert later == {"sent": 15}
    assert OutboxMessage.objects.filter(status="sent").count() == 40
    assert len(fake_wecom.to("lilei")) == 40
    sent_at = sorted(OutboxMessage.objects.values_list("sent_at", flat=True))
    assert sent_at[:25] == [NOW] * 25 and sent_at[25:] == [NOW + MINUTE + dt.timedelta(
        seconds=1)] * 15
    assert not postponed.exists()


def test_postponed_rows_wait_for_the_first_slot_to_free(wecom_ids, fake_wecom, clock):
    for n in range(26):
        enqueue(wecom_ids.rep_a, f"slot:{n}")

    push.send_due()

    assert OutboxMessage.objects.get(status="pending").not_before == NOW + MINUTE


def test_pacing_is_per_recipient(wecom_ids, fake_wecom, clock):
    for n in range(30):
        enqueue(wecom_ids.rep_a, f"a:{n}")
        enqueue(wecom_ids.rep_b, f"b:{n}")

    counts = push.send_due()

    assert counts == {"sent": 50, "postponed": 10}
    assert len(fake_wecom.to("lilei")) == 25 and len(fake_wecom.to("qianxs")) == 25


def test_the_hourly_budget_postpones_to_the_hour(wecom_ids, fake_wecom, clock, settings):
    settings.WECHAT = {**settings.WECHAT, "PUSH_PER_MINUTE": 25, "PUSH_PER_HOUR": 30}
    for n in range(40):
        enqueue(wecom_ids.rep_a, f"hour:{n}")

    push.send_due()
    clock.advance(minutes=1, seconds=1)
    push.send_due()

    assert OutboxMessage.objects.filter(status="sent").count() == 30
    waiting = set(OutboxMessage.objects.filter(status="pending").values_list("not_before",
                                                                              flat=True))
    assert waiting == {NOW + dt.timedelta(hours=1)}


def test_a_transient_failure_is_retried_with_backoff_then_given_up(wecom_ids, fake_wecom, clock,
                                                                   settings):
    settings.WECHAT = {**settings.WECHAT, "PUSH_MAX_ATTEMPTS": 3}
    fake_wecom.answers = [503, 503, 503]
    row = enqueue(wecom_ids.rep_a, "flaky")

    waits = []
    for _attempt in range(3):
        push.send_due()
        row.refresh_from_db()
        waits.append((row.not_before - clock.now).total_seconds())
        clock.now = row.not_before

    assert (row.status, row.attempts) == ("dead", 3)
    assert row.last_error == "WeChatError: /cgi-bin/message/send: HTTP 503"
    assert 7.5 <= waits[0] <= 22.5 and 15 <= waits[1] <= 45  # 15 s, 30 s, ±50 % jitter
    assert len(fake_wecom.sent) == 3
    assert push.send_due() == {}  # a dead row is not tried again


def test_a_rate_limit_waits_at_least_what_wecom_asks(wecom_ids, fake_wecom, clock):
    fake_wecom.answers = [{"errcode": 45009, "errmsg": "api freq out of limit"}]
    row = enqueue(wecom_ids.rep_a, "limited")

    assert push.send_due() == {"failed": 1}

    row.refresh_from_db()
    assert row.status == "failed" and row.not_before >= NOW + dt.timedelta(seconds=60)
    assert row.last_error.startswith("RateLimited: /cgi-bin/message/send: 45009")


@pytest.mark.parametrize("answer", [
    {"errcode": 0, "errmsg": "ok", "invaliduser": "lilei", "msgid": "M"},
    {"errcode": 81013, "errmsg": "user & party & tag all invalid", "invaliduser": "lilei"},
])
def test_an_invalid_user_is_a_permanent_failure(wecom_ids, fake_wecom, clock, answer):
    fake_wecom.answers = [answer]
    row = enqueue(wecom_ids.rep_a, "invalid")

    assert push.send_due() == {"dead": 1}

    row.refresh_from_db()
    assert (row.status, row.attempts) == ("dead", 1)
    assert "lilei" in row.last_error or "81013" in row.last_error


def test_nothing_is_sent_while_wecom_is_not_configured(wecom_ids, clock):
    row = enqueue(wecom_ids.rep_a, "later")

    assert push.send_due() == {}
    assert OutboxMessage.objects.get(pk=row.pk).status == "pending"


def test_a_stalled_send_is_returned_to_the_queue(wecom_ids, fake_wecom, clock):
    row = enqueue(wecom_ids.rep_a, "stalled")
    OutboxMessage.objects.filter(pk=row.pk).update(
        status="sending", attempts=1, lease_until=NOW - dt.timedelta(seconds=1))

    assert push.send_due() == {"sent": 1}
    assert OutboxMessage.objects.get(pk=row.pk).attempts == 2


def test_an_administrator_retries_a_dead_message_to_the_current_wecom_id(wecom_ids, fake_wecom,
                                                                         clock):
    row = enqueue(wecom_ids.rep_a, "dead-one")
    OutboxMessage.objects.filter(pk=row.pk).update(status="dead", attempts=6,
                                                   to_userid="old-id", last_error="invaliduser")
    row.refresh_from_db()

    push.retry_message(actor=user_of(wecom_ids.admin), message=row)
    push.send_due()

    row.refresh_from_db()
    assert (row.status, row.to_userid, row.attempts) == ("sent", "lilei", 1)
    log = AuditLog.objects.get(action="wechat.outbox_retry")
    assert log.before["status"] == "dead" and log.before["to_userid"] == "old-id"


def test_only_a_dead_message_may_be_retried_and_only_by_an_administrator(wecom_ids, clock):
    row = enqueue(wecom_ids.rep_a, "pending-one")

    with pytest.raises(InvalidTransition) as refused:
        push.retry_message(actor=user_of(wecom_ids.admin), message=row)
    with pytest.raises(PermissionDenied):
        push.retry_message(actor=user_of(wecom_ids.manager_a), message=row)

    assert str(refused.value.message) == "只有已放弃的消息才能重试；这条消息的状态是：等待中。"


# --- what is pushed ---------------------------------------------------------------------------
def new_lead(by, name, owner, **fields):
    return capture_lead(actor=user_of(by), name=name, phone="13900001111", owner=owner,
                        **fields)


def test_an_assigned_lead_is_a_card_to_its_new_owner(wecom_ids, fake_wecom, clock,
                                                     django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        lead = new_lead(wecom_ids.manager_a, "张先生", wecom_ids.rep_a,
                        company_name="杭州云帆", source="exhibition")

    (body,) = fake_wecom.sent
    assert body["touser"] == "lilei"
    assert body["textcard"]["title"] == "给你的新线索：张先生"
    assert body["textcard"]["description"] == (
        '<div class="gray">公司：杭州云帆</div><div class="gray">来源：展会</div>')
    assert body["textcard"]["url"] == f"http://127.0.0.1:8000/m/leads/{lead.pk}/"
    assert fake_wecom.to("qianxs") == []


def test_a_lead_card_leaves_out_empty_lines_and_names_the_channel(
        wecom_ids, fake_wecom, clock, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        new_lead(wecom_ids.manager_a, "刘女士", wecom_ids.rep_a, source="wecom",
                 channel="展会2026")
        new_lead(wecom_ids.manager_a, "王女士", wecom_ids.rep_a, interest="年度服务")

    cards = {b["textcard"]["title"]: b["textcard"]["description"] for b in fake_wecom.sent}
    assert cards == {
        "给你的新线索：刘女士": '<div class="gray">来源：企业微信 · 渠道：展会2026</div>',
        "给你的新线索：王女士": ('<div class="gray">来源：网页表单</div>'
                          '<div class="gray">意向：年度服务</div>'),
    }


def test_a_replayed_assignment_event_is_still_one_message(wecom_ids, fake_wecom, clock,
                                                          django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        new_lead(wecom_ids.manager_a, "重放", wecom_ids.rep_a)
    event = DomainEvent.objects.get(name="lead.assigned")

    EventHandling.objects.filter(event=event).delete()  # as if the record of it was lost
    events.replay(DomainEvent.objects.filter(pk=event.pk))
    subscribers.push_lead_assigned(event)

    assert OutboxMessage.objects.filter(kind="lead.assigned").count() == 1


def test_a_lead_given_to_someone_else_since_is_not_pushed_to_the_old_owner(wecom_ids,
                                                                           fake_wecom, clock):
    lead = new_lead(wecom_ids.manager_a, "转手", wecom_ids.rep_a)
    assign_lead(actor=user_of(wecom_ids.manager_a), lead=lead, owner=wecom_ids.rep_a2)
    first, second = DomainEvent.objects.filter(name="lead.assigned").order_by("pk")

    subscribers.push_lead_assigned(first)
    subscribers.push_lead_assigned(second)

    assert list(OutboxMessage.objects.values_list("to_userid", flat=True)) == ["zhaoxs"]


def test_rep_b_never_gets_rep_a_lead(wecom_ids, fake_wecom, clock,
                                     django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        new_lead(wecom_ids.manager_a, "甲的", wecom_ids.rep_a)
        new_lead(wecom_ids.manager_b, "乙的", wecom_ids.rep_b)

    titles = {b["touser"]: b["textcard"]["title"] for b in fake_wecom.sent}
    assert titles == {"lilei": "给你的新线索：甲的", "qianxs": "给你的新线索：乙的"}


def test_a_recycle_warning_is_a_card_to_the_owner(wecom_ids, fake_wecom, clock,
                                                  django_capture_on_commit_callbacks):
    from weiying.customers.services import recycle_customers

    customer = Customer.objects.create(
        name="快回收公司", name_key="快回收公司", owner=wecom_ids.rep_a,
        department=wecom_ids.team_a, owned_since=NOW - dt.timedelta(days=40),
        last_followup_at=NOW - dt.timedelta(days=28), last_activity_at=NOW,
    )

    with django_capture_on_commit_callbacks(execute=True):
        recycle_customers(now=NOW)

    (body,) = fake_wecom.sent
    assert body["touser"] == "lilei"
    assert body["textcard"]["title"] == "快回收公司 即将回到公海"
    assert "2025-03-12" in body["textcard"]["description"]
    assert body["textcard"]["url"] == f"http://127.0.0.1:8000/m/customers/{customer.pk}/"


@pytest.fixture
def product(db):
    return Product.objects.create(code="P-PUSH", name="SaaS 年费", list_price=Decimal("1000.00"),
                                  vat_rate=Decimal("0.06"))


def _contract(owner, product, *, discount="0.20", name="上海甲公司"):
    customer = Customer.objects.create(name=name, name_key=name, owner=owner,
                                       department=owner.department, last_activity_at=NOW)
    return contract_svc.create_contract(
        actor=user_of(owner), customer=customer, title="年度服务",
        lines=[{"product": product, "quantity": "1", "unit_price": "1000.00",
                "discount": discount}])


def test_a_contract_waiting_for_approval_goes_to_the_nearest_approver(
        wecom_ids, fake_wecom, clock, product, django_capture_on_commit_callbacks):
    contract_a = _contract(wecom_ids.rep_a, product)
    contract_b = _contract(wecom_ids.rep_b, product, name="北京丙公司")

    with django_capture_on_commit_callbacks(execute=True):
        contract_svc.submit_contract(actor=user_of(wecom_ids.rep_a), contract=contract_a)
        contract_svc.submit_contract(actor=user_of(wecom_ids.rep_b), contract=contract_b)

    sent = {b["touser"]: b["textcard"] for b in fake_wecom.sent}
    assert set(sent) == {"wangjl", "sunjl"}  # manager_a for rep_a, manager_b for rep_b
    assert sent["wangjl"]["title"] == f"待你审批：{contract_a.number}"
    assert "上海甲公司" in sent["wangjl"]["description"]
    assert "¥800.00" in sent["wangjl"]["description"] and "20.0%" in sent["wangjl"]["description"]
    # the phone contract page, where the approver approves or rejects with one tap
    assert sent["wangjl"]["url"] == f"http://127.0.0.1:8000/m/contracts/{contract_a.pk}/"


def test_a_department_head_above_the_owner_is_asked_too(wecom_ids, fake_wecom, clock, product,
                                                        django_capture_on_commit_callbacks):
    from weiying.org.models import Department
    from weiying.org.services import change_leader

    Department.objects.filter(pk=wecom_ids.east.pk).update(manager=wecom_ids.director)
    change_leader(actor=None, employee=wecom_ids.rep_a, leader=None, check=False)
    wecom_ids.rep_a.refresh_from_db()
    contract = _contract(wecom_ids.rep_a, product)

    with django_capture_on_commit_callbacks(execute=True):
        contract_svc.submit_contract(actor=user_of(wecom_ids.rep_a), contract=contract)

    assert [b["touser"] for b in fake_wecom.sent] == ["zhouzj"]


def test_an_auto_approved_contract_asks_nobody(wecom_ids, fake_wecom, clock, product,
                                               django_capture_on_commit_callbacks):
    contract = _contract(wecom_ids.rep_a, product, discount="0")

    with django_capture_on_commit_callbacks(execute=True):
        contract_svc.submit_contract(actor=user_of(wecom_ids.rep_a), contract=contract)

    assert fake_wecom.sent == []


def test_a_due_followup_is_a_card_to_its_owner_once(wecom_ids, fake_wecom, clock,
                                                    django_capture_on_commit_callbacks):
    customer = Customer.objects.create(name="跟进公司", name_key="跟进公司", owner=wecom_ids.rep_a,
                                       department=wecom_ids.team_a, last_activity_at=NOW)
    plan = log_followup(actor=user_of(wecom_ids.rep_a), kind="call", note="约了下周演示",
                        customer=customer, at=NOW - dt.timedelta(hours=1),
                        next_at=NOW + dt.timedelta(minutes=10))

    with django_capture_on_commit_callbacks(execute=True):
        remind_due_followups(now=NOW)
    event = DomainEvent.objects.get(name="followup.due")
    subscribers.push_followup_due(event)  # replayed

    (body,) = fake_wecom.sent
    assert body["touser"] == "lilei"
    assert body["textcard"]["title"] == "09:10 跟进 跟进公司"
    assert body["textcard"]["description"] == '<div class="gray">上次：约了下周演示</div>'
    assert body["textcard"]["url"] == (
        f"http://127.0.0.1:8000/m/followups/new/?customer={customer.pk}")
    assert event.data == {"owner_id": wecom_ids.rep_a.pk,
                          "due_at": (NOW + dt.timedelta(minutes=10)).isoformat()}
    assert OutboxMessage.objects.get().dedup_key == (
        f"followup.due:{plan.pk}:{int((NOW + dt.timedelta(minutes=10)).timestamp())}")


def _signed(owner, product, *, signed_on, total="1000.00", name="签约公司"):
    customer = Customer.objects.create(name=name, name_key=name, owner=owner,
                                       department=owner.department, last_activity_at=NOW)
    return Contract.objects.create(
        number=f"HT-{name}", title="合同", customer=customer, owner=owner,
        department=owner.department, status="signed", total=Decimal(total),
        signed_on=signed_on, created_at=NOW)


def test_overdue_instalments_go_to_the_owner_and_their_manager_once_a_day(wecom_ids, fake_wecom,
                                                                         clock, product):
    today = timezone.localdate()
    late_a = Instalment.objects.create(
        contract=_signed(wecom_ids.rep_a, product, signed_on=today, name="甲"), seq=1,
        due_on=today - dt.timedelta(days=3), amount=Decimal("500.00"),
        collected=Decimal("100.00"))
    Instalment.objects.create(
        contract=_signed(wecom_ids.rep_b, product, signed_on=today, name="乙"), seq=1,
        due_on=today - dt.timedelta(days=1), amount=Decimal("200.00"))
    Instalment.objects.create(  # collected in full: not overdue
        contract=late_a.contract, seq=2, due_on=today - dt.timedelta(days=1),
        amount=Decimal("300.00"), collected=Decimal("300.00"))

    jobs.push_overdue_instalments(today=today)
    jobs.push_overdue_instalments(today=today)  # a second run the same day
    push.send_due()

    to = sorted((b["touser"], b["textcard"]["title"]) for b in fake_wecom.sent)
    assert to == [("lilei", "回款逾期：HT-甲 第 1 期"), ("qianxs", "回款逾期：HT-乙 第 1 期"),
                  ("sunjl", "回款逾期：HT-乙 第 1 期"), ("wangjl", "回款逾期：HT-甲 第 1 期")]
    assert "¥400.00" in fake_wecom.to("lilei")[0]["textcard"]["description"]
    assert fake_wecom.to("lilei")[0]["textcard"]["url"] == (
        f"http://127.0.0.1:8000/m/contracts/{late_a.contract_id}/")

    jobs.push_overdue_instalments(today=today + dt.timedelta(days=1))
    assert OutboxMessage.objects.filter(kind="instalment.overdue").count() == 8


def test_a_manager_whose_scope_does_not_hold_the_contract_is_not_told(wecom_ids, fake_wecom,
                                                                     clock, product):
    from weiying.org.models import Role

    Employee.objects.filter(pk=wecom_ids.manager_a.pk).update(role=Role.objects.get(code="rep"))
    today = timezone.localdate()
    Instalment.objects.create(
        contract=_signed(wecom_ids.rep_a, product, signed_on=today, name="甲"), seq=1,
        due_on=today - dt.timedelta(days=3), amount=Decimal("500.00"))

    jobs.push_overdue_instalments(today=today)

    assert list(OutboxMessage.objects.values_list("to_userid", flat=True)) == ["lilei"]


# --- the morning summary ----------------------------------------------------------------------
@pytest.fixture
def day_world(wecom_ids, clock, product):
    """What the 08:30 card counts, made by hand (see EXPECTED)."""
    c = wecom_ids
    today = timezone.localdate()
    yesterday = today - dt.timedelta(days=1)

    def plan(owner, next_at, *, done=False):
        customer = Customer.objects.create(name=f"客户{owner.pk}{next_at}", name_key="k",
                                           owner=owner, department=owner.department,
                                           last_activity_at=NOW)
        FollowUp.objects.create(kind="call", note="n", customer=customer, owner=owner,
                                at=NOW - dt.timedelta(days=2), next_at=next_at, next_done=done)

    hour = dt.timedelta(hours=1)
    plan(c.rep_a, NOW - 24 * hour)  # overdue: counts
    plan(c.rep_a, NOW + 6 * hour)  # 15:00 today
    plan(c.rep_a, NOW + 30 * hour)  # tomorrow: not yet
    plan(c.rep_a, NOW - hour, done=True)  # done
    plan(c.rep_a2, NOW + hour)
    plan(c.rep_b, NOW + hour)
    plan(c.manager_a, NOW + hour)

    def lead(owner, status, department=None):
        Lead.objects.create(name="线索", owner=owner, status=status,
                            department=department or owner.department, last_activity_at=NOW,
                            created_at=NOW)

    lead(c.rep_a, "assigned")
    lead(c.rep_a, "contacted")
    lead(c.rep_b, "new")
    lead(None, "new", department=c.team_a)  # waiting in team A's queue

    signed_a = _signed(c.rep_a, product, signed_on=yesterday, total="1000.00", name="甲")
    signed_b = _signed(c.rep_b, product, signed_on=yesterday, total="500.00", name="乙")
    older = _signed(c.rep_a2, product, signed_on=yesterday - dt.timedelta(days=1),
                    total="700.00", name="丙")
    Receipt.objects.create(contract=signed_a, amount=Decimal("300.00"), received_on=yesterday,
                           method="bank")
    Receipt.objects.create(contract=signed_b, amount=Decimal("200.00"), received_on=yesterday,
                           method="bank")
    Receipt.objects.create(contract=older, amount=Decimal("50.00"), received_on=today,
                           method="bank")
    return c


# persona -> (due follow-ups, new leads, signed yesterday, signed total, collected yesterday)
EXPECTED = {
    "rep_a": (2, 1, 1, "1000.00", "300.00"),
    "rep_a2": (1, 0, 0, "0", "0"),
    "rep_b": (1, 1, 1, "500.00", "200.00"),
    "manager_a": (4, 2, 1, "1000.00", "300.00"),
    "director": (4, 2, 1, "1000.00", "300.00"),
    "manager_b": (1, 1, 1, "500.00", "200.00"),
}


def test_the_summary_figures_match_a_hand_count(day_world):
    figures = jobs.summary_figures(timezone.localdate())
    people = {p.pk: p for p in jobs.summary_recipients()}

    got = {}
    for who in EXPECTED:
        s = jobs.summary_of(people[getattr(day_world, who).pk], figures)
        got[who] = (s["due"], s["leads"], s["signed"], s["signed_total"], s["collected"])

    assert got == {who: (d, n, k, Decimal(t), Decimal(c))
                   for who, (d, n, k, t, c) in EXPECTED.items()}
    # those who see everything get no sales summary
    assert {p.pk for p in people.values()} == {getattr(day_world, w).pk for w in EXPECTED}


def test_the_summary_figures_are_the_data_scope_of_each_person(day_world):
    today = timezone.localdate()
    yesterday = today - dt.timedelta(days=1)
    end = timezone.make_aware(dt.datetime.combine(today + dt.timedelta(days=1), dt.time.min))
    figures = jobs.summary_figures(today)
    people = {p.pk: p for p in jobs.summary_recipients()}

    for who in EXPECTED:
        user = user_of(getattr(day_world, who))
        s = jobs.summary_of(people[getattr(day_world, who).pk], figures)
        assert s["due"] == scoped(FollowUp.objects.filter(
            next_done=False, next_at__lte=end), user).count(), who
        assert s["leads"] == scoped(Lead.objects.filter(status__in=["new", "assigned"]),
                                    user).count(), who
        assert s["signed"] == scoped(Contract.objects.filter(signed_on=yesterday),
                                     user).count(), who
        assert s["collected"] == sum(scoped(Receipt.objects.filter(received_on=yesterday),
                                            user).values_list("amount", flat=True)), who


@pytest.mark.parametrize("kind", ["line", "department"])
def test_line_and_department_scopes_are_summed_like_the_data_scope(day_world, kind):
    from weiying.org.models import Role

    role = Role.objects.create(code=f"m-{kind}", name=kind, data_scope=kind,
                               permissions=["lead.edit"])
    Employee.objects.filter(pk=day_world.manager_a.pk).update(role=role)
    today = timezone.localdate()
    end = timezone.make_aware(dt.datetime.combine(today + dt.timedelta(days=1), dt.time.min))
    user = user_of(day_world.manager_a)

    person = next(p for p in jobs.summary_recipients() if p.pk == day_world.manager_a.pk)
    s = jobs.summary_of(person, jobs.summary_figures(today))

    assert s["due"] == scoped(FollowUp.objects.filter(next_done=False, next_at__lte=end),
                              user).count() == 4
    assert s["leads"] == scoped(Lead.objects.filter(status__in=["new", "assigned"]),
                                user).count() == (1 if kind == "line" else 2)
    assert s["signed_total"] == Decimal("1000.00")


def test_the_summary_card_reads_the_figures(day_world):
    jobs.push_daily_summaries(today=timezone.localdate())

    rows = {r.to_userid: r.content for r in OutboxMessage.objects.filter(kind="summary")}
    assert set(rows) == {USERIDS[w] for w in EXPECTED}
    assert rows["lilei"]["msgtype"] == "markdown"
    assert rows["lilei"]["markdown"]["content"] == "\n".join([
        "**你的今天 · 2025-03-10**",
        "> 李销售",
        "今天到期的跟进（含逾期）：2",
        "等待首次联系的新线索：1",
        "昨日签约：1 单，¥1,000.00",
        "昨日回款：¥300.00",
        "[打开我的一天](http://127.0.0.1:8000/m/)",
    ])
    assert rows["wangjl"]["markdown"]["content"].startswith(
        "**你的团队今天 · 2025-03-10**\n> 上海一组（你可见的范围）\n今天到期的跟进（含逾期）：4\n")


def test_the_summary_is_written_once_per_person_per_day(day_world):
    jobs.push_daily_summaries(today=timezone.localdate())
    jobs.push_daily_summaries(today=timezone.localdate())

    assert OutboxMessage.objects.filter(kind="summary").count() == len(EXPECTED)


def test_the_summary_takes_the_same_queries_for_six_people_or_sixty(day_world):
    with CaptureQueriesContext(connection) as few:
        jobs.push_daily_summaries(today=timezone.localdate())
    Role = day_world.rep_a.role.__class__
    rep = Role.objects.get(code="rep")
    for n in range(54):
        Employee.objects.create(number=f"X{n:03d}", name=f"新人{n}", department=day_world.team_b,
                                department_path=day_world.team_b.path, role=rep,
                                path=f"{90000000 + n:08d}", wecom_userid=f"x{n}")
    OutboxMessage.objects.all().delete()

    with CaptureQueriesContext(connection) as many:
        written = jobs.push_daily_summaries(today=timezone.localdate())

    assert written == 60
    assert len(few) == len(many) == 8, [q["sql"][:80] for q in many.captured_queries]


# --- against the sandbox ----------------------------------------------------------------------
def test_the_sandbox_receives_all_forty_and_drops_none(sandbox, clock):
    for n in range(40):
        enqueue(sandbox_people(), f"sandbox:{n}")

    push.send_due()
    clock.advance(seconds=61)
    push.send_due()

    messages = sandbox_messages(sandbox, "lilei")
    assert len(messages) == 40
    assert [m for m in messages if m["dropped"]] == []
    assert messages[0]["msgtype"] == "textcard"


def test_the_sandbox_names_an_unknown_member_and_the_row_is_given_up(sandbox, clock):
    Employee.objects.filter(number="E030").update(wecom_userid="nobody-here")
    row = enqueue(Employee.objects.get(number="E030"), "sandbox:unknown")

    assert push.send_due() == {"dead": 1}
    row.refresh_from_db()
    assert row.status == "dead" and "81013" in row.last_error


def sandbox_people():
    return Employee.objects.get(number="E030")  # rep_a, "lilei" in the sandbox


# --- the outbox desk --------------------------------------------------------------------------
def test_the_outbox_desk_is_for_administrators_only(wecom_ids, login):
    for who in ("rep_a", "manager_a", "director", "finance"):
        assert login(getattr(wecom_ids, who)).get("/wechat/outbox/").status_code == 403, who

    assert login(wecom_ids.admin).get("/wechat/outbox/").status_code == 200


def test_the_outbox_desk_shows_texts_and_filters_by_status_and_kind(wecom_ids, login, clock):
    enqueue(wecom_ids.rep_a, "d1", kind="lead.assigned", content=card("给你的新线索：甲"))
    enqueue(wecom_ids.rep_b, "d2", kind="summary", content=push.markdown("**你的今天**"))
    dead = enqueue(wecom_ids.rep_a2, "d3", kind="lead.assigned", content=card("死信"))
    OutboxMessage.objects.filter(pk=dead.pk).update(status="dead", last_error="invaliduser")
    desk = login(wecom_ids.admin)

    everything = desk.get("/wechat/outbox/").content.decode()
    dead_only = desk.get("/wechat/outbox/", {"status": "dead"}).content.decode()
    summaries = desk.get("/wechat/outbox/", {"kind": "summary"}).content.decode()

    assert "给你的新线索：甲 · 一行" in everything and "**你的今天**" in everything
    assert "死信" in dead_only and "给你的新线索：甲" not in dead_only
    assert dead_only.count('name="message"') == 1  # the retry button, on the dead row only
    assert "**你的今天**" in summaries and "死信" not in summaries


def test_the_retry_button_queues_a_dead_message_again(wecom_ids, login, clock):
    dead = enqueue(wecom_ids.rep_a, "d4")
    OutboxMessage.objects.filter(pk=dead.pk).update(status="dead")

    response = login(wecom_ids.admin).post("/wechat/outbox/retry/", {
        "message": dead.pk, "back": "/wechat/outbox/?status=dead"})

    assert response.status_code == 302 and response["Location"] == "/wechat/outbox/?status=dead"
    assert OutboxMessage.objects.get(pk=dead.pk).status == "pending"
    assert AuditLog.objects.filter(action="wechat.outbox_retry").count() == 1


def test_a_retry_by_someone_else_is_refused_and_changes_nothing(wecom_ids, login, clock):
    dead = enqueue(wecom_ids.rep_a, "d5")
    OutboxMessage.objects.filter(pk=dead.pk).update(status="dead")

    response = login(wecom_ids.manager_a).post("/wechat/outbox/retry/", {"message": dead.pk})

    assert response.status_code == 403
    assert OutboxMessage.objects.get(pk=dead.pk).status == "dead"


def test_a_ticket_past_its_deadline_tells_its_assignee_and_their_manager_once(
        wecom_ids, fake_wecom, clock, django_capture_on_commit_callbacks):
    from weiying.pipeline.models import Ticket
    from weiying.pipeline.tasks_tickets import log_sla_breaches

    customer = Customer.objects.create(name="售后公司", name_key="售后公司", owner=wecom_ids.rep_a,
                                       department=wecom_ids.team_a, last_activity_at=NOW)
    ticket = Ticket.objects.create(
        number="SH-0001", title="设备无法开机", customer=customer, owner=wecom_ids.rep_a,
        department=wecom_ids.team_a, priority="high", status="open",
        opened_at=NOW - dt.timedelta(hours=10), respond_by=NOW - dt.timedelta(hours=2),
        resolve_by=NOW + dt.timedelta(hours=20))

    with django_capture_on_commit_callbacks(execute=True):
        log_sla_breaches()
    with django_capture_on_commit_callbacks(execute=True):
        log_sla_breaches()  # the next run: already announced
    event = DomainEvent.objects.get(name="ticket.sla_breached")
    subscribers.push_sla_breached(event)  # replayed

    sent = sorted(fake_wecom.sent, key=lambda body: body["touser"])
    assert [body["touser"] for body in sent] == sorted([USERIDS["rep_a"], USERIDS["manager_a"]])
    card = sent[0]["textcard"]
    assert card["title"] == "已超时：SH-0001"
    assert card["url"] == f"http://127.0.0.1:8000/pipeline/tickets/{ticket.pk}/"
    assert "首次响应" in card["description"]
    assert OutboxMessage.objects.filter(kind="ticket.sla_breached").count() == 2
