"""HTTP API for customers and the shared pool, mounted at /api/customers.

Phones come out masked; POST …/reveal-phone returns one in full (needs customer.unmask,
audited).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema, Status

from weiying.core.errors import ValidationFailed
from weiying.core.pagination import PAGE_SIZE
from weiying.core.permissions import employee_of, require
from weiying.core.scope import scoped, visible_employees
from weiying.customers import selectors, services
from weiying.customers.models import Consent, Contact, Customer, WeChatIdentity
from weiying.org.models import Employee

router = Router(tags=["customers"])


# --- Schemas --------------------------------------------------------------------------------
class CustomerOut(Schema):
    id: int
    kind: str
    name: str
    phone: str = Field(description="masked; use reveal-phone for the full number")
    email: str
    industry: str
    city: str
    region: str
    address: str
    source: str
    channel: str
    level: str
    status: str
    owner_id: int | None
    owner_name: str | None
    department_id: int | None
    in_pool: bool
    pool_department_id: int | None
    owned_since: dt.datetime | None
    last_followup_at: dt.datetime | None
    next_followup_at: dt.datetime | None
    last_activity_at: dt.datetime
    total_signed: Decimal
    total_collected: Decimal
    merged_into_id: int | None
    tags: list[str]
    created_at: dt.datetime

    @staticmethod
    def resolve_phone(obj: Customer) -> str:
        return obj.masked_phone

    @staticmethod
    def resolve_owner_name(obj: Customer) -> str | None:
        return obj.owner.name if obj.owner_id else None

    @staticmethod
    def resolve_tags(obj: Customer) -> list[str]:
        return [t.name for t in obj.tags.all()]


class CustomerPage(Schema):
    items: list[CustomerOut]
    next_cursor: str | None = None


class IdentityIn(Schema):
    kind: str = Field(description="wecom_external, unionid, openid or wechat_id")
    value: str = Field(min_length=1, max_length=128)


class CustomerIn(Schema):
    name: str = Field(min_length=1, max_length=128)
    kind: str = "company"
    phone: str = Field("", max_length=32)
    email: str = Field("", max_length=254)
    owner_id: int | None = Field(None, description="default: you; see to_pool")
    to_pool: bool = Field(False, description="put it in your branch's shared pool instead")
    source: str = "other"
    channel: str = Field("", max_length=64)
    city: str = Field("", max_length=64)
    region: str = Field("", max_length=64)
    industry: str = Field("", max_length=64)
    address: str = Field("", max_length=255)
    level: str = "B"
    note: str = Field("", max_length=5000)
    tags: list[str] = Field(default_factory=list, max_length=50)
    identities: list[IdentityIn] = Field(default_factory=list, max_length=10)
    allow_duplicate: bool = False


class CustomerPatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=128)
    kind: str | None = None
    phone: str | None = Field(None, max_length=32)
    email: str | None = Field(None, max_length=254)
    industry: str | None = Field(None, max_length=64)
    city: str | None = Field(None, max_length=64)
    region: str | None = Field(None, max_length=64)
    address: str | None = Field(None, max_length=255)
    source: str | None = None
    channel: str | None = Field(None, max_length=64)
    level: str | None = None
    status: str | None = None
    note: str | None = Field(None, max_length=5000)
    next_followup_at: dt.datetime | None = None
    allow_duplicate: bool = False


class ContactIn(Schema):
    name: str = Field(min_length=1, max_length=64)
    title: str = Field("", max_length=64)
    phone: str = Field("", max_length=32)
    email: str = Field("", max_length=254)
    is_primary: bool = False


class ContactOut(Schema):
    id: int
    name: str
    title: str
    phone: str
    email: str
    is_primary: bool

    @staticmethod
    def resolve_phone(obj: Contact) -> str:
        return obj.masked_phone


class ConsentIn(Schema):
    purpose: str = Field(description="marketing, calls or processing")
    granted: bool
    method: str = Field(description="verbal, form, wechat, contract or web")
    evidence: str = Field("", max_length=255)
    at: dt.datetime | None = None


class ConsentOut(Schema):
    id: int
    purpose: str
    granted: bool
    method: str
    evidence: str
    at: dt.datetime
    recorded_by_id: int | None


class TagsIn(Schema):
    names: list[str] = Field(max_length=50)


class IdentityOut(Schema):
    id: int
    kind: str
    value: str


class PhoneOut(Schema):
    phone: str


class DuplicateOut(Schema):
    id: int
    name: str
    owner_name: str | None
    in_pool: bool


class DuplicatesOut(Schema):
    matches: list[DuplicateOut]
    hidden: int = Field(description="matches outside what you may see")


class MergeIn(Schema):
    duplicate_id: int


class ReleaseIn(Schema):
    reason: str = Field(min_length=1, max_length=255)


class AssignIn(Schema):
    owner_id: int


# --- Helpers --------------------------------------------------------------------------------
def _user(request: HttpRequest) -> Any:
    return request.user


def _customer(request: HttpRequest, customer_id: int) -> Customer:
    return selectors.customer_detail(_user(request), customer_id)


def _employee(request: HttpRequest, employee_id: int, field: str) -> Employee:
    employee = visible_employees(_user(request)).filter(pk=employee_id).first()
    if employee is None:
        raise ValidationFailed(
            _("There is no such person in your team; pick someone you manage."), field=field
        )
    return employee


# --- Customers ------------------------------------------------------------------------------
@router.get("", response=CustomerPage, summary="List customers in your scope")
def list_customers(
    request: HttpRequest, q: str = "", status: str = "", level: str = "", source: str = "",
    tag: str = "", owner_id: int | None = None, sort: str = selectors.DEFAULT_SORT,
    cursor: str | None = None, size: int = Query(PAGE_SIZE, ge=1, le=200),
) -> Any:
    return selectors.list_customers(
        _user(request), q=q, status=status, level=level, source=source, tag=tag,
        owner_id=owner_id, sort=sort, cursor=cursor, size=size,
    )


@router.post("", response={201: CustomerOut}, summary="Create a customer")
def create_customer(request: HttpRequest, payload: CustomerIn) -> Any:
    user = _user(request)
    me = employee_of(user)
    owner = None
    pool_department = None
    if payload.owner_id is not None:
        owner = _employee(request, payload.owner_id, "owner_id")
    elif payload.to_pool:
        pool_department = services.branch_of(me.department) if me else None
    elif me is not None:
        owner = me
    customer = services.create_customer(
        actor=user, name=payload.name, kind=payload.kind, phone=payload.phone,
        email=payload.email, owner=owner, source=payload.source, channel=payload.channel,
        city=payload.city, region=payload.region, industry=payload.industry,
        address=payload.address, level=payload.level, note=payload.note, tags=payload.tags,
        identities=[(i.kind, i.value) for i in payload.identities],
        allow_duplicate=payload.allow_duplicate, pool_department=pool_department,
    )
    return Status(201, customer)


@router.get("/duplicates", response=DuplicatesOut, summary="Check for duplicates")
def check_duplicates(
    request: HttpRequest, phone: str = "", name: str = "", wechat_kind: str = "",
    wechat_value: str = "", exclude_id: int | None = None, kind: str = "company",
) -> Any:
    user = _user(request)
    require(user, "customer.edit")
    identities = [(wechat_kind, wechat_value)] if wechat_kind and wechat_value else []
    found = services.find_duplicates(phone=phone, name=name, identities=identities,
                                     exclude_id=exclude_id, kind=kind)
    visible = set(scoped(Customer.objects.filter(pk__in=[c.pk for c in found]), user)
                  .values_list("pk", flat=True))
    matches = [
        {"id": c.pk, "name": c.name, "owner_name": c.owner.name if c.owner_id else None,
         "in_pool": c.in_pool}
        for c in found if c.pk in visible
    ]
    return {"matches": matches, "hidden": len(found) - len(matches)}


@router.get("/pool", response=CustomerPage, summary="The shared pool (公海) you may claim from")
def pool(
    request: HttpRequest, q: str = "", level: str = "", source: str = "", tag: str = "",
    sort: str = selectors.DEFAULT_SORT, cursor: str | None = None,
    size: int = Query(PAGE_SIZE, ge=1, le=200),
) -> Any:
    return selectors.pool_customers(_user(request), q=q, level=level, source=source, tag=tag,
                                    sort=sort, cursor=cursor, size=size)


@router.get("/{int:customer_id}", response=CustomerOut, summary="One customer")
def get_customer(request: HttpRequest, customer_id: int) -> Any:
    return _customer(request, customer_id)


@router.patch("/{int:customer_id}", response=CustomerOut, summary="Change a customer")
def update_customer(request: HttpRequest, customer_id: int, payload: CustomerPatch) -> Any:
    customer = _customer(request, customer_id)
    fields = payload.dict(exclude_unset=True)
    return services.update_customer(actor=_user(request), customer=customer, **fields)


@router.get("/{int:customer_id}/contacts", response=list[ContactOut])
def list_contacts(request: HttpRequest, customer_id: int) -> Any:
    return list(_customer(request, customer_id).contacts.order_by("-is_primary", "pk"))


@router.post("/{int:customer_id}/contacts", response={201: ContactOut})
def add_contact(request: HttpRequest, customer_id: int, payload: ContactIn) -> Any:
    contact = services.add_contact(actor=_user(request),
                                   customer=_customer(request, customer_id), **payload.dict())
    return Status(201, contact)


@router.get("/{int:customer_id}/consents", response=list[ConsentOut])
def list_consents(request: HttpRequest, customer_id: int) -> Any:
    return list(Consent.objects.filter(customer=_customer(request, customer_id))
                .order_by("-at", "-pk"))


@router.post("/{int:customer_id}/consents", response={201: ConsentOut})
def record_consent(request: HttpRequest, customer_id: int, payload: ConsentIn) -> Any:
    consent = services.record_consent(actor=_user(request),
                                      customer=_customer(request, customer_id), **payload.dict())
    return Status(201, consent)


@router.put("/{int:customer_id}/tags", response=list[str], summary="Replace the tags")
def set_tags(request: HttpRequest, customer_id: int, payload: TagsIn) -> Any:
    tags = services.set_tags(actor=_user(request), customer=_customer(request, customer_id),
                             names=payload.names)
    return [t.name for t in tags]


@router.post("/{int:customer_id}/identities", response={201: IdentityOut})
def add_identity(request: HttpRequest, customer_id: int, payload: IdentityIn) -> Any:
    identity: WeChatIdentity = services.add_identity(
        actor=_user(request), customer=_customer(request, customer_id), kind=payload.kind,
        value=payload.value,
    )
    return Status(201, identity)


@router.post("/{int:customer_id}/reveal-phone", response=PhoneOut,
             summary="The full phone number (audited)")
def reveal_phone(request: HttpRequest, customer_id: int) -> Any:
    phone = services.reveal_phone(actor=_user(request), customer=_customer(request, customer_id))
    return {"phone": phone}


@router.post("/{int:customer_id}/merge", response=CustomerOut,
             summary="Merge a duplicate into this customer")
def merge(request: HttpRequest, customer_id: int, payload: MergeIn) -> Any:
    survivor = _customer(request, customer_id)
    duplicate = _customer(request, payload.duplicate_id)
    return services.merge_customers(actor=_user(request), survivor=survivor, duplicate=duplicate)


@router.post("/{int:customer_id}/claim", response=CustomerOut, summary="Claim from the pool")
def claim(request: HttpRequest, customer_id: int) -> Any:
    return services.claim_customer(actor=_user(request),
                                   customer=_customer(request, customer_id))


@router.post("/{int:customer_id}/release", response=CustomerOut,
             summary="Release to the shared pool")
def release(request: HttpRequest, customer_id: int, payload: ReleaseIn) -> Any:
    return services.release_customer(actor=_user(request),
                                     customer=_customer(request, customer_id),
                                     reason=payload.reason)


@router.post("/{int:customer_id}/assign", response=CustomerOut, summary="Assign to a person")
def assign(request: HttpRequest, customer_id: int, payload: AssignIn) -> Any:
    customer = _customer(request, customer_id)
    owner = _employee(request, payload.owner_id, "owner_id")
    return services.assign_customer(actor=_user(request), customer=customer, owner=owner)
