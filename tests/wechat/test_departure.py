import datetime as dt

import pytest
from django.urls import reverse
from django.utils import translation

from tests.conftest import user_of
from tests.wechat.sync_world import drain_all, replay_last, sandbox, snapshot
from weiying.core import events
from weiying.core.errors import ValidationFailed
from weiying.core.models import AuditLog, DomainEvent
from weiying.customers import services as customers
from weiying.customers import subscribers as customer_subscribers
from weiying.customers.models import Customer
from weiying.org import services as org
from weiying.pipeline import subscribers as pipeline_subscribers
from weiying.pipeline.models import Lead, Opportunity
from weiying.pipeline.services import leads, opportunities
from weiying.wechat import departure
from weiying.wechat import subscribers as wechat_subscribers
from weiying.wechat.contacts import full_sync_contacts
from weiying.wechat.models import CustomerFollow, Transfer
from weiying.wechat.sandbox import simulate

pytestmark = pytest.mark.django_db
__all__ = ["sandbox"]

T0 = 1_760_000_000
LEAVE = dt.date(2026, 11, 30)


@pytest.fixture
def world(company, sandbox):
    """rep_a (lilei) follows three customers in WeCom, one together with rep_a2 (zhaoli);
    rep_a also has open and closed opportunities and leads."""
    for employee, userid in ((company.rep_a, "lilei"), (company.rep_a2, "zhaoli"),
                             (company.rep_b, "qianb")):
        org.set_wecom_userid(actor=None, employee=employee, wecom_userid=userid, check=False)
        employee.refresh_from_db()
    sandbox.seed({
        "departments": [{"id": 1, "name": "总部", "parentid": 0}],
        "users": [{"userid": u, "name": u} for u in ("lilei", "zhaoli", "qianb")],
        "external_contacts": [
            {"external_userid": f"wmD{n}", "name": f"客户{n}", "follow_user": [
                {"userid": "lilei", "createtime": T0 + n, "remark": f"备注{n}"},
                *([{"userid": "zhaoli", "createtime": T0 + 99}] if n == 3 else [])]}
            for n in (1, 2, 3)
        ],
    })
    full_sync_contacts()
    customer = Customer.objects.get(wechat_identities__value="wmD1")
    open_opp = opportunities.create_opportunity(actor=None, customer=customer, name="开着的")
    won_opp = opportunities.create_opportunity(actor=None, customer=customer, name="赢了的")
    opportunities.mark_won(actor=None, opportunity=won_opp)
    open_lead = leads.capture_lead(actor=None, name="线索甲", phone="13911112222",
                                   owner=company.rep_a)
    dropped = leads.capture_lead(actor=None, name="线索乙", phone="13911113333",
                                 owner=company.rep_a)
    leads.disqualify_lead(actor=None, lead=dropped, reason="spam")
    # HR removed lilei in WeCom's admin: WeCom now holds the customers for a successor.
    with sandbox.lock:
        del sandbox.users["lilei"]
        sandbox.departed["lilei"] = sandbox.now()
    company.open_opp, company.won_opp = open_opp, won_opp
    company.open_lead, company.dropped_lead = open_lead, dropped
    return company


def dispatch_left(employee):
    event = DomainEvent.objects.filter(name="employee.left", subject_id=str(employee.pk)).get()
    assert events.dispatch(event) == 0
    return event


def leave_with_successor(c, login):
    response = login(c.admin).post(reverse("org:employee_leave", args=[c.rep_a.pk]), {
        "leave_date": LEAVE.isoformat(), "successor": c.rep_a2.number})
    assert response.status_code == 302, response.content.decode()[:2000]
    return dispatch_left(c.rep_a)


def test_a_departure_with_a_successor_hands_everything_over(world, sandbox, login):
    c = world

    event = leave_with_successor(c, login)

    assert event.data["successor_id"] == c.rep_a2.pk
    c.rep_a.refresh_from_db()
    assert (c.rep_a.status, c.rep_a.leave_date) == ("left", LEAVE)
    assert set(Customer.objects.filter(owner=c.rep_a2).values_list("name", flat=True)) == {
        "客户1", "客户2", "客户3"}
    assert not Customer.objects.filter(owner=c.rep_a).exists()
    shared = Customer.objects.get(name="客户3")
    assert list(shared.collaborators.all()) == []  # the successor owns it now
    assert Opportunity.objects.get(pk=c.open_opp.pk).owner == c.rep_a2
    assert Opportunity.objects.get(pk=c.won_opp.pk).owner == c.rep_a
    assert Lead.objects.get(pk=c.open_lead.pk).owner == c.rep_a2
    assert Lead.objects.get(pk=c.dropped_lead.pk).owner == c.rep_a
    assert AuditLog.objects.filter(action="customer.hand_over").count() == 1
    assert DomainEvent.objects.filter(name="customer.assigned").count() == 3
    assert DomainEvent.objects.filter(name="opportunity.reassigned").count() == 1
    # WeCom was asked to move the three contacts, in one call.
    assert sorted(t.external_userid for t in sandbox.transfers) == ["wmD1", "wmD2", "wmD3"]
    assert {t.takeover_userid for t in sandbox.transfers} == {"zhaoli"}
    assert sandbox.calls["/wecom/cgi-bin/externalcontact/resigned/transfer_customer"] == 1
    assert sorted(Transfer.objects.values_list("external_userid", "status")) == [
        ("wmD1", "waiting"), ("wmD2", "waiting"), ("wmD3", "waiting")]


def test_replaying_the_departure_changes_nothing_more(world, sandbox, login):
    c = world
    event = leave_with_successor(c, login)
    before = snapshot()

    for subscriber in (customer_subscribers.hand_over_to_successor,
                       pipeline_subscribers.hand_over_to_successor,
                       wechat_subscribers.transfer_wecom_contacts):
        subscriber(event)
        subscriber(event)

    assert snapshot() == before
    assert len(sandbox.transfers) == 3


def test_settled_transfers_move_the_wecom_tie_to_the_successor(world, sandbox, login):
    c = world
    leave_with_successor(c, login)

    counts = departure.poll_transfers()

    assert counts == {"done": 3, "failed": 0, "waiting": 0}
    assert set(Transfer.objects.values_list("status", flat=True)) == {"done"}
    old = CustomerFollow.objects.get(employee=c.rep_a, external_userid="wmD2")
    new = CustomerFollow.objects.get(employee=c.rep_a2, external_userid="wmD2")
    assert (old.ended_by, new.relation, new.remark, new.ended_at) == (
        "transferred", "owner", "备注2", None)
    shared = CustomerFollow.objects.get(employee=c.rep_a2, external_userid="wmD3")
    assert (shared.relation, shared.added_at) == (  # the successor's own tie stays theirs
        "owner", dt.datetime.fromtimestamp(T0 + 99, dt.UTC))
    assert departure.poll_transfers() == {"done": 0, "failed": 0, "waiting": 0}
    # The next full sync agrees with WeCom: nothing to add, nothing to end.
    result = full_sync_contacts()
    assert (result["follows_created"], result["follows_ended"]) == (0, 0)


def test_a_transfer_fail_callback_shows_first_on_the_managers_page_only(world, sandbox, login):
    c = world
    leave_with_successor(c, login)
    refused = next(t for t in sandbox.transfers if t.external_userid == "wmD2")
    for t in sandbox.transfers:
        t.settle_at = sandbox.now() + (0 if t is refused else 3600)
    sandbox.config.transfer_fail_share = 1.0

    simulate.settle_transfers(sandbox)  # WeCom posts transfer_fail for wmD2
    drain_all()

    failed = Transfer.objects.get(external_userid="wmD2")
    assert (failed.status, failed.error) == ("failed", "customer_refused")
    before = snapshot()
    replay_last()
    assert snapshot() == before

    sandbox.config.transfer_fail_share = 0.0
    simulate.settle_transfers(sandbox, everything=True)
    departure.poll_transfers()
    page = login(c.manager_a).get(reverse("wechat:transfer_list"))
    assert page.status_code == 200
    rows = [r["transfer"].external_userid for r in page.context["rows"]]
    assert rows[0] == "wmD2" and sorted(rows) == ["wmD1", "wmD2", "wmD3"]
    html = page.content.decode()
    assert "客户拒绝了转接；请电话交接，或请客户添加接替人。" in html
    assert "客户2" in html

    other = login(c.manager_b).get(reverse("wechat:transfer_list"))
    assert other.status_code == 200
    assert list(other.context["rows"]) == []
    assert "客户2" not in other.content.decode()


def test_a_refused_transfer_request_is_asked_again_by_the_poll(world, sandbox, login):
    c = world
    with sandbox.lock:  # lilei is still in WeCom's directory: WeCom refuses (40097)
        sandbox.users["lilei"] = simulate.User("lilei", "lilei")
        del sandbox.departed["lilei"]

    leave_with_successor(c, login)

    assert set(Transfer.objects.values_list("status", "error")) == {
        ("requested", "errcode_40097")}
    with sandbox.lock:
        del sandbox.users["lilei"]
        sandbox.departed["lilei"] = sandbox.now()
    departure.poll_transfers()
    assert set(Transfer.objects.values_list("status", flat=True)) == {"done"}


def test_a_departure_without_a_successor_hands_nothing_over(world, sandbox):
    c = world

    org.mark_left(actor=user_of(c.admin), employee=c.rep_a, leave_date=LEAVE)
    event = dispatch_left(c.rep_a)

    assert event.data["successor_id"] is None
    assert Customer.objects.filter(owner=c.rep_a).count() == 3
    assert Transfer.objects.count() == 0
    assert sandbox.transfers == []


def test_the_successor_must_be_a_current_colleague(company):
    admin = user_of(company.admin)
    with translation.override("en"):
        with pytest.raises(ValidationFailed) as own:
            org.mark_left(actor=admin, employee=company.rep_a, leave_date=LEAVE,
                          successor=company.rep_a)
        org.mark_left(actor=admin, employee=company.rep_a2, leave_date=LEAVE)
        with pytest.raises(ValidationFailed) as gone:
            org.mark_left(actor=admin, employee=company.rep_a, leave_date=LEAVE,
                          successor=company.rep_a2)

    assert (own.value.field, own.value.message) == (
        "successor", "A leaver cannot be their own successor; pick a colleague who stays.")
    assert gone.value.message == (
        "赵销售 has left the company; pick a current employee as the successor.")
    company.rep_a.refresh_from_db()
    assert company.rep_a.status == "active"


def test_the_leave_form_refuses_an_unknown_successor_number(company, login):
    response = login(company.admin, language="en").post(
        reverse("org:employee_leave", args=[company.rep_a.pk]),
        {"leave_date": LEAVE.isoformat(), "successor": "E999"})

    assert response.status_code == 200
    assert response.context["form"].errors["successor"] == [
        "No employee numbered E999 among those you may see; check the number."]
    company.rep_a.refresh_from_db()
    assert company.rep_a.status == "active"


def test_the_leave_form_offers_the_successor_picker(company, login):
    page = login(company.admin).get(reverse("org:employee_leave", args=[company.rep_a.pk]))

    assert page.status_code == 200
    assert "接替人（工号）" in page.content.decode()


def test_hand_over_customers_by_a_manager_checks_the_scope(company):
    mine = customers.create_customer(actor=None, name="甲公司", owner=company.rep_a)

    with pytest.raises(ValidationFailed):
        customers.hand_over_customers(actor=user_of(company.manager_a),
                                      from_employee=company.rep_a, to_employee=company.rep_b)
    moved = customers.hand_over_customers(actor=user_of(company.manager_a),
                                          from_employee=company.rep_a,
                                          to_employee=company.rep_a2)

    assert moved == [mine.pk]
    mine.refresh_from_db()
    assert (mine.owner, mine.department) == (company.rep_a2, company.team_a)


def test_a_manager_hands_over_open_opportunities_and_leads_in_scope(company):
    customer = customers.create_customer(actor=None, name="乙公司", owner=company.rep_a)
    opp = opportunities.create_opportunity(actor=None, customer=customer, name="乙商机")
    lead = leads.capture_lead(actor=None, name="乙线索", phone="13922223333",
                              owner=company.rep_a)
    manager = user_of(company.manager_a)

    with pytest.raises(ValidationFailed):
        opportunities.hand_over_opportunities(actor=manager, from_employee=company.rep_a,
                                              to_employee=company.rep_b)
    assert opportunities.hand_over_opportunities(
        actor=manager, from_employee=company.rep_a, to_employee=company.rep_a2) == [opp.pk]
    assert leads.hand_over_leads(actor=manager, from_employee=company.rep_a,
                                 to_employee=company.rep_a2) == [lead.pk]
    opp.refresh_from_db()
    lead.refresh_from_db()
    assert (opp.owner, opp.department, lead.owner, lead.status) == (
        company.rep_a2, company.team_a, company.rep_a2, "assigned")
