import datetime as dt
import hashlib
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db.models import Count
from django.test import Client
from django.urls import NoReverseMatch, reverse

from weiying.catalog.models import Product
from weiying.core.models import AuditLog
from weiying.core.scope import scoped
from weiying.customers.models import Contact, Customer, OwnershipChange
from weiying.demo.checks import problems
from weiying.demo.generate import DEMO_PASSWORD, demo_logins, generate, is_generated, wipe
from weiying.org.models import Department, Employee
from weiying.pipeline.models import (
    AssignmentRule,
    Contract,
    FollowUp,
    Instalment,
    Lead,
    Opportunity,
    Receipt,
    StageChange,
)

TODAY = dt.date(2025, 6, 18)


@pytest.fixture(scope="module")
def small(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        summary = generate(size="small", seed=7, fresh=True, today=TODAY)
        yield summary
        wipe()


def digest() -> str:
    """A fingerprint of the company without database ids: names, figures, times."""
    parts = [
        Employee.objects.order_by("number").values_list(
            "number", "name", "position", "level", "hire_date", "status", "leave_date", "phone",
            "leader__number", "department__name"),
        Department.objects.order_by("path").values_list("name", "kind", "depth", "manager__number"),
        Customer.objects.order_by("name", "phone").values_list(
            "name", "phone", "status", "in_pool", "total_signed", "total_collected",
            "last_activity_at", "owner__number"),
        Lead.objects.order_by("phone").values_list("name", "company_name", "status", "created_at",
                                                   "first_response_seconds"),
        Contract.objects.order_by("number").values_list("number", "title", "total", "collected",
                                                        "status", "signed_on"),
        FollowUp.objects.order_by("at", "note", "owner__number").values_list(
            "at", "kind", "note", "next_at", "next_done"),
        Opportunity.objects.order_by("created_at", "name").values_list(
            "name", "amount", "status", "stage__name", "closed_at"),
    ]
    h = hashlib.sha256()
    for qs in parts:
        for row in qs:
            h.update(repr(row).encode())
    return h.hexdigest()


@pytest.mark.django_db
def test_small_company_has_a_five_level_pyramid_of_about_150(small):
    assert 130 <= Employee.objects.count() <= 175
    depths = dict(Department.objects.filter(kind__in=["hq", "branch", "region", "area", "team"])
                  .values_list("kind").annotate(n=Count("pk")).values_list("kind", "depth"))
    assert depths == {"hq": 1, "branch": 2, "region": 3, "area": 4, "team": 5}
    assert set(Department.objects.filter(kind="other").values_list("name", flat=True)) == {
        "财务部", "运营部"}
    roles = dict(Employee.objects.values_list("role__code").annotate(n=Count("pk")))
    assert roles["admin"] == 1 and roles["rep"] > 100
    assert roles["manager"] == Department.objects.filter(kind__in=["team", "area"]).count()
    assert roles["director"] == Department.objects.filter(
        kind__in=["hq", "branch", "region"]).count()
    assert Employee.objects.filter(status="left", leave_date__isnull=False).exists()
    team = Department.objects.filter(kind="team").first()
    reps = Employee.objects.filter(department=team, role__code="rep")
    assert set(reps.values_list("leader_id", flat=True)) == {team.manager_id}


@pytest.mark.django_db
def test_small_company_has_history_in_every_part_of_the_pipeline(small):
    assert "employees" in small and "customers" in small
    assert Product.objects.count() == 22
    assert set(Product.objects.values_list("vat_rate", flat=True)) == {
        Decimal("0.13"), Decimal("0.06")}
    assert Product.objects.filter(lifecycle_days__isnull=False).count() >= 5
    statuses = set(Lead.objects.values_list("status", flat=True))
    assert {"assigned", "contacted", "converted", "disqualified"} <= statuses
    assert {"open", "won", "lost"} == set(Opportunity.objects.values_list("status", flat=True))
    assert StageChange.objects.count() > Opportunity.objects.count()
    assert {"signed", "in_delivery", "completed"} <= set(
        Contract.objects.values_list("status", flat=True))
    assert Receipt.objects.exists() and Contact.objects.count() >= Customer.objects.count()
    overdue = [i for i in Instalment.objects.filter(due_on__lt=TODAY) if i.collected < i.amount]
    assert overdue, "some instalments should be overdue"
    assert Customer.objects.filter(in_pool=True).exists()
    assert OwnershipChange.objects.filter(action="recycle").count() == Customer.objects.filter(
        in_pool=True).count()
    assert AssignmentRule.objects.count() >= 3
    first = Lead.objects.order_by("created_at").first().created_at.date()
    assert dt.timedelta(days=80) <= TODAY - first <= dt.timedelta(days=95)
    assert not FollowUp.objects.filter(at__gte=dt.datetime(2025, 6, 18, tzinfo=dt.UTC)).exists()


@pytest.mark.django_db
def test_derived_figures_agree_with_what_they_derive_from(small):
    assert problems() == []


@pytest.mark.django_db
def test_generation_is_marked_done_and_audited(small):
    assert is_generated()
    row = AuditLog.objects.get(action="demo.generate")
    assert row.after["size"] == "small" and row.after["today"] == "2025-06-18"
    with pytest.raises(RuntimeError):
        generate(size="small", today=TODAY)


@pytest.mark.django_db
def test_the_rep_login_has_a_lively_day(small):
    rep = Employee.objects.get(user__username="rep")
    user = get_user_model().objects.get(username="rep")
    leads = scoped(Lead.objects.all(), user)
    assert leads.exists() and set(leads.values_list("owner_id", flat=True)) == {rep.pk}
    assert leads.filter(status__in=["assigned", "contacted"]).count() >= 3
    assert scoped(Customer.objects.all(), user).filter(owner=rep).exists()
    assert scoped(Opportunity.objects.all(), user).filter(status="open").exists()
    end_of_today = dt.datetime(2025, 6, 18, 23, 59, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert FollowUp.objects.filter(owner=rep, next_done=False, next_at__lte=end_of_today).exists()


@pytest.mark.django_db
def test_demo_logins_sign_in_and_open_their_home_pages(small):
    logins = demo_logins()
    assert [role for role, _u, _n in logins] == [
        "admin", "director", "manager", "rep", "finance", "operations"]
    director = Employee.objects.get(user__username="director")
    manager = Employee.objects.get(user__username="manager")
    rep = Employee.objects.get(user__username="rep")
    assert rep.leader_id == manager.pk and manager.path.startswith(director.path)
    assert get_user_model().objects.get(username="admin").is_superuser
    for _role, username, name in logins:
        assert name
        client = Client()
        assert client.login(username=username, password=DEMO_PASSWORD)
        assert client.get("/").status_code in (200, 302)
    phone = Client(HTTP_USER_AGENT="Mozilla/5.0 (iPhone) wxwork/4.1")
    phone.login(username="rep", password=DEMO_PASSWORD)
    try:
        url = reverse("mobile:my_day")
    except NoReverseMatch:
        pytest.skip("the phone pages are not there yet")
    assert phone.get(url).status_code == 200


@pytest.mark.django_db
def test_same_seed_gives_the_same_company_and_another_seed_another(small):
    first = digest()
    generate(size="small", seed=7, fresh=True, today=TODAY)
    assert digest() == first
    assert problems() == []
    generate(size="small", seed=8, fresh=True, today=TODAY)
    assert digest() != first
    generate(size="small", seed=7, fresh=True, today=TODAY)  # leave the module's company


@pytest.mark.django_db
def test_a_wipe_leaves_no_roll_up_behind(small):
    from weiying.performance.models import DailyFact, DepartmentMonth, Kpi
    from weiying.reports.models_funnel import FunnelPosition, FunnelStay

    assert DailyFact.objects.exists() and FunnelPosition.objects.exists()
    wipe()  # inside the test's transaction: the module's company comes back afterwards

    for model in (DailyFact, DepartmentMonth, FunnelPosition, FunnelStay):
        assert not model.objects.exists(), model
    assert Kpi.objects.exists()


@pytest.mark.django_db
def test_each_reps_monthly_target_is_a_tenth_above_their_average_rounded_up_to_1000(small):
    from django.db.models import Sum

    from weiying.performance.models import DailyFact, Target

    totals = dict(DailyFact.objects.filter(measure="signed_amount", line="",
                                           employee__role__code="rep")
                  .values_list("employee_id").annotate(v=Sum("value")))
    assert len(totals) > 10
    months = 3  # the small company's history
    for pk, fen in sorted(totals.items())[:20]:
        target = Target.objects.filter(kpi__code="signed_amount", employee_id=pk,
                                       kind="month").first()
        stretched = Decimal(fen) / 100 / months * Decimal("1.1")
        assert stretched <= target.value < stretched + 1000, (pk, fen, target.value)
        assert target.value % 1000 == 0


@pytest.mark.django_db
def test_spend_falls_to_the_regions_and_every_product_has_a_cost(small):
    from weiying.finance.models import MarketingSpend

    spends = MarketingSpend.objects.all()
    assert spends.count() > 3
    assert set(spends.values_list("department__depth", flat=True)) == {2}
    for product in Product.objects.all():
        assert 0 < product.standard_cost < product.list_price, product.code


@pytest.mark.django_db
def test_xl_shrinks_with_scale_and_keeps_a_seven_level_pyramid():
    summary = generate(size="xl", scale=0.001, seed=3, fresh=True, today=TODAY)
    assert "employees" in summary
    assert Department.objects.aggregate(m=Count("depth", distinct=True))["m"] == 7
    assert Employee.objects.count() < 100
    assert problems() == []


@pytest.mark.django_db
def test_fresh_generation_keeps_roles_and_the_default_pipeline(small):
    from weiying.org.models import Role
    from weiying.pipeline.models import Pipeline, Stage

    assert Role.objects.filter(is_builtin=True).count() == 6
    assert Pipeline.objects.filter(is_default=True).count() == 1
    assert Stage.objects.filter(pipeline__is_default=True).count() == 6


@pytest.mark.django_db
def test_demo_command_without_serving_prints_the_logins(small, capsys):
    from weiying.cli import main

    assert main(["demo", "--size", "small", "--no-serve"]) == 0
    out = capsys.readouterr().out
    assert "weiying123" in out
    for _role, username, name in demo_logins():
        assert username in out and name in out
    assert "Generating" not in out  # already generated: reused
