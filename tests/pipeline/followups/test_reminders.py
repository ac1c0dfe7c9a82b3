import datetime as dt

import pytest

from tests.conftest import user_of
from tests.pipeline.opportunities.factories import NOW, make_customer
from weiying.pipeline.models import FollowUp
from weiying.pipeline.selectors.followups import due_followups
from weiying.pipeline.services.followups import log_followup
from weiying.pipeline.tasks_followups import remind_due_followups

pytestmark = pytest.mark.django_db

MIN = dt.timedelta(minutes=1)


def _plan(employee, name, next_at):
    return log_followup(actor=user_of(employee), kind="call", note=name,
                        customer=make_customer(employee, name=name), at=NOW - 60 * MIN,
                        next_at=next_at)


def test_reminds_plans_due_within_15_minutes_once(company, clock):
    overdue = _plan(company.rep_a, "过期", NOW - 5 * MIN)
    soon = _plan(company.rep_a, "快到", NOW + 15 * MIN)
    later = _plan(company.rep_a, "稍后", NOW + 16 * MIN)

    first = remind_due_followups(now=NOW)
    second = remind_due_followups(now=NOW)

    assert sorted(first) == sorted([overdue.pk, soon.pk])
    assert second == []
    assert FollowUp.objects.get(pk=soon.pk).reminded_at == NOW
    assert FollowUp.objects.get(pk=later.pk).reminded_at is None


def test_done_plans_are_not_reminded(company, clock):
    plan = _plan(company.rep_a, "已完成", NOW + MIN)
    FollowUp.objects.filter(pk=plan.pk).update(next_done=True)

    assert remind_due_followups(now=NOW) == []


def test_due_followups_are_scoped_and_ordered(company, clock):
    b = _plan(company.rep_a, "B", NOW - 5 * MIN)
    a = _plan(company.rep_a, "A", NOW - 50 * MIN)
    _plan(company.rep_a, "未来", NOW + 5 * 60 * MIN)
    other = _plan(company.rep_b, "北京", NOW - 5 * MIN)
    mine_as_manager = _plan(company.manager_a, "经理", NOW - 5 * MIN)

    assert list(due_followups(user_of(company.rep_a), until=NOW)) == [a, b]
    assert list(due_followups(user_of(company.rep_b), until=NOW)) == [other]
    assert set(due_followups(user_of(company.manager_a), until=NOW)) == {a, b, mine_as_manager}
    assert list(due_followups(user_of(company.manager_a), until=NOW, mine=True)) == [
        mine_as_manager]
