import datetime as dt

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from tests.conftest import user_of
from tests.pipeline.opportunities.factories import NOW, make_customer, make_lead
from weiying.customers.models import Customer
from weiying.pipeline.models import FollowUp
from weiying.pipeline.services.followups import log_followup
from weiying.pipeline.services.opportunities import create_opportunity
from weiying.pipeline.views.followups import quick_next

pytestmark = pytest.mark.django_db

H = dt.timedelta(hours=1)


@pytest.fixture
def day(company, clock):
    rep = user_of(company.rep_a)
    overdue = make_customer(company.rep_a, name="逾期客户")
    log_followup(actor=rep, kind="call", note="约了回电", customer=overdue, at=NOW - 30 * H,
                 next_at=NOW - 2 * H)
    make_lead(company.rep_a, name="新线索", company_name="苏州新线索", status="assigned")
    make_lead(company.rep_a, name="已联系", company_name="已联系公司", status="contacted")
    make_customer(company.rep_a, name="将回收客户", recycle_warned_at=NOW - H)
    create_opportunity(actor=rep, customer=make_customer(company.rep_a, name="本月"),
                       name="本月签单", amount="5000", expected_close=dt.date(2025, 3, 28))
    create_opportunity(actor=rep, customer=make_customer(company.rep_a, name="下月"),
                       name="下月签单", expected_close=dt.date(2025, 4, 2))
    b = make_customer(company.rep_b, name="北京客户", recycle_warned_at=NOW - H)
    log_followup(actor=user_of(company.rep_b), kind="call", note="北京", customer=b,
                 at=NOW - 30 * H, next_at=NOW - 2 * H)
    return overdue


def test_my_day_renders_for_rep_a(company, day, login):
    response = login(company.rep_a).get(reverse("mobile:my_day"))

    html = response.content.decode()
    assert response.status_code == 200
    assert "逾期客户" in html
    assert "苏州新线索" in html and "已联系公司" not in html
    assert "将回收客户" in html
    assert "本月签单" in html and "¥5,000.00" in html and "下月签单" not in html
    assert "北京客户" not in html
    assert f'{reverse("mobile:followup_new")}?customer={day.pk}' in html


def test_my_day_for_rep_b_shows_only_their_own(company, day, login):
    html = login(company.rep_b).get(reverse("mobile:my_day")).content.decode()

    assert "北京客户" in html
    assert "逾期客户" not in html and "本月签单" not in html


def test_phone_followup_form_renders_with_customer(company, day, login):
    response = login(company.rep_a).get(reverse("mobile:followup_new"),
                                        {"customer": day.pk})

    html = response.content.decode()
    assert response.status_code == 200
    assert "逾期客户" in html
    assert 'name="kind" value="wechat"' in html
    assert 'name="next_quick" value="tomorrow"' in html


def test_phone_followup_saves_and_goes_back(company, day, login):
    client = login(company.rep_a)

    response = client.post(reverse("mobile:followup_new"), {
        "customer": day.pk, "kind": "wechat", "note": "微信确认了方案", "next_quick": "3d",
        "next": "/m/customers/1/",
    })

    assert response.status_code == 302
    assert response["Location"] == "/m/customers/1/"
    assert [str(m) for m in get_messages(response.wsgi_request)]
    followup = FollowUp.objects.get(note="微信确认了方案")
    assert followup.next_at == quick_next("3d", now=NOW)
    assert followup.next_at == dt.datetime(2025, 3, 13, 2, 0, tzinfo=dt.UTC)  # 10:00 Beijing
    assert Customer.objects.get(pk=day.pk).next_followup_at == followup.next_at


def test_phone_followup_for_a_lead_goes_back_to_my_day(company, clock, login):
    lead = make_lead(company.rep_a)

    response = login(company.rep_a).post(
        reverse("mobile:followup_new") + f"?lead={lead.pk}",
        {"lead": lead.pk, "kind": "call", "note": "打通了", "next_quick": ""},
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("mobile:my_day")
    assert FollowUp.objects.get(lead=lead).next_at is None


def test_phone_followup_refuses_an_offsite_next(company, day, login):
    response = login(company.rep_a).post(reverse("mobile:followup_new"), {
        "customer": day.pk, "kind": "call", "note": "x", "next": "https://evil.example/",
    })

    assert response["Location"] == reverse("mobile:my_day")


def test_phone_followup_on_other_branch_customer_is_404(company, day, login):
    other = Customer.objects.get(name="北京客户")

    response = login(company.rep_a).get(reverse("mobile:followup_new"), {"customer": other.pk})

    assert response.status_code == 404


def test_quick_next_week_is_next_monday_morning():
    # 2025-03-10 is a Monday: "next week" is the Monday after.
    assert quick_next("week", now=NOW) == dt.datetime(2025, 3, 17, 2, 0, tzinfo=dt.UTC)
    assert quick_next("tomorrow", now=NOW) == dt.datetime(2025, 3, 11, 2, 0, tzinfo=dt.UTC)
    assert quick_next("", now=NOW) is None


def test_desktop_list_is_scoped_and_shows_due(company, day, login):
    response = login(company.rep_a).get(reverse("pipeline:followup_list"))

    html = response.content.decode()
    assert response.status_code == 200
    assert response.context["due_count"] == 1
    assert "约了回电" in html and "北京" not in html


def test_desktop_list_filters_by_kind(company, day, login):
    log_followup(actor=user_of(company.rep_a), kind="visit", note="上门", customer=day)

    response = login(company.rep_a).get(reverse("pipeline:followup_list"), {"kind": "visit"})

    assert [f.note for f in response.context["rows"]] == ["上门"]


def test_desktop_new_followup_shows_service_error(company, day, login):
    response = login(company.rep_a).post(reverse("pipeline:followup_new"), {
        "customer": day.pk, "kind": "call", "note": "x",
        "at": "2025-03-11T10:00",
    }, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    assert response.context["form"].errors["at"] == [
        "A follow-up cannot be in the future; plan it as the next follow-up instead."]


def test_desktop_followup_from_an_opportunity_returns_to_it(company, clock, login):
    opp = create_opportunity(actor=user_of(company.rep_a), name="大单",
                             customer=make_customer(company.rep_a, name="大客户"))
    client = login(company.rep_a)
    url = reverse("pipeline:followup_new") + f"?opportunity={opp.pk}"

    page = client.get(url)
    response = client.post(url, {"opportunity": opp.pk, "kind": "meeting", "note": "评审",
                                 "next_quick": "tomorrow"})

    assert page.status_code == 200 and "大客户" in page.content.decode()
    assert response["Location"] == reverse("pipeline:opportunity_detail", args=[opp.pk])
    followup = FollowUp.objects.get(note="评审")
    assert (followup.customer.name, followup.opportunity_id) == ("大客户", opp.pk)
