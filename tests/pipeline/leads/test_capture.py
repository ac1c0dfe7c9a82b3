import pytest

from tests.conftest import user_of
from weiying.core.errors import PermissionDenied, ValidationFailed
from weiying.core.models import AuditLog, DomainEvent
from weiying.pipeline.models import Lead
from weiying.pipeline.services.leads import capture_lead

pytestmark = pytest.mark.django_db


def test_name_is_required(company):
    with pytest.raises(ValidationFailed) as exc:
        capture_lead(actor=None, name="  ", phone="13812345678")
    assert exc.value.field == "name"
    assert str(exc.value.message) == "Enter the contact's name."


def test_phone_or_wechat_is_required(company):
    with pytest.raises(ValidationFailed) as exc:
        capture_lead(actor=None, name="张三")
    assert exc.value.field == "phone"
    assert str(exc.value.message) == (
        "Enter a phone number or a WeChat id, so the lead can be contacted."
    )


@pytest.mark.parametrize("phone", ["12345", "1381234567", "23812345678", "138-1234-56789"])
def test_invalid_phone_is_refused_with_the_number_in_the_message(company, phone):
    with pytest.raises(ValidationFailed) as exc:
        capture_lead(actor=None, name="张三", phone=phone)
    assert exc.value.field == "phone"
    assert str(exc.value.message).startswith(f"{phone} is not a valid mobile or landline")


@pytest.mark.parametrize("phone, stored", [
    ("+86 138-1234-5678", "13812345678"),
    ("021-62345678", "02162345678"),
    ("0755 2345678", "07552345678"),
    ("400-810-8888", "4008108888"),
])
def test_valid_mobiles_and_landlines_are_stored_as_digits(company, phone, stored):
    lead = capture_lead(actor=None, name="张三", phone=phone)
    assert Lead.objects.get(pk=lead.pk).phone == stored


def test_wechat_alone_is_enough(company):
    lead = capture_lead(actor=None, name="张三", wechat="zhangsan_88")
    assert lead.phone == "" and lead.wechat == "zhangsan_88"


def test_unknown_source_is_refused(company):
    with pytest.raises(ValidationFailed) as exc:
        capture_lead(actor=None, name="张三", phone="13812345678", source="tv")
    assert exc.value.field == "source"


def test_same_external_id_returns_the_existing_lead_unchanged(company):
    first = capture_lead(actor=None, name="张三", phone="13812345678", external_id="crm-1",
                         source="api")
    again = capture_lead(actor=None, name="李四", phone="13900000000", external_id="crm-1",
                         source="api")
    assert again.pk == first.pk
    assert Lead.objects.count() == 1
    assert Lead.objects.get(pk=first.pk).name == "张三"
    assert DomainEvent.objects.filter(name="lead.created").count() == 1


def test_capture_writes_audit_and_created_event(company):
    lead = capture_lead(actor=user_of(company.rep_a), name="张三", phone="13812345678",
                        owner=company.rep_a)
    assert AuditLog.objects.filter(action="lead.create", object_id=str(lead.pk)).count() == 1
    names = list(DomainEvent.objects.filter(subject_type="pipeline.lead", subject_id=str(lead.pk))
                 .order_by("pk").values_list("name", flat=True))
    assert names == ["lead.created", "lead.assigned"]
    assert lead.status == "assigned" and lead.assigned_at is not None
    assert lead.department_id == company.team_a.pk


def test_unassigned_lead_waits_in_the_actors_department(company):
    lead = capture_lead(actor=user_of(company.manager_a), name="张三", phone="13812345678")
    assert lead.owner is None and lead.status == "new"
    assert lead.department_id == company.team_a.pk
    assert not DomainEvent.objects.filter(name="lead.assigned").exists()


def test_rep_cannot_give_a_lead_to_someone_else(company):
    with pytest.raises(PermissionDenied):
        capture_lead(actor=user_of(company.rep_a), name="张三", phone="13812345678",
                     owner=company.rep_a2)


def test_manager_cannot_give_a_lead_outside_their_scope(company):
    with pytest.raises(ValidationFailed) as exc:
        capture_lead(actor=user_of(company.manager_a), name="张三", phone="13812345678",
                     owner=company.rep_b)
    assert exc.value.field == "owner"


def test_finance_may_not_capture_leads(company):
    with pytest.raises(PermissionDenied):
        capture_lead(actor=user_of(company.finance), name="张三", phone="13812345678")
