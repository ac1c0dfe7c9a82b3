"""The rep's day on a phone, end to end in a real browser.

On a phone-sized viewport a rep signs in, claims a customer from the shared pool and logs a
follow-up; the manager then finds the deal on the kanban and the note on the timeline.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from tests.conftest import PASSWORD
from weiying.customers import services as customers
from weiying.customers.models import Customer
from weiying.pipeline.choices import FollowUpKind, OpportunityStatus
from weiying.pipeline.models import FollowUp, Opportunity

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SHOTS = Path(__file__).resolve().parents[2] / "test-results"



@contextmanager
def screenshots_on_failure(name: str, **pages: Any) -> Iterator[None]:
    """On any failure, save a full-page screenshot of each page under test-results/."""
    try:
        yield
    except BaseException:
        SHOTS.mkdir(exist_ok=True)
        for label, page in pages.items():
            try:
                page.screenshot(path=str(SHOTS / f"{name}-{label}.png"), full_page=True)
            except Exception:  # noqa: BLE001 - a failed screenshot must not hide the failure
                pass
        raise


def sign_in(page: Any, base: str, employee: Any) -> None:
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", employee.number.lower())
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_load_state()


def toast(page: Any) -> Any:
    return page.locator(".weui-toptips_success[role=status]")


@pytest.fixture
def pool_customer(company: Any) -> Customer:
    """A customer in the east branch's shared pool, nobody's yet."""
    return customers.create_customer(
        actor=None, name=f"东方明珠贸易{uuid.uuid4().hex[:6]}", phone="13912345678",
        city="上海", region="华东", pool_department=company.east,
    )


def test_rep_claims_from_the_pool_logs_a_follow_up_and_the_manager_sees_it(
    live_server: Any, company: Any, pool_customer: Customer, phone: Any, desk: Any,
    browser: Any,
) -> None:
    base = live_server.url
    note = f"客户要报价，约了周四 {uuid.uuid4().hex[:8]}"
    deal = f"年度采购 {uuid.uuid4().hex[:6]}"

    with screenshots_on_failure("rep-phone-flow", phone=phone, desk=desk):
        # when: the rep signs in on the phone and lands on "my day"
        sign_in(phone, base, company.rep_a)
        assert phone.url == f"{base}/m/"

        # and claims the customer from the pool tab, with one tap
        phone.click("nav.phone-tabbar a[href='/m/pool/']")
        phone.wait_for_url(f"{base}/m/pool/")
        claim = phone.locator(f"form[action='/m/customers/{pool_customer.pk}/claim/'] button")
        claim.click()
        phone.wait_for_url(f"{base}/m/customers/{pool_customer.pk}/")
        assert pool_customer.name in toast(phone).inner_text()

        # and logs a follow-up from the customer's page: a call, a note, again tomorrow
        phone.click("[data-testid=log-followup]")
        phone.wait_for_url(re.compile(r"/m/followups/new/\?customer=\d+$"))
        phone.click("label:has(input[name=kind][value=call])")
        phone.fill("textarea[name=note]", note)
        phone.click("label:has(input[name=next_quick][value=tomorrow])")
        assert phone.is_checked("input[name=next_quick][value=tomorrow]")
        phone.click("form button.big-action")

        # then: back on the customer's page with the success toast
        phone.wait_for_url(f"{base}/m/customers/{pool_customer.pk}/")
        toast(phone).wait_for()

        # and the database agrees
        pool_customer.refresh_from_db()
        assert pool_customer.owner_id == company.rep_a.pk
        assert not pool_customer.in_pool
        followup = FollowUp.objects.get(customer=pool_customer)
        assert followup.note == note
        assert followup.kind == FollowUpKind.CALL
        assert followup.owner_id == company.rep_a.pk
        tomorrow = timezone.localdate() + dt.timedelta(days=1)
        assert timezone.localtime(followup.next_at) == timezone.make_aware(
            dt.datetime.combine(tomorrow, dt.time(10, 0)))

        # when: back at the desk, the rep opens a deal on the customer now theirs
        rep_desk = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
        try:
            page = rep_desk.new_page()
            page.set_default_timeout(10_000)
            with screenshots_on_failure("rep-phone-flow-rep-desk", rep_desk=page):
                sign_in(page, base, company.rep_a)
                page.goto(f"{base}/pipeline/opportunities/")
                page.click("a[href='/pipeline/opportunities/new/']")
                page.select_option("select[name=customer]", str(pool_customer.pk))
                page.fill("input[name=name]", deal)
                page.fill("input[name=amount]", "88000.00")
                page.click("form.form button.primary")
                page.wait_for_url(re.compile(r"/pipeline/opportunities/\d+/$"))
        finally:
            rep_desk.close()
        opportunity = Opportunity.objects.get(customer=pool_customer)
        assert (opportunity.name, opportunity.owner_id, opportunity.amount, opportunity.status) \
            == (deal, company.rep_a.pk, Decimal("88000.00"), OpportunityStatus.OPEN)

        # when: the manager signs in at the desk and opens the kanban
        sign_in(desk, base, company.manager_a)
        desk.goto(f"{base}/pipeline/opportunities/board/")

        # then: the card is in the first open stage, with the customer and the rep
        card = desk.locator(f"#deal-{opportunity.pk}")
        card.wait_for()
        column = desk.locator(f"section.column[data-stage='{opportunity.stage_id}']")
        assert column.locator(f"#deal-{opportunity.pk}").count() == 1
        text = card.inner_text()
        assert deal in text
        assert pool_customer.name in text
        assert company.rep_a.name in text

        # and the opportunity's page shows the follow-up on the customer's timeline
        card.locator(f"a[href='/pipeline/opportunities/{opportunity.pk}/']").click()
        desk.wait_for_url(f"{base}/pipeline/opportunities/{opportunity.pk}/")
        entry = desk.locator("ul.timeline li.tl-followup", has_text=note)
        entry.wait_for()
        assert company.rep_a.name in entry.inner_text()

        # and so does the customer's own page
        desk.goto(f"{base}/customers/{pool_customer.pk}/")
        desk.locator("#timeline li.tl-followup", has_text=note).wait_for()


def test_a_rep_of_another_branch_never_sees_the_east_pool_customer(
    live_server: Any, company: Any, pool_customer: Customer, phone: Any,
) -> None:
    base = live_server.url
    north = customers.create_customer(
        actor=None, name=f"燕山机械{uuid.uuid4().hex[:6]}", city="北京", region="华北",
        pool_department=company.north,
    )

    with screenshots_on_failure("other-branch", phone=phone):
        # when: rep_b of the north branch signs in on the phone and opens the pool
        sign_in(phone, base, company.rep_b)
        assert phone.url == f"{base}/m/"
        phone.click("nav.phone-tabbar a[href='/m/pool/']")
        phone.wait_for_url(f"{base}/m/pool/")

        # then: their own branch's pool customer is listed, the east one is not
        phone.locator(f"a[href='/m/customers/{north.pk}/']").wait_for()
        body = phone.locator("body").inner_text()
        assert north.name in body
        assert pool_customer.name not in body
        assert phone.locator(f"a[href='/m/customers/{pool_customer.pk}/']").count() == 0

        # nor does a search for it by name find it, in the pool or among customers
        for path in ("/m/pool/", "/m/customers/"):
            phone.goto(f"{base}{path}")
            phone.fill("input[name=q]", pool_customer.name)
            phone.press("input[name=q]", "Enter")
            phone.wait_for_url(re.compile(r"\?q="))
            assert pool_customer.name not in phone.locator("body").inner_text()

        # and its phone page, desktop page and claim answer 404
        for path in (f"/m/customers/{pool_customer.pk}/", f"/customers/{pool_customer.pk}/"):
            response = phone.goto(f"{base}{path}")
            assert response is not None
            assert response.status == 404, path
        response = phone.request.post(
            f"{base}/m/customers/{pool_customer.pk}/claim/",
            headers={"X-CSRFToken": _csrf(phone), "Referer": f"{base}/m/pool/"},
            max_redirects=0,
        )
        # (the phone's claim answers a refusal by sending the rep back to the pool)
        assert (response.status, response.headers.get("location")) == (302, "/m/pool/")

    # and the customer is still in the east pool, nobody's
    pool_customer.refresh_from_db()
    assert (pool_customer.in_pool, pool_customer.owner_id, pool_customer.pool_department_id) \
        == (True, None, company.east.pk)
    assert not FollowUp.objects.filter(customer=pool_customer).exists()


def _csrf(page: Any) -> str:
    for cookie in page.context.cookies():
        if cookie["name"] == "csrftoken":
            return str(cookie["value"])
    return ""
