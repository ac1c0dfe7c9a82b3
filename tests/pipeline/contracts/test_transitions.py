import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.conftest import user_of
from tests.pipeline.contracts.conftest import make_customer
from weiying.core.errors import (
    InvalidTransition,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from weiying.core.models import AuditLog, DomainEvent
from weiying.pipeline.services import contracts as svc

pytestmark = pytest.mark.django_db

DISCOUNTED = "0.15"


def discounted(catalog, discount=DISCOUNTED):
    return [{"product": catalog.saas, "quantity": "1", "discount": discount}]


def events(contract):
    return list(DomainEvent.objects.filter(subject_id=str(contract.pk),
                                           subject_type="pipeline.contract")
                .order_by("pk").values_list("name", flat=True))


# --- Submit and approval ---------------------------------------------------------------------
def test_submit_within_the_threshold_is_approved_automatically(company, make_contract):
    contract = svc.submit_contract(actor=user_of(company.rep_a), contract=make_contract())
    assert contract.status == "approved"
    assert contract.approved_by_id is None and contract.approved_at is not None
    assert events(contract) == ["contract.submitted", "contract.approved"]
    approved = DomainEvent.objects.get(name="contract.approved")
    assert approved.data["auto_approved"] is True
    assert AuditLog.objects.get(action="contract.submit").after["auto_approved"] is True


def test_discount_equal_to_the_threshold_is_still_automatic(company, catalog, make_contract):
    contract = make_contract(lines=discounted(catalog, "0.10"))
    contract = svc.submit_contract(actor=user_of(company.rep_a), contract=contract)
    assert contract.status == "approved"


def test_submit_above_the_threshold_waits_for_a_manager(company, catalog, make_contract):
    contract = make_contract(lines=discounted(catalog))
    contract = svc.submit_contract(actor=user_of(company.rep_a), contract=contract)
    assert contract.status == "pending_approval"
    assert contract.approved_at is None
    assert events(contract) == ["contract.submitted"]
    assert DomainEvent.objects.get(name="contract.submitted").data["auto_approved"] is False


def test_threshold_comes_from_settings(company, catalog, make_contract, settings):
    settings.WEIYING = {**settings.WEIYING, "DISCOUNT_APPROVAL_THRESHOLD": "0.20"}
    contract = make_contract(lines=discounted(catalog))
    assert svc.submit_contract(actor=user_of(company.rep_a), contract=contract).status == \
        "approved"


def test_submit_needs_a_line(company, make_contract):
    with pytest.raises(ValidationFailed) as exc:
        svc.submit_contract(actor=user_of(company.rep_a), contract=make_contract(lines=[]))
    assert exc.value.code == "no_lines"
    assert str(exc.value.message) == "Add at least one line before submitting this contract."


def test_manager_approves_a_contract_in_their_subtree(company, catalog, make_contract):
    contract = make_contract("pending_approval", lines=discounted(catalog))
    contract = svc.approve_contract(actor=user_of(company.manager_a), contract=contract)
    assert contract.status == "approved"
    assert contract.approved_by_id == company.manager_a.pk
    assert DomainEvent.objects.get(name="contract.approved").data["auto_approved"] is False


def test_manager_of_another_branch_cannot_see_the_contract_to_approve(company, catalog,
                                                                      make_contract):
    contract = make_contract("pending_approval", lines=discounted(catalog))
    with pytest.raises(NotFound):
        svc.approve_contract(actor=user_of(company.manager_b), contract=contract)
    contract.refresh_from_db()
    assert contract.status == "pending_approval"


def test_rep_cannot_approve(company, catalog, make_contract):
    contract = make_contract("pending_approval", lines=discounted(catalog))
    with pytest.raises(PermissionDenied) as exc:
        svc.approve_contract(actor=user_of(company.rep_a), contract=contract)
    assert exc.value.code == "forbidden"
    assert str(exc.value.message) == (
        "Your role does not allow this (Approve discounts and contracts). Ask an administrator.")


def test_nobody_approves_their_own_contract(company, catalog):
    own = make_customer("经理自己的客户", company.manager_a)
    manager = user_of(company.manager_a)
    contract = svc.create_contract(actor=manager, customer=own, title="自签",
                                   lines=discounted(catalog))
    contract = svc.submit_contract(actor=manager, contract=contract)
    assert svc.allowed_actions(manager, contract) == ["reject", "cancel"]
    with pytest.raises(PermissionDenied) as exc:
        svc.approve_contract(actor=manager, contract=contract)
    assert exc.value.code == "self_approval"
    assert str(exc.value.message) == (
        "You cannot approve your own contract; ask your manager to approve it.")
    # the director above can
    assert svc.approve_contract(actor=user_of(company.director),
                                contract=contract).status == "approved"


def test_reject_needs_a_reason_and_returns_to_draft(company, catalog, make_contract):
    contract = make_contract("pending_approval", lines=discounted(catalog))
    manager = user_of(company.manager_a)
    with pytest.raises(ValidationFailed) as exc:
        svc.reject_contract(actor=manager, contract=contract, reason="  ")
    assert (exc.value.code, str(exc.value.message)) == (
        "reason_required", "Give a reason, so the team knows why.")
    contract = svc.reject_contract(actor=manager, contract=contract, reason="折扣太大")
    assert contract.status == "draft"
    assert contract.rejection_reason == "折扣太大"
    assert DomainEvent.objects.get(name="contract.rejected").data["reason"] == "折扣太大"
    # a rejected draft can be edited and submitted again
    contract = svc.update_contract(actor=user_of(company.rep_a), contract=contract,
                                   lines=discounted(catalog, "0.05"))
    contract = svc.submit_contract(actor=user_of(company.rep_a), contract=contract)
    assert contract.status == "approved" and contract.rejection_reason == ""


# --- Signing, delivery, completion -----------------------------------------------------------
def test_signing_updates_the_customer_value(company, customers, make_contract):
    day = timezone.localdate() - dt.timedelta(days=3)
    contract = make_contract("approved")
    contract = svc.sign_contract(actor=user_of(company.finance), contract=contract,
                                 signed_on=day)
    assert (contract.status, contract.signed_on) == ("signed", day)
    customers.a.refresh_from_db()
    assert customers.a.total_signed == Decimal("2000.00")
    assert customers.a.last_purchase_at == day
    assert customers.a.status == "signed"
    event = DomainEvent.objects.get(name="contract.signed")
    assert event.data["total"] == "2000.00" and event.data["signed_on"] == day.isoformat()


def test_an_older_signing_does_not_move_last_purchase_back(company, customers, make_contract):
    today = timezone.localdate()
    make_contract("signed", signed_on=today)
    make_contract("signed", signed_on=today - dt.timedelta(days=40))
    customers.a.refresh_from_db()
    assert customers.a.last_purchase_at == today
    assert customers.a.total_signed == Decimal("4000.00")


def test_sign_date_cannot_be_in_the_future(company, make_contract):
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    with pytest.raises(ValidationFailed) as exc:
        svc.sign_contract(actor=user_of(company.finance), contract=make_contract("approved"),
                          signed_on=tomorrow)
    assert exc.value.code == "date_in_future"
    assert exc.value.field == "signed_on"


def test_delivery_cannot_be_before_signing(company, make_contract):
    day = timezone.localdate() - dt.timedelta(days=5)
    contract = make_contract("signed", signed_on=day)
    with pytest.raises(ValidationFailed) as exc:
        svc.record_delivery(actor=user_of(company.operations), contract=contract,
                            delivered_on=day - dt.timedelta(days=1))
    assert exc.value.code == "date_order"
    assert str(exc.value.message) == (
        f"Delivery cannot be before the contract was signed ({day.isoformat()}).")


def test_acceptance_event_carries_what_finance_recognises(company, catalog, make_contract):
    lines = [{"product": catalog.box, "quantity": "3", "unit_price": "33.33",
              "discount": "0.07"},
             {"product": catalog.saas, "quantity": "1"}]
    contract = make_contract("in_delivery", lines=lines)
    day = timezone.localdate()
    contract = svc.record_acceptance(actor=user_of(company.operations), contract=contract,
                                     accepted_on=day)
    assert contract.status == "in_delivery" and contract.accepted_on == day
    data = DomainEvent.objects.get(name="delivery.accepted").data
    assert data["contract_id"] == contract.pk
    assert data["accepted_on"] == day.isoformat()
    assert (data["total"], data["total_net"], data["total_vat"]) == (
        "1092.99", "1025.69", "67.30")  # 82.29 + 943.40 net; 10.70 + 56.60 VAT
    assert [line["amount"] for line in data["lines"]] == ["92.99", "1000.00"]


def test_complete_needs_the_acceptance(company, make_contract):
    contract = make_contract("in_delivery")
    ops = user_of(company.operations)
    with pytest.raises(InvalidTransition) as exc:
        svc.complete_contract(actor=ops, contract=contract)
    assert exc.value.code == "invalid_transition"
    assert str(exc.value.message) == (
        "This contract is in delivery and the customer has not accepted it yet; record the "
        "acceptance before completing it.")
    svc.record_acceptance(actor=ops, contract=contract, accepted_on=timezone.localdate())
    contract = svc.complete_contract(actor=ops, contract=contract)
    assert contract.status == "completed"
    assert contract.completed_on == timezone.localdate()
    assert events(contract)[-1] == "contract.completed"


def test_full_walk_emits_every_event_in_order(company, make_contract):
    contract = make_contract("completed")
    assert events(contract) == [
        "contract.submitted", "contract.approved", "contract.signed", "delivery.recorded",
        "delivery.accepted", "contract.completed",
    ]
    actions = list(AuditLog.objects.filter(object_id=str(contract.pk),
                                           object_type="pipeline.contract")
                   .order_by("pk").values_list("action", flat=True))
    assert actions == ["contract.create", "contract.submit", "contract.sign",
                       "contract.deliver", "contract.accept", "contract.complete"]


# --- Cancelling ------------------------------------------------------------------------------
def test_cancel_needs_a_reason(company, make_contract):
    with pytest.raises(ValidationFailed) as exc:
        svc.cancel_contract(actor=user_of(company.manager_a), contract=make_contract(),
                            reason="")
    assert exc.value.code == "reason_required"


def test_cancelling_a_signed_contract_takes_it_out_of_the_customer_value(
    company, customers, make_contract
):
    today = timezone.localdate()
    make_contract("signed", signed_on=today - dt.timedelta(days=9))
    later = make_contract("signed", signed_on=today)
    contract = svc.cancel_contract(actor=user_of(company.manager_a), contract=later,
                                   reason="客户撤单")
    assert (contract.status, contract.cancel_reason) == ("cancelled", "客户撤单")
    customers.a.refresh_from_db()
    assert customers.a.total_signed == Decimal("2000.00")
    assert customers.a.last_purchase_at == today - dt.timedelta(days=9)
    assert DomainEvent.objects.get(name="contract.cancelled").data["was_signed"] is True


def test_contract_with_receipts_can_be_cancelled_and_keeps_what_was_received(
        company, make_contract):
    contract = make_contract("signed")
    svc.record_receipt(actor=user_of(company.finance), contract=contract, amount="500.00",
                       received_on=timezone.localdate(), method="bank")
    svc.cancel_contract(actor=user_of(company.manager_a), contract=contract, reason="撤单")
    contract.refresh_from_db()
    # The money stays recorded until finance refunds it (tests/finance cover the refund).
    assert (contract.status, contract.collected) == ("cancelled", Decimal("500.00"))


def test_accepted_contract_cannot_be_cancelled(company, make_contract):
    contract = make_contract("signed")
    manager = user_of(company.manager_a)
    today = timezone.localdate()
    svc.record_delivery(actor=manager, contract=contract, delivered_on=today)
    svc.record_acceptance(actor=manager, contract=contract, accepted_on=today)
    with pytest.raises(InvalidTransition) as exc:
        svc.cancel_contract(actor=manager, contract=contract, reason="撤单")
    assert exc.value.code == "invalid_transition"
    assert str(exc.value.message) == (
        f"The customer accepted this contract's delivery on {today.isoformat()}; it can no "
        "longer be cancelled. Complete it, or record a sales return with finance.")
    contract.refresh_from_db()
    assert contract.status == "in_delivery"


# --- Every refused transition ---------------------------------------------------------------
GENERIC = {
    "draft": "This contract is a draft; submit it for approval first.",
    "pending_approval":
        "This contract is pending approval; a manager must approve or reject it first.",
    "approved": "This contract is approved; mark it signed first.",
    "signed": "This contract is signed; record the delivery first.",
    "in_delivery": "This contract is in delivery; record the acceptance, then complete it.",
    "accepted": "This contract is in delivery; record the acceptance, then complete it.",
    "completed": "This contract is completed; it can no longer change.",
    "cancelled":
        "This contract is cancelled; it can no longer change. Start a new contract instead.",
}
SPECIFIC = {
    ("cancel", "accepted"): "The customer accepted this contract's delivery on %(today)s; it "
                            "can no longer be cancelled. Complete it, or record a sales return "
                            "with finance.",
    ("sign", "pending_approval"):
        "This contract is pending approval; it can be signed once a manager approves it.",
    ("sign", "draft"): "This contract is a draft; submit it and have it approved before signing.",
    ("submit", "pending_approval"):
        "This contract is already pending approval; wait for a manager to approve or reject it.",
    ("submit", "approved"): "This contract is already approved; it can be signed now.",
    ("approve", "approved"): "This contract is already approved; it can be signed now.",
    ("approve", "draft"):
        "This contract is a draft; the owner must submit it before it can be approved.",
    ("reject", "draft"):
        "This contract is a draft; the owner must submit it before it can be rejected.",
    ("cancel", "completed"): "This contract is completed; a completed contract cannot be cancelled.",
    ("cancel", "cancelled"): "This contract is already cancelled.",
    ("accept", "accepted"):
        "Acceptance was already recorded on %(today)s; complete the contract next.",
    ("complete", "in_delivery"):
        "This contract is in delivery and the customer has not accepted it yet; record the "
        "acceptance before completing it.",
}
ALLOWED = {
    "draft": {"submit", "cancel"},
    "pending_approval": {"approve", "reject", "cancel"},
    "approved": {"sign", "cancel"},
    "signed": {"deliver", "cancel"},
    "in_delivery": {"accept", "cancel"},
    "accepted": {"complete"},
    "completed": set(),
    "cancelled": set(),
}
INPUTS = {"reason": "原因", "signed_on": None, "delivered_on": None, "accepted_on": None}


def _in_state(state, company, catalog, make_contract):
    if state == "cancelled":
        contract = make_contract()
        return svc.cancel_contract(actor=user_of(company.admin), contract=contract, reason="x")
    if state == "pending_approval":
        return make_contract(state, lines=discounted(catalog))
    return make_contract(state, signed_on=timezone.localdate())


@pytest.mark.parametrize("state", list(ALLOWED))
def test_every_transition_from_every_state(company, catalog, make_contract, state):
    admin = user_of(company.admin)
    today = timezone.localdate().isoformat()
    contract = _in_state(state, company, catalog, make_contract)
    assert set(svc.allowed_actions(admin, contract)) == ALLOWED[state]
    inputs = {**INPUTS, "signed_on": today, "delivered_on": today, "accepted_on": today}
    for action in svc.TRANSITIONS:
        if action in ALLOWED[state]:
            continue
        with pytest.raises(InvalidTransition) as exc:
            svc.run_action(actor=admin, contract=contract, action=action, **inputs)
        expected = SPECIFIC.get((action, state)) or GENERIC[state]
        assert exc.value.code == "invalid_transition", (action, state)
        assert str(exc.value.message) == expected % {"today": today}, (action, state)
    for action in ALLOWED[state]:  # and each allowed one goes through
        fresh = _in_state(state, company, catalog, make_contract)
        done = svc.run_action(actor=admin, contract=fresh, action=action, **inputs)
        assert done.status == svc.TRANSITIONS[action].target or action == "submit"


def test_allowed_actions_follow_each_persona(company, catalog, make_contract):
    draft = make_contract()
    pending = make_contract("pending_approval", lines=discounted(catalog))
    approved = make_contract("approved")
    signed = make_contract("signed")
    assert svc.allowed_actions(user_of(company.rep_a), draft) == ["submit"]
    assert svc.allowed_actions(user_of(company.rep_a), pending) == []
    assert svc.allowed_actions(user_of(company.manager_a), pending) == [
        "approve", "reject", "cancel"]
    assert svc.allowed_actions(user_of(company.finance), approved) == ["sign", "cancel"]
    assert svc.allowed_actions(user_of(company.operations), signed) == ["deliver"]
