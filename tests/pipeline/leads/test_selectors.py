import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.conftest import user_of
from weiying.core.errors import NotFound
from weiying.pipeline.models import Lead
from weiying.pipeline.selectors.leads import lead_detail, list_leads

pytestmark = pytest.mark.django_db


@pytest.fixture
def leads(company, make_lead):
    a = make_lead(owner=company.rep_a, name="甲", company_name="东方电器")
    a2 = make_lead(owner=company.rep_a2, name="乙")
    queued = make_lead(department=company.team_a, name="丙")
    b = make_lead(owner=company.rep_b, name="丁", phone="13912340000")
    orphan = make_lead(name="戊")  # no owner, no team: only company-wide roles see it
    return {"a": a, "a2": a2, "queued": queued, "b": b, "orphan": orphan}


def _names(user, **kw):
    return {lead.name for lead in list_leads(user, **kw).items}


def test_each_persona_sees_their_scope(company, leads):
    assert _names(user_of(company.rep_a)) == {"甲"}
    assert _names(user_of(company.manager_a)) == {"甲", "乙", "丙"}
    assert _names(user_of(company.director)) == {"甲", "乙", "丙"}
    assert _names(user_of(company.manager_b)) == {"丁"}
    assert _names(user_of(company.admin)) == {"甲", "乙", "丙", "丁", "戊"}


def test_detail_outside_scope_is_not_found(company, leads):
    assert lead_detail(user_of(company.manager_a), leads["a"].pk) == leads["a"]
    with pytest.raises(NotFound):
        lead_detail(user_of(company.rep_a), leads["a2"].pk)
    with pytest.raises(NotFound):
        lead_detail(user_of(company.manager_b), leads["a"].pk)


def test_filters_search_and_no_response(company, leads):
    admin = user_of(company.admin)
    assert _names(admin, q="东方") == {"甲"}
    assert _names(admin, q="13912340000") == {"丁"}
    assert _names(admin, q="1391234") == set()  # no partial phone probing
    assert _names(admin, owner_id=company.rep_a2.pk) == {"乙"}
    assert _names(admin, status="new") == {"丙", "戊"}
    Lead.objects.filter(pk=leads["a"].pk).update(first_response_at=timezone.now(),
                                                 status="contacted")
    assert _names(admin, status="no_response") == {"乙", "丙", "丁", "戊"}


def test_keyset_pages_by_activity_without_overlap(company, make_lead):
    base = timezone.now()
    for i in range(7):
        lead = make_lead(owner=company.rep_a, name=f"L{i}")
        Lead.objects.filter(pk=lead.pk).update(last_activity_at=base - dt.timedelta(hours=i % 3))
    user = user_of(company.rep_a)
    seen, cursor = [], None
    while True:
        page = list_leads(user, size=3, cursor=cursor)
        seen += [lead.pk for lead in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    expected = list(Lead.objects.order_by("-last_activity_at", "-id").values_list("pk", flat=True))
    assert seen == expected


def test_list_is_one_query_plus_the_scope_lookup(company, leads):
    user = user_of(company.manager_a)
    with CaptureQueriesContext(connection) as queries:
        page = list_leads(user)
        owners = [lead.owner.name if lead.owner else "" for lead in page.items]
    assert len(owners) == 3
    assert len(queries) == 2
    assert not any("COUNT(" in q["sql"].upper() for q in queries)
