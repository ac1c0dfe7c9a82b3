import pytest
from django.urls import reverse

from tests.customers.conftest import make_customer, pipeline_rows
from weiying.core.models import AuditLog
from weiying.customers.models import Customer

pytestmark = pytest.mark.django_db

PERSONAS = ["rep_a", "manager_a", "director", "rep_b", "finance", "admin"]
PHONE_UA = {"HTTP_USER_AGENT": "Mozilla/5.0 (iPhone) wxwork/4.1"}


@pytest.mark.parametrize("persona", PERSONAS)
def test_list_pool_and_new_pages_render(company, login, persona):
    make_customer(getattr(company, persona), name="页面客户", phone="13800138000")
    client = login(getattr(company, persona))

    for name in ["customers:customer_list", "customers:pool", "customers:customer_new"]:
        response = client.get(reverse(name))
        assert response.status_code == 200, name
    listing = client.get(reverse("customers:customer_list")).content.decode()
    assert "页面客户" in listing
    assert "138****8000" in listing
    assert "13800138000" not in listing


@pytest.mark.parametrize("persona", ["rep_a", "manager_a", "director", "finance"])
def test_detail_edit_and_merge_pages_render_in_scope(company, login, persona):
    customer = make_customer(company.rep_a, phone="13800138000")
    client = login(getattr(company, persona))

    for name in ["customer_detail", "customer_edit", "customer_merge"]:
        response = client.get(reverse(f"customers:{name}", args=[customer.pk]))
        assert response.status_code == 200, name


@pytest.mark.parametrize("persona", ["rep_b", "rep_a2", "manager_b"])
def test_customer_pages_are_404_outside_scope(company, login, persona):
    customer = make_customer(company.rep_a)
    client = login(getattr(company, persona))

    for name in ["customer_detail", "customer_edit", "customer_merge"]:
        response = client.get(reverse(f"customers:{name}", args=[customer.pk]))
        assert response.status_code == 404, name
    response = client.post(reverse("customers:customer_reveal_phone", args=[customer.pk]))
    assert response.status_code in (403, 404)


def test_detail_page_shows_the_timeline_and_ownership_history(company, login):
    customer = make_customer(company.rep_a)
    pipeline_rows(customer, company.rep_a)

    response = login(company.manager_a).get(
        reverse("customers:customer_detail", args=[customer.pk]))

    assert response.status_code == 200
    assert response.context["timeline_template"] == "pipeline/_timeline.html"
    assert any(e.kind for e in response.context["timeline"])
    assert "电话沟通" in response.content.decode()


def test_show_phone_button_only_for_roles_that_may_unmask(company, login):
    customer = make_customer(company.rep_a, phone="13800138000")
    url = reverse("customers:customer_detail", args=[customer.pk])

    rep_page = login(company.rep_a).get(url).content.decode()
    director_page = login(company.director).get(url).content.decode()

    reveal = reverse("customers:customer_reveal_phone", args=[customer.pk])
    assert reveal not in rep_page
    assert reveal in director_page


def test_reveal_phone_returns_the_number_and_is_audited(company, login):
    customer = make_customer(company.rep_a, phone="13800138000")
    client = login(company.director)

    response = client.post(reverse("customers:customer_reveal_phone", args=[customer.pk]),
                           HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert "13800138000" in response.content.decode()
    row = AuditLog.objects.get(action="customer.unmask")
    assert row.channel == "web"
    assert row.ip == "127.0.0.1"


def test_rep_revealing_a_phone_gets_a_403_that_says_why(company, login):
    customer = make_customer(company.rep_a, phone="13800138000")

    response = login(company.rep_a).post(
        reverse("customers:customer_reveal_phone", args=[customer.pk]))

    assert response.status_code == 403
    assert not AuditLog.objects.filter(action="customer.unmask").exists()


def test_new_customer_form_creates_and_redirects(company, login):
    client = login(company.rep_a)

    response = client.post(reverse("customers:customer_new"), {
        "name": "新建客户有限公司", "kind": "company", "phone": "13912345678",
        "level": "A", "source": "referral", "owner": company.rep_a.pk, "tags": "重点，转介绍",
    })

    customer = Customer.objects.get(name="新建客户有限公司")
    assert response.status_code == 302
    assert response.url == reverse("customers:customer_detail", args=[customer.pk])
    assert customer.owner == company.rep_a
    assert sorted(customer.tags.values_list("name", flat=True)) == ["转介绍", "重点"]


def test_new_customer_form_shows_the_duplicate_next_to_the_field(company, login):
    existing = make_customer(company.rep_a, name="老客户", phone="13912345678")
    client = login(company.rep_a)

    response = client.post(reverse("customers:customer_new"), {
        "name": "另一个名字", "kind": "company", "phone": "139-1234-5678", "level": "B",
        "source": "other", "owner": company.rep_a.pk,
    })

    assert response.status_code == 200
    form = response.context["form"]
    assert "老客户" in form.errors["phone"][0]
    assert response.context["duplicate"] == existing
    assert "allow_duplicate" in response.content.decode()


def test_new_customer_form_refuses_a_short_phone(company, login):
    response = login(company.rep_a).post(reverse("customers:customer_new"), {
        "name": "某公司", "kind": "company", "phone": "123", "level": "B", "source": "other",
    })

    assert response.status_code == 200
    assert response.context["form"].errors["phone"]
    assert not Customer.objects.exists()


def test_claim_from_the_pool_page(company, login):
    customer = make_customer(None, pool_department=company.east)
    client = login(company.rep_a)
    assert customer.name in client.get(reverse("customers:pool")).content.decode()

    response = client.post(reverse("customers:customer_claim", args=[customer.pk]),
                           {"next": reverse("customers:pool")})

    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.owner == company.rep_a


def test_claim_lost_to_someone_else_says_so(company, login):
    customer = make_customer(company.rep_a2)

    response = login(company.rep_a, language="en").post(
        reverse("customers:customer_claim", args=[customer.pk]), follow=True)

    assert response.status_code == 200
    messages = [str(m) for m in response.context["messages"]]
    assert any("pool" in m for m in messages)


def test_release_from_the_detail_page(company, login):
    customer = make_customer(company.rep_a)

    response = login(company.rep_a).post(
        reverse("customers:customer_release", args=[customer.pk]), {"reason": "无需求"})

    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.in_pool is True


def test_manager_assigns_from_the_pool_page(company, login):
    customer = make_customer(None, pool_department=company.east)

    login(company.manager_a).post(reverse("customers:customer_assign", args=[customer.pk]),
                                  {"owner": company.rep_a2.pk})

    customer.refresh_from_db()
    assert customer.owner == company.rep_a2


def test_merge_page_merges_after_confirmation(company, login):
    survivor = make_customer(company.rep_a, name="星辰科技")
    duplicate = make_customer(company.rep_a, name="星辰科技 上海", allow_duplicate=True)
    client = login(company.manager_a)
    url = reverse("customers:customer_merge", args=[survivor.pk])

    unconfirmed = client.post(url, {"duplicate": duplicate.pk})
    confirmed = client.post(url, {"duplicate": duplicate.pk, "confirm": "on"})

    assert unconfirmed.status_code == 200
    assert unconfirmed.context["form"].errors["confirm"]
    assert confirmed.status_code == 302
    duplicate.refresh_from_db()
    assert duplicate.merged_into == survivor


def test_contact_consent_and_tags_forms(company, login):
    customer = make_customer(company.rep_a)
    client = login(company.rep_a)

    client.post(reverse("customers:customer_contact_add", args=[customer.pk]),
                {"name": "张三", "phone": "13700000000"})
    client.post(reverse("customers:customer_consent_add", args=[customer.pk]),
                {"purpose": "marketing", "granted": "1", "method": "wechat"})
    client.post(reverse("customers:customer_tags", args=[customer.pk]), {"tags": "甲, 乙"})

    assert customer.contacts.get().name == "张三"
    assert customer.consents.get().granted is True
    assert sorted(customer.tags.values_list("name", flat=True)) == ["乙", "甲"]


# --- phone pages ----------------------------------------------------------------------------
def test_phone_pages_render_for_a_rep(company, login):
    mine = make_customer(company.rep_a, name="我的客户")
    pooled = make_customer(None, name="池里客户", pool_department=company.east)
    client = login(company.rep_a)

    mine_page = client.get(reverse("mobile:customers"), **PHONE_UA)
    pool_page = client.get(reverse("mobile:pool"), **PHONE_UA)
    detail = client.get(reverse("mobile:customer_detail", args=[mine.pk]), **PHONE_UA)

    assert mine_page.status_code == pool_page.status_code == detail.status_code == 200
    assert "我的客户" in mine_page.content.decode()
    assert "池里客户" not in mine_page.content.decode()
    assert "池里客户" in pool_page.content.decode()
    assert reverse("mobile:customer_claim", args=[pooled.pk]) in pool_page.content.decode()


def test_phone_one_tap_claim(company, login):
    pooled = make_customer(None, pool_department=company.east)

    response = login(company.rep_a).post(reverse("mobile:customer_claim", args=[pooled.pk]))

    assert response.status_code == 302
    assert response.url == reverse("mobile:customer_detail", args=[pooled.pk])
    pooled.refresh_from_db()
    assert pooled.owner == company.rep_a


def test_phone_detail_is_404_outside_scope(company, login):
    other = make_customer(company.rep_b)

    response = login(company.rep_a).get(reverse("mobile:customer_detail", args=[other.pk]))

    assert response.status_code == 404


def test_list_page_query_count_does_not_grow_with_rows(company, login):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = login(company.manager_a)
    url = reverse("customers:customer_list")

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    make_customer(company.rep_a, tags=["甲"])
    few = count()
    for _ in range(12):
        make_customer(company.rep_a2, tags=["乙"])
    many = count()

    assert many == few
