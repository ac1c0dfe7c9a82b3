from decimal import Decimal

import pytest
from django.utils import timezone

from tests.conftest import user_of
from tests.customers.conftest import make_customer, pipeline_rows
from weiying.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from weiying.core.models import AuditLog, DomainEvent
from weiying.customers import selectors, services
from weiying.customers.models import (
    Contact,
    Customer,
    CustomerMerge,
    OwnershipChange,
    WeChatIdentity,
)
from weiying.customers.naming import name_key

pytestmark = pytest.mark.django_db


# --- create ---------------------------------------------------------------------------------
def test_name_key_drops_width_spaces_punctuation_and_company_suffixes():
    assert name_key("上海 星辰科技（集团）有限公司") == "上海星辰科技"
    assert name_key("ＡＢＣ科技股份有限公司") == "abc科技"
    assert name_key("Acme Co., Ltd.") == "acme"


def test_create_stores_normalised_phone_owner_department_and_history(company):
    rep = user_of(company.rep_a)

    customer = services.create_customer(
        actor=rep, name="上海星辰科技有限公司", phone="+86 138-0013-8000",
        owner=company.rep_a, tags=["重点", "制造业"], identities=[("unionid", "u-1")],
    )

    customer.refresh_from_db()
    assert customer.phone == "13800138000"
    assert customer.masked_phone == "138****8000"
    assert customer.name_key == "上海星辰科技"
    assert customer.department == company.team_a
    assert customer.in_pool is False
    assert customer.owned_since is not None
    assert sorted(customer.tags.values_list("name", flat=True)) == ["制造业", "重点"]
    assert customer.wechat_identities.get().value == "u-1"
    change = OwnershipChange.objects.get(customer=customer)
    assert (change.action, change.to_owner, change.by) == ("create", company.rep_a,
                                                           company.rep_a)
    assert AuditLog.objects.filter(action="customer.create", object_id=str(customer.pk),
                                   actor=rep).count() == 1
    event = DomainEvent.objects.get(name="customer.created", subject_id=str(customer.pk))
    assert event.data["owner_id"] == company.rep_a.pk


def test_create_without_owner_puts_the_customer_in_the_pool(company):
    customer = make_customer(None, pool_department=company.east)

    assert customer.in_pool is True
    assert customer.owner is None
    assert customer.pool_department == company.east
    assert customer.owned_since is None


def test_duplicate_phone_is_refused_and_named_when_visible(company):
    existing = make_customer(company.rep_a, name="星辰科技", phone="13800138000")

    with pytest.raises(Conflict) as exc:
        services.create_customer(actor=user_of(company.rep_a), name="别的名字",
                                 phone="+86 13800138000", owner=company.rep_a)

    assert exc.value.code == "duplicate_customer"
    assert exc.value.field == "phone"
    assert "星辰科技" in str(exc.value.message)
    assert str(existing.pk) in str(exc.value.message)


def test_duplicate_outside_scope_is_not_named_and_points_to_the_manager(company):
    make_customer(company.rep_a, name="星辰科技", phone="13800138000")

    with pytest.raises(Conflict) as exc:
        services.create_customer(actor=user_of(company.rep_b), name="另一家",
                                 phone="13800138000", owner=company.rep_b)

    message = str(exc.value.message)
    assert exc.value.code == "duplicate_customer"
    assert "星辰科技" not in message
    assert "李销售" not in message
    assert "孙经理" in message  # rep_b's own manager


def test_duplicate_wechat_identity_is_refused(company):
    make_customer(company.rep_a, identities=[("wecom_external", "wmABC")])

    with pytest.raises(Conflict) as exc:
        make_customer(company.rep_a, identities=[("wecom_external", "wmABC")])

    assert exc.value.code == "duplicate_customer"
    assert exc.value.field == "identities"


def test_duplicate_normalised_name_is_refused(company):
    make_customer(company.rep_a, name="上海星辰科技有限公司")

    with pytest.raises(Conflict) as exc:
        make_customer(company.rep_a, name="上海 星辰科技（集团）")

    assert exc.value.code == "duplicate_customer"
    assert exc.value.field == "name"


def test_people_with_the_same_name_are_not_duplicates(company):
    make_customer(company.rep_a, name="张伟", kind="individual")

    second = make_customer(company.rep_a2, name="张伟", kind="individual")

    assert second.name_key == "张伟"
    assert Customer.objects.filter(name_key="张伟").count() == 2


def test_allow_duplicate_creates_a_second_customer_with_the_same_name(company):
    make_customer(company.rep_a, name="星辰科技")

    second = make_customer(company.rep_a, name="星辰科技", allow_duplicate=True)

    assert Customer.objects.filter(name_key="星辰科技").count() == 2
    assert second.pk


def test_a_shared_wechat_identity_is_refused_even_when_duplicates_are_allowed(company):
    make_customer(company.rep_a, identities=[("unionid", "u-9")])

    with pytest.raises(Conflict) as exc:
        make_customer(company.rep_a, identities=[("unionid", "u-9")], allow_duplicate=True)

    assert exc.value.code == "identity_taken"


def test_rep_cannot_give_a_new_customer_to_someone_else(company):
    with pytest.raises(ValidationFailed) as exc:
        services.create_customer(actor=user_of(company.rep_a), name="某公司",
                                 owner=company.rep_a2)

    assert exc.value.field == "owner"


def test_finance_may_not_create_customers(company):
    with pytest.raises(PermissionDenied):
        services.create_customer(actor=user_of(company.finance), name="某公司")


@pytest.mark.parametrize(("field", "value"), [
    ("phone", "12"), ("email", "not-an-email"), ("name", "   "), ("level", "Z"),
    ("source", "tv"),
])
def test_create_refuses_bad_input_naming_the_field(company, field, value):
    kwargs = {"name": "某公司", field: value}

    with pytest.raises(ValidationFailed) as exc:
        services.create_customer(actor=None, **kwargs)

    assert exc.value.field == field


# --- update, contacts, identities, tags -----------------------------------------------------
def test_update_audits_only_the_changed_fields(company):
    customer = make_customer(company.rep_a, city="上海")

    services.update_customer(actor=user_of(company.rep_a), customer=customer, city="苏州",
                             level="B", name=customer.name)

    row = AuditLog.objects.get(action="customer.update", object_id=str(customer.pk))
    assert row.before == {"city": "上海"}
    assert row.after == {"city": "苏州"}


def test_update_to_a_taken_phone_is_refused(company):
    make_customer(company.rep_a, phone="13900000001")
    customer = make_customer(company.rep_a)

    with pytest.raises(Conflict) as exc:
        services.update_customer(actor=user_of(company.rep_a), customer=customer,
                                 phone="139 0000 0001")

    assert exc.value.code == "duplicate_customer"
    customer.refresh_from_db()
    assert customer.phone == ""


def test_update_refuses_fields_that_are_not_editable(company):
    customer = make_customer(company.rep_a)

    with pytest.raises(ValidationFailed) as exc:
        services.update_customer(actor=user_of(company.rep_a), customer=customer,
                                 owner=company.rep_a2)

    assert exc.value.field == "owner"


def test_rep_must_claim_a_pool_customer_before_editing_it(company):
    customer = make_customer(None, pool_department=company.east)

    with pytest.raises(Conflict) as exc:
        services.update_customer(actor=user_of(company.rep_a), customer=customer, city="杭州")

    assert exc.value.code == "in_pool"


def test_rep_cannot_edit_a_customer_outside_scope(company):
    customer = make_customer(company.rep_b)

    with pytest.raises(NotFound):
        services.update_customer(actor=user_of(company.rep_a), customer=customer, city="杭州")


def test_first_contact_becomes_primary_and_a_new_primary_replaces_it(company):
    customer = make_customer(company.rep_a)
    rep = user_of(company.rep_a)

    first = services.add_contact(actor=rep, customer=customer, name="张三", phone="13700000000")
    second = services.add_contact(actor=rep, customer=customer, name="李四", is_primary=True)

    first.refresh_from_db()
    assert first.is_primary is False
    assert second.is_primary is True
    assert first.phone == "13700000000"


def test_an_identity_of_another_customer_is_refused(company):
    a = make_customer(company.rep_a)
    b = make_customer(company.rep_a)
    services.add_identity(actor=None, customer=a, kind="openid", value="o-1")

    again = services.add_identity(actor=None, customer=a, kind="openid", value="o-1")
    with pytest.raises(Conflict) as exc:
        services.add_identity(actor=None, customer=b, kind="openid", value="o-1")

    assert again.customer_id == a.pk
    assert exc.value.code == "identity_taken"
    assert WeChatIdentity.objects.count() == 1


def test_set_tags_replaces_and_creates_tags(company):
    customer = make_customer(company.rep_a, tags=["旧"])

    services.set_tags(actor=user_of(company.rep_a), customer=customer, names=["新", " 新 ", "VIP"])

    assert sorted(customer.tags.values_list("name", flat=True)) == ["VIP", "新"]
    row = AuditLog.objects.get(action="customer.tags")
    assert row.before == {"tags": ["旧"]}


# --- consent --------------------------------------------------------------------------------
def test_the_newest_consent_per_purpose_counts(company):
    customer = make_customer(company.rep_a)
    rep = user_of(company.rep_a)
    earlier = timezone.now() - timezone.timedelta(days=3)

    services.record_consent(actor=rep, customer=customer, purpose="marketing", granted=True,
                            method="wechat", at=earlier)
    services.record_consent(actor=rep, customer=customer, purpose="marketing", granted=False,
                            method="verbal", evidence="电话中撤回")

    state = selectors.consent_state(customer)
    assert state["marketing"].granted is False
    assert state["marketing"].recorded_by == company.rep_a
    assert state["calls"] is None
    assert selectors.has_consent(customer, "marketing") is False
    assert AuditLog.objects.filter(action="customer.consent").count() == 2


def test_consent_in_the_future_is_refused(company):
    customer = make_customer(company.rep_a)

    with pytest.raises(ValidationFailed) as exc:
        services.record_consent(actor=None, customer=customer, purpose="calls", granted=True,
                                method="form", at=timezone.now() + timezone.timedelta(days=1))

    assert exc.value.field == "at"


# --- unmask ---------------------------------------------------------------------------------
def test_reveal_phone_needs_the_permission(company):
    customer = make_customer(company.rep_a, phone="13800138000")

    with pytest.raises(PermissionDenied):
        services.reveal_phone(actor=user_of(company.rep_a), customer=customer)

    assert not AuditLog.objects.filter(action="customer.unmask").exists()


def test_reveal_phone_is_audited_every_time(company):
    customer = make_customer(company.rep_a, phone="13800138000")
    director = user_of(company.director)

    first = services.reveal_phone(actor=director, customer=customer)
    services.reveal_phone(actor=director, customer=customer)

    assert first == "13800138000"
    rows = AuditLog.objects.filter(action="customer.unmask", object_id=str(customer.pk))
    assert rows.count() == 2
    assert set(rows.values_list("actor", flat=True)) == {director.pk}


def test_reveal_phone_outside_scope_is_not_found(company):
    customer = make_customer(company.rep_b, phone="13800138000")

    with pytest.raises(NotFound):
        services.reveal_phone(actor=user_of(company.director), customer=customer)


# --- merge ----------------------------------------------------------------------------------
def test_merge_moves_every_related_row_and_sums_the_figures(company):
    survivor = make_customer(company.rep_a, name="星辰科技")
    duplicate = make_customer(company.rep_a2, name="星辰科技（上海）", phone="13800138000",
                              tags=["重点"], identities=[("unionid", "u-7")])
    Customer.objects.filter(pk=survivor.pk).update(total_signed=Decimal("1000.10"),
                                                   total_collected=Decimal("500.00"))
    Customer.objects.filter(pk=duplicate.pk).update(total_signed=Decimal("200.25"),
                                                    total_collected=Decimal("0.05"))
    services.add_contact(actor=None, customer=duplicate, name="王五")
    rows = pipeline_rows(duplicate, company.rep_a2)
    survivor.refresh_from_db()
    duplicate.refresh_from_db()

    result = services.merge_customers(actor=user_of(company.manager_a), survivor=survivor,
                                      duplicate=duplicate)

    result.refresh_from_db()
    duplicate.refresh_from_db()
    assert result.total_signed == Decimal("1200.35")
    assert result.total_collected == Decimal("500.05")
    assert result.phone == "13800138000"  # filled from the duplicate: survivor had none
    assert duplicate.merged_into_id == survivor.pk
    assert duplicate.total_signed == Decimal("0")
    for kind, row in rows.items():
        row.refresh_from_db()
        assert row.customer_id == survivor.pk, kind
    assert Contact.objects.get(name="王五").customer_id == survivor.pk
    assert WeChatIdentity.objects.get(value="u-7").customer_id == survivor.pk
    assert list(result.tags.values_list("name", flat=True)) == ["重点"]
    merge = CustomerMerge.objects.get(survivor=survivor, duplicate=duplicate)
    assert merge.snapshot["customer"]["name"] == "星辰科技（上海）"
    assert merge.snapshot["customer"]["total_signed"] == "200.25"
    assert merge.moved["opportunities"] == 1
    assert merge.moved["contacts"] == 1
    # History stays with each row; the survivor records the merge.
    assert OwnershipChange.objects.filter(customer=duplicate, action="create").exists()
    assert OwnershipChange.objects.filter(customer=survivor, action="merge").exists()
    assert DomainEvent.objects.filter(name="customer.merged", subject_id=str(survivor.pk),
                                      data__duplicate_id=duplicate.pk).exists()
    listed = selectors.list_customers(user_of(company.manager_a)).items
    assert duplicate not in listed
    assert survivor in listed


def test_merge_needs_the_permission(company):
    a, b = make_customer(company.rep_a), make_customer(company.rep_a)

    with pytest.raises(PermissionDenied):
        services.merge_customers(actor=user_of(company.rep_a), survivor=a, duplicate=b)


def test_merge_of_a_customer_outside_scope_is_not_found(company):
    a, b = make_customer(company.rep_a), make_customer(company.rep_b)

    with pytest.raises(NotFound):
        services.merge_customers(actor=user_of(company.manager_a), survivor=a, duplicate=b)


def test_an_already_merged_customer_cannot_be_merged_again(company):
    a, b, c = (make_customer(company.rep_a) for _ in range(3))
    manager = user_of(company.manager_a)
    services.merge_customers(actor=manager, survivor=a, duplicate=b)

    with pytest.raises(Conflict) as exc:
        services.merge_customers(actor=manager, survivor=c, duplicate=b)

    assert exc.value.code == "already_merged"


def test_merged_rows_do_not_count_as_duplicates(company):
    a = make_customer(company.rep_a, name="甲公司")
    b = make_customer(company.rep_a, name="乙公司", phone="13600000000")
    services.merge_customers(actor=user_of(company.manager_a), survivor=a, duplicate=b)

    found = services.find_duplicates(name="乙公司")

    assert found == []
    assert services.find_duplicates(phone="13600000000") == [a]
