import datetime as dt

import pytest
from django.utils import timezone

from tests.conftest import user_of
from tests.customers.conftest import make_customer, pipeline_rows
from weiying.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from weiying.core.models import AuditLog, DomainEvent
from weiying.customers import services
from weiying.customers.models import Customer, OwnershipChange

pytestmark = pytest.mark.django_db


def in_pool(company, pool_department="east"):
    return make_customer(None, pool_department=getattr(company, pool_department)
                         if pool_department else None)


# --- release --------------------------------------------------------------------------------
def test_owner_releases_to_the_pool_of_their_branch(company):
    customer = make_customer(company.rep_a)

    services.release_customer(actor=user_of(company.rep_a), customer=customer,
                              reason="客户暂无需求")

    customer.refresh_from_db()
    assert customer.in_pool is True
    assert customer.owner is None
    assert customer.pool_department == company.east
    assert customer.released_at is not None
    change = OwnershipChange.objects.get(customer=customer, action="release")
    assert (change.from_owner, change.by, change.reason) == (company.rep_a, company.rep_a,
                                                             "客户暂无需求")
    assert AuditLog.objects.filter(action="customer.release").count() == 1
    assert DomainEvent.objects.filter(name="customer.released",
                                      data__from_owner_id=company.rep_a.pk).count() == 1


def test_release_without_a_branch_goes_to_the_company_pool(company):
    customer = make_customer(company.admin)

    services.release_customer(actor=None, customer=customer, reason="离职交接")

    customer.refresh_from_db()
    assert customer.in_pool is True
    assert customer.pool_department is None


def test_manager_may_release_a_reps_customer(company):
    customer = make_customer(company.rep_a)

    services.release_customer(actor=user_of(company.manager_a), customer=customer,
                              reason="长期未跟进")

    assert OwnershipChange.objects.get(action="release").by == company.manager_a


def test_another_rep_cannot_release_a_customer_they_cannot_see(company):
    customer = make_customer(company.rep_a)

    with pytest.raises(NotFound):
        services.release_customer(actor=user_of(company.rep_a2), customer=customer,
                                  reason="x")


def test_release_needs_a_reason(company):
    customer = make_customer(company.rep_a)

    with pytest.raises(ValidationFailed) as exc:
        services.release_customer(actor=user_of(company.rep_a), customer=customer, reason=" ")

    assert exc.value.field == "reason"


def test_release_of_a_pool_customer_is_refused(company):
    customer = in_pool(company)

    with pytest.raises(Conflict) as exc:
        services.release_customer(actor=user_of(company.manager_a), customer=customer,
                                  reason="x")

    assert exc.value.code == "not_owned"


# --- claim ----------------------------------------------------------------------------------
def test_claim_makes_the_rep_the_owner(company):
    customer = in_pool(company)
    rep = user_of(company.rep_a)

    services.claim_customer(actor=rep, customer=customer)

    customer.refresh_from_db()
    assert customer.owner == company.rep_a
    assert customer.in_pool is False
    assert customer.pool_department is None
    assert customer.department == company.team_a
    assert customer.owned_since is not None
    assert OwnershipChange.objects.filter(customer=customer, action="claim",
                                          to_owner=company.rep_a).count() == 1
    assert AuditLog.objects.filter(action="customer.claim", actor=rep).count() == 1
    assert DomainEvent.objects.filter(name="customer.claimed").count() == 1


def test_claim_of_an_owned_customer_is_refused(company):
    customer = in_pool(company)
    services.claim_customer(actor=user_of(company.rep_a), customer=customer)

    with pytest.raises(Conflict) as exc:
        services.claim_customer(actor=user_of(company.manager_a), customer=customer)

    assert exc.value.code == "not_in_pool"


def test_a_claimed_customer_is_no_longer_found_by_a_rep_who_cannot_see_it(company):
    customer = in_pool(company)
    services.claim_customer(actor=user_of(company.rep_a), customer=customer)

    with pytest.raises(NotFound):
        services.claim_customer(actor=user_of(company.rep_a2), customer=customer)


def test_claim_from_another_branchs_pool_is_not_found(company):
    customer = in_pool(company, "north")

    with pytest.raises(NotFound):
        services.claim_customer(actor=user_of(company.rep_a), customer=customer)


def test_the_company_pool_is_open_to_every_branch(company):
    customer = in_pool(company, None)

    services.claim_customer(actor=user_of(company.rep_b), customer=customer)

    customer.refresh_from_db()
    assert customer.owner == company.rep_b


def test_claim_needs_the_permission(company):
    customer = in_pool(company, None)

    with pytest.raises(PermissionDenied):
        services.claim_customer(actor=user_of(company.finance), customer=customer)


def test_claim_is_refused_after_the_daily_limit(company, pool_rules):
    pool_rules(POOL_DAILY_CLAIM_LIMIT=2)
    rep = user_of(company.rep_a)
    customers = [in_pool(company) for _ in range(3)]
    services.claim_customer(actor=rep, customer=customers[0])
    services.claim_customer(actor=rep, customer=customers[1])

    with pytest.raises(Conflict) as exc:
        services.claim_customer(actor=rep, customer=customers[2])

    assert exc.value.code == "claim_daily_limit"
    assert "2" in str(exc.value.message)
    customers[2].refresh_from_db()
    assert customers[2].in_pool is True


def test_claims_from_yesterday_do_not_count_toward_today(company, pool_rules):
    pool_rules(POOL_DAILY_CLAIM_LIMIT=1)
    rep = user_of(company.rep_a)
    services.claim_customer(actor=rep, customer=in_pool(company))
    yesterday = timezone.now() - dt.timedelta(days=1)
    OwnershipChange.objects.filter(action="claim").update(at=yesterday)

    services.claim_customer(actor=rep, customer=in_pool(company))

    assert Customer.objects.filter(owner=company.rep_a).count() == 2


def test_claim_is_refused_at_the_holding_limit(company, pool_rules):
    pool_rules(POOL_HOLDING_LIMIT=2)
    make_customer(company.rep_a)
    make_customer(company.rep_a)

    with pytest.raises(Conflict) as exc:
        services.claim_customer(actor=user_of(company.rep_a), customer=in_pool(company))

    assert exc.value.code == "claim_holding_limit"


def test_former_owner_is_barred_from_reclaiming_for_the_set_days(company, pool_rules):
    pool_rules(POOL_RECLAIM_BAR_DAYS=30)
    customer = make_customer(company.rep_a)
    rep = user_of(company.rep_a)
    services.release_customer(actor=rep, customer=customer, reason="暂不跟进")

    with pytest.raises(Conflict) as exc:
        services.claim_customer(actor=rep, customer=customer)
    services.claim_customer(actor=user_of(company.rep_a2), customer=customer)

    assert exc.value.code == "claim_reclaim_barred"
    customer.refresh_from_db()
    assert customer.owner == company.rep_a2


def test_the_reclaim_bar_ends_after_the_set_days(company, pool_rules):
    pool_rules(POOL_RECLAIM_BAR_DAYS=30)
    customer = make_customer(company.rep_a)
    rep = user_of(company.rep_a)
    services.release_customer(actor=rep, customer=customer, reason="暂不跟进")
    OwnershipChange.objects.filter(action="release").update(
        at=timezone.now() - dt.timedelta(days=30, minutes=1))

    services.claim_customer(actor=rep, customer=customer)

    customer.refresh_from_db()
    assert customer.owner == company.rep_a


# --- assign ---------------------------------------------------------------------------------
def test_manager_assigns_a_pool_customer_to_a_rep(company):
    customer = in_pool(company)

    services.assign_customer(actor=user_of(company.manager_a), customer=customer,
                             owner=company.rep_a2)

    customer.refresh_from_db()
    assert customer.owner == company.rep_a2
    assert customer.in_pool is False
    change = OwnershipChange.objects.get(customer=customer, action="assign")
    assert (change.from_owner, change.to_owner, change.by) == (None, company.rep_a2,
                                                               company.manager_a)
    assert DomainEvent.objects.filter(name="customer.assigned",
                                      data__owner_id=company.rep_a2.pk).exists()


def test_manager_reassigns_from_one_rep_to_another(company):
    customer = make_customer(company.rep_a)

    services.assign_customer(actor=user_of(company.manager_a), customer=customer,
                             owner=company.rep_a2)

    change = OwnershipChange.objects.get(customer=customer, action="assign")
    assert change.from_owner == company.rep_a


def test_manager_cannot_assign_outside_their_team(company):
    customer = in_pool(company)

    with pytest.raises(ValidationFailed) as exc:
        services.assign_customer(actor=user_of(company.manager_a), customer=customer,
                                 owner=company.rep_b)

    assert exc.value.field == "owner"


def test_rep_cannot_assign(company):
    customer = in_pool(company)

    with pytest.raises(PermissionDenied):
        services.assign_customer(actor=user_of(company.rep_a), customer=customer,
                                 owner=company.rep_a)


def test_director_assigns_within_the_branch(company):
    customer = in_pool(company)

    services.assign_customer(actor=user_of(company.director), customer=customer,
                             owner=company.manager_a)

    customer.refresh_from_db()
    assert customer.owner == company.manager_a


# --- recycle --------------------------------------------------------------------------------
NOW = timezone.now()


def _aged(customer, *, owned_days, followup_days=None):
    Customer.objects.filter(pk=customer.pk).update(
        owned_since=NOW - dt.timedelta(days=owned_days),
        last_followup_at=None if followup_days is None
        else NOW - dt.timedelta(days=followup_days),
    )


@pytest.fixture
def recycle_rules(pool_rules):
    pool_rules(POOL_RECYCLE_NO_FOLLOWUP_DAYS=30, POOL_RECYCLE_NO_OPPORTUNITY_DAYS=90,
               POOL_RECYCLE_WARNING_DAYS=3)


def test_no_followup_for_too_long_goes_back_to_the_pool(company, recycle_rules):
    stale = make_customer(company.rep_a)
    fresh = make_customer(company.rep_a)
    _aged(stale, owned_days=31)
    _aged(fresh, owned_days=31, followup_days=5)

    result = services.recycle_customers(now=NOW)

    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert result["recycled"] == 1
    assert stale.in_pool is True
    assert stale.owner is None
    assert stale.pool_department == company.east
    assert fresh.owner == company.rep_a
    change = OwnershipChange.objects.get(customer=stale, action="recycle")
    assert change.from_owner == company.rep_a
    assert "30" in change.reason
    assert DomainEvent.objects.filter(name="customer.released", subject_id=str(stale.pk),
                                      data__action="recycle").exists()


def test_no_opportunity_for_too_long_goes_back_even_with_followups(company, recycle_rules):
    idle = make_customer(company.rep_a)
    working = make_customer(company.rep_a)
    _aged(idle, owned_days=91, followup_days=1)
    _aged(working, owned_days=91, followup_days=1)
    pipeline_rows(working, company.rep_a)  # an open opportunity

    result = services.recycle_customers(now=NOW)

    assert result["recycled"] == 1
    idle.refresh_from_db()
    working.refresh_from_db()
    assert idle.in_pool is True
    assert working.in_pool is False


def test_a_lost_opportunity_does_not_keep_a_customer(company, recycle_rules):
    customer = make_customer(company.rep_a)
    _aged(customer, owned_days=91, followup_days=1)
    rows = pipeline_rows(customer, company.rep_a)
    rows["opportunity"].status = "lost"
    rows["opportunity"].save()

    assert services.recycle_customers(now=NOW)["recycled"] == 1


def test_customers_about_to_be_recycled_are_warned_once(company, recycle_rules):
    soon = make_customer(company.rep_a)
    later = make_customer(company.rep_a)
    _aged(soon, owned_days=28)
    _aged(later, owned_days=20)

    first = services.recycle_customers(now=NOW)
    second = services.recycle_customers(now=NOW + dt.timedelta(hours=1))

    assert first == {"recycled": 0, "warned": 1}
    assert second == {"recycled": 0, "warned": 0}
    event = DomainEvent.objects.get(name="customer.recycle_warning")
    assert event.subject_id == str(soon.pk)
    assert event.data["owner_id"] == company.rep_a.pk
    assert event.data["days_left"] == 2


def test_a_followup_restarts_the_clock_and_allows_a_new_warning(company, recycle_rules):
    customer = make_customer(company.rep_a)
    _aged(customer, owned_days=28)
    services.recycle_customers(now=NOW)
    # A follow-up the next day, then 28 days of silence: due again in 2 days.
    later = NOW + dt.timedelta(days=29)
    Customer.objects.filter(pk=customer.pk).update(
        last_followup_at=NOW + dt.timedelta(days=1))

    result = services.recycle_customers(now=later)

    assert result == {"recycled": 0, "warned": 1}
    assert DomainEvent.objects.filter(name="customer.recycle_warning").count() == 2


def test_pool_and_merged_customers_are_not_recycled(company, recycle_rules):
    pooled = in_pool(company)
    Customer.objects.filter(pk=pooled.pk).update(created_at=NOW - dt.timedelta(days=200))

    assert services.recycle_customers(now=NOW) == {"recycled": 0, "warned": 0}


def test_the_nightly_task_runs_the_recycle(company, recycle_rules):
    from weiying.customers.tasks import recycle_customers_task

    stale = make_customer(company.rep_a)
    _aged(stale, owned_days=40)

    result = recycle_customers_task.call_local()

    assert result["recycled"] == 1
