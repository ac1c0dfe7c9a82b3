import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.conftest import user_of
from tests.pipeline.opportunities.factories import NOW, make_customer, make_lead, stages
from weiying.customers.models import OwnershipChange
from weiying.pipeline.models import Contract, Receipt, Ticket
from weiying.pipeline.selectors.timeline import TimelineEntry, customer_timeline
from weiying.pipeline.services.followups import log_followup
from weiying.pipeline.services.opportunities import create_opportunity, mark_won, move_stage

pytestmark = pytest.mark.django_db

H = dt.timedelta(hours=1)


@pytest.fixture
def history(company, clock):
    rep = user_of(company.rep_a)
    customer = make_customer(company.rep_a)
    lead = make_lead(company.rep_a, customer=customer, created_at=NOW - 100 * H,
                     converted_at=NOW - 90 * H, status="converted")
    OwnershipChange.objects.create(customer=customer, action="claim", to_owner=company.rep_a,
                                   by=company.rep_a)
    clock.advance(hours=1)
    log_followup(actor=rep, kind="call", note="首次电话", customer=customer)
    clock.advance(hours=1)
    opp = create_opportunity(actor=rep, customer=customer, name="采购", amount="9000")
    clock.advance(hours=1)
    move_stage(actor=rep, opportunity=opp, stage=stages()["方案报价"])
    clock.advance(hours=1)
    mark_won(actor=rep, opportunity=opp)
    contract = Contract.objects.create(
        number="HT-001", title="采购合同", customer=customer, opportunity=opp,
        owner=company.rep_a, department=company.team_a, status="signed",
        total=Decimal("9000"), signed_on=dt.date(2025, 3, 9), created_at=NOW + 5 * H,
    )
    Receipt.objects.create(contract=contract, amount=Decimal("3000"), received_on=dt.date(2025, 3, 8),
                           method="bank")
    Ticket.objects.create(number="T-1", customer=customer, title="安装", owner=company.rep_a,
                          department=company.team_a, opened_at=NOW + 6 * H,
                          respond_by=NOW + 7 * H, resolve_by=NOW + 30 * H,
                          closed_at=NOW + 8 * H, status="closed")
    return customer, lead


def test_timeline_merges_every_kind_newest_first(company, history):
    customer, _lead = history

    entries = customer_timeline(user_of(company.rep_a), customer)

    assert all(isinstance(e, TimelineEntry) for e in entries)
    kinds = [e.kind for e in entries]
    assert kinds == ["ticket_closed", "ticket", "contract", "won", "stage", "opportunity",
                     "followup", "ownership", "contract_signed", "receipt", "lead_converted",
                     "lead"]
    assert [e.at for e in entries] == sorted((e.at for e in entries), reverse=True)
    followup = next(e for e in entries if e.kind == "followup")
    assert (followup.body, followup.actor) == ("首次电话", "李销售")
    stage = next(e for e in entries if e.kind == "stage")
    assert stage.title == "采购：初步接洽 → 方案报价"
    assert stage.url.startswith("/pipeline/opportunities/")


def test_timeline_is_bounded_in_queries(company, history):
    customer, _lead = history
    user = user_of(company.manager_a)
    customer_timeline(user, customer)  # warm the role cache

    with CaptureQueriesContext(connection) as ctx:
        customer_timeline(user, customer)

    assert len(ctx.captured_queries) <= 8


def test_rep_b_sees_nothing_of_rep_a(company, history):
    customer, _lead = history

    assert customer_timeline(user_of(company.rep_b), customer) == []


def test_pool_customer_shows_only_what_the_viewer_may_see(company, history):
    customer, _lead = history
    customer.owner = None
    customer.in_pool = True
    customer.save()

    kinds = {e.kind for e in customer_timeline(user_of(company.rep_b), customer)}

    # rep_b may see the pooled customer, but none of rep_a's follow-ups, deals or contracts.
    assert kinds == {"ownership"}


def test_limit_caps_entries(company, history):
    customer, _lead = history

    entries = customer_timeline(user_of(company.rep_a), customer, limit=3)

    assert [e.kind for e in entries] == ["ticket_closed", "ticket", "contract"]
