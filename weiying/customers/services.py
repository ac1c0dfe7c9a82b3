"""Every change to customers: create, edit, contacts, consent, merge, and the shared pool (公海).

Each service checks the permission and the caller's data scope, writes in one transaction,
leaves an audit row and emits a domain event for state changes.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from weiying.core import audit, events, tree
from weiying.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from weiying.core.masking import normalise_phone
from weiying.core.money import money
from weiying.core.permissions import employee_of, has_perm, require
from weiying.core.scope import scoped, visible_employees
from weiying.customers.choices import (
    ConsentMethod,
    ConsentPurpose,
    CustomerKind,
    FollowStatus,
    IdentityKind,
    Level,
    PoolAction,
    Source,
)
from weiying.customers.models import (
    Consent,
    Contact,
    Customer,
    CustomerMerge,
    OwnershipChange,
    Tag,
    WeChatIdentity,
)
from weiying.customers.naming import name_key
from weiying.org.choices import DepartmentKind
from weiying.org.models import Department, Employee

logger = logging.getLogger(__name__)

# The fields update_customer accepts; ownership moves only through the pool services.
EDITABLE_FIELDS = (
    "name", "kind", "phone", "email", "industry", "city", "region", "address", "source",
    "channel", "level", "status", "note", "next_followup_at",
)
_SNAPSHOT_FIELDS = [*EDITABLE_FIELDS, "owner", "department", "in_pool", "pool_department"]


def rule(key: str) -> int:
    return int(settings.WEIYING[key])


# --- Helpers --------------------------------------------------------------------------------
def _employee(actor: Any) -> Employee | None:
    return employee_of(actor) if actor is not None else None


def _require_employee(actor: Any) -> Employee:
    me = _employee(actor)
    if me is None:
        raise PermissionDenied(
            _("Only an employee on the roster can hold customers. Ask an administrator."),
        )
    return me


def _visible(actor: Any, customer: Customer) -> None:
    """NotFound unless the actor's scope covers the customer (the system sees everything)."""
    if actor is None:
        return
    if not scoped(Customer.objects.filter(pk=customer.pk), actor).exists():
        raise NotFound()


def _editable(actor: Any, customer: Customer) -> None:
    if actor is None:
        return
    require(actor, "customer.edit")
    _visible(actor, customer)
    if customer.merged_into_id:
        raise Conflict(
            _("This customer was merged into another; edit the surviving customer instead."),
            code="customer_merged",
        )
    if customer.in_pool and not has_perm(actor, "pool.assign"):
        raise Conflict(
            _("This customer is in the shared pool; claim it before editing it."),
            code="in_pool",
        )


def _choice(value: str, choices: Any, field: str) -> str:
    if value not in choices.values:
        raise ValidationFailed(
            _("%(value)s is not a valid choice here; pick one of: %(choices)s.")
            % {"value": value, "choices": ", ".join(choices.values)},
            field=field,
        )
    return value


def _clean_phone(raw: str, field: str = "phone") -> str:
    phone = normalise_phone(raw)
    if raw and raw.strip() and not phone:
        raise ValidationFailed(_("A phone number needs digits."), field=field)
    if phone and not 7 <= len(phone) <= 20:
        raise ValidationFailed(
            _("A phone number has 7 to 20 digits (a mobile has 11); check the number."),
            field=field,
        )
    return phone


def _clean_email(raw: str, field: str = "email") -> str:
    email = (raw or "").strip()
    if email:
        try:
            validate_email(email)
        except DjangoValidationError:
            raise ValidationFailed(
                _("%(email)s is not an email address; check it or leave it empty.")
                % {"email": email},
                field=field,
            ) from None
    return email


def _clean_name(raw: str) -> str:
    name = " ".join((raw or "").split())
    if not name:
        raise ValidationFailed(_("A customer needs a name."), field="name")
    if len(name) > 128:
        raise ValidationFailed(_("A name has at most 128 characters."), field="name")
    return name


def _clean_identities(identities: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    out = []
    for kind, value in identities:
        value = (value or "").strip()
        _choice(kind, IdentityKind, "identities")
        if not value:
            raise ValidationFailed(_("A WeChat identity needs a value."), field="identities")
        if (kind, value) not in out:
            out.append((kind, value))
    return out


def branch_of(department: Department | None) -> Department | None:
    """The department's nearest ancestor of kind branch (itself included), else None."""
    if department is None:
        return None
    return (
        Department.objects.filter(
            pk__in=tree.ancestor_ids(department.path), kind=DepartmentKind.BRANCH
        )
        .order_by("-depth")
        .first()
    )


def _ownership(customer: Customer, action: str, *, from_owner: Any = None, to_owner: Any = None,
               by: Any = None, reason: str = "") -> OwnershipChange:
    return OwnershipChange.objects.create(
        customer=customer, action=action, from_owner=from_owner, to_owner=to_owner, by=by,
        reason=reason[:255],
    )


def _tags(names: Iterable[str], groups: dict[str, str] | None = None) -> list[Tag]:
    """The Tag rows for `names`, created when missing; `groups` (name -> group) files new
    tags, and fills the group of an existing tag that has none (WeCom tags come grouped)."""
    clean: list[str] = []
    for raw in names:
        name = " ".join((raw or "").split())
        if not name:
            continue
        if len(name) > 32:
            raise ValidationFailed(
                _("The tag %(tag)s is longer than 32 characters; shorten it.") % {"tag": name},
                field="tags",
            )
        if name not in clean:
            clean.append(name)
    tags = []
    groups = groups or {}
    for name in clean:
        group = (groups.get(name) or "")[:32]
        tag, _created = Tag.objects.get_or_create(name=name, defaults={"group": group})
        if group and not tag.group:
            Tag.objects.filter(pk=tag.pk).update(group=group)
            tag.group = group
        tags.append(tag)
    return tags


# --- Duplicates -----------------------------------------------------------------------------
def find_duplicates(
    *, phone: str = "", name: str = "", identities: Iterable[tuple[str, str]] = (),
    exclude_id: int | None = None, kind: str = CustomerKind.COMPANY,
) -> list[Customer]:
    """Customers (not merged away) with the same phone, WeChat identity or normalised name.

    A name only identifies a company: for a person (`kind="individual"`) the name is not
    compared, and a name only ever matches company customers, since two people called 张伟
    are not one customer. Unscoped: callers decide what of the answer the user may see.
    """
    q = Q()
    digits = normalise_phone(phone)
    if digits:
        q |= Q(phone=digits)
    key = name_key(name) if kind != CustomerKind.INDIVIDUAL else ""
    if key:
        q |= Q(name_key=key, kind=CustomerKind.COMPANY)
    pairs = [(k, (v or "").strip()) for k, v in identities if (v or "").strip()]
    if pairs:
        ident_q = Q()
        for kind, value in pairs:
            ident_q |= Q(kind=kind, value=value)
        q |= Q(pk__in=WeChatIdentity.objects.filter(ident_q).values("customer_id"))
    if not q:
        return []
    qs = Customer.objects.filter(q, merged_into__isnull=True).select_related("owner")
    if exclude_id is not None:
        qs = qs.exclude(pk=exclude_id)
    return list(qs.order_by("pk")[:20])


def _duplicate_field(found: Customer, phone: str, key: str) -> str:
    if phone and found.phone == phone:
        return "phone"
    if key and found.name_key == key:
        return "name"
    return "identities"


def _refuse_duplicate(actor: Any, found: Customer, field: str) -> None:
    visible = actor is None or scoped(Customer.objects.filter(pk=found.pk), actor).exists()
    if visible:
        owner = found.owner.name if found.owner else _("the shared pool")
        message = _(
            "%(name)s (no. %(id)s, held by %(owner)s) already has this %(what)s; "
            "open it instead of creating a new customer."
        ) % {"name": found.name, "id": found.pk, "owner": owner, "what": _field_label(field)}
    else:
        me = _employee(actor)
        manager = me.leader.name if me and me.leader_id else ""
        if not manager and me and me.department.manager_id:
            manager = me.department.manager.name
        message = _(
            "A customer with this %(what)s already exists, held by someone outside what you "
            "may see. Ask your manager %(manager)s to have it assigned to you or shared."
        ) % {"what": _field_label(field), "manager": manager or _("(or an administrator)")}
    exc = Conflict(message, code="duplicate_customer", field=field)
    # For internal callers (imports, WeChat sync) that want to link to the existing row.
    exc.duplicate = found  # type: ignore[attr-defined]
    exc.duplicate_visible = visible  # type: ignore[attr-defined]
    raise exc


def _field_label(field: str) -> str:
    return {"phone": _("phone number"), "name": _("name"),
            "identities": _("WeChat identity")}.get(field, field)


# --- Create and edit ------------------------------------------------------------------------
@transaction.atomic
def create_customer(
    *, actor: Any, name: str, kind: str = "company", phone: str = "", email: str = "",
    owner: Employee | None = None, source: str = "other", channel: str = "", city: str = "",
    region: str = "", industry: str = "", address: str = "", level: str = "B", note: str = "",
    tags: Iterable[str] = (), identities: Iterable[tuple[str, str]] = (),
    allow_duplicate: bool = False, pool_department: Department | None = None,
) -> Customer:
    """A new customer held by `owner`, or in the shared pool when `owner` is None.

    Refuses a duplicate (same phone, WeChat identity or normalised name) with Conflict
    "duplicate_customer" unless `allow_duplicate`. `actor` None is the system.
    """
    # Limitation: two simultaneous creates of the same new customer can both pass the
    # duplicate check (no unique index on phone or name_key); merge_customers repairs that.
    me = None
    if actor is not None:
        require(actor, "customer.edit")
        me = _employee(actor)
        if owner is not None and not visible_employees(actor).filter(pk=owner.pk).exists():
            raise ValidationFailed(
                _("You can only give customers to people in your own team."), field="owner"
            )
    if owner is not None and not owner.is_active:
        raise ValidationFailed(
            _("%(name)s has left the company; pick someone else as owner.")
            % {"name": owner.name}, field="owner",
        )
    name = _clean_name(name)
    phone = _clean_phone(phone)
    email = _clean_email(email)
    _choice(kind, CustomerKind, "kind")
    _choice(source, Source, "source")
    _choice(level, Level, "level")
    idents = _clean_identities(identities)
    key = name_key(name)

    if not allow_duplicate:
        found = find_duplicates(phone=phone, name=name, identities=idents, kind=kind)
        if found:
            _refuse_duplicate(actor, found[0], _duplicate_field(found[0], phone, key))
    if idents and WeChatIdentity.objects.filter(
        _or([Q(kind=k, value=v) for k, v in idents])
    ).exists():
        # Even an allowed duplicate cannot share a WeChat identity: it points at one customer.
        raise Conflict(
            _("This WeChat identity already belongs to another customer; merge the two "
              "instead."),
            code="identity_taken", field="identities",
        )

    now = timezone.now()
    in_pool = owner is None
    customer = Customer.objects.create(
        kind=kind, name=name, name_key=key, phone=phone, email=email, industry=industry,
        city=city, region=region, address=address, source=source, channel=channel,
        level=level, note=note, owner=owner,
        department=owner.department if owner else pool_department,
        in_pool=in_pool, pool_department=pool_department if in_pool else None,
        owned_since=None if in_pool else now, released_at=now if in_pool else None,
        last_activity_at=now,
    )
    for ident_kind, value in idents:
        WeChatIdentity.objects.create(customer=customer, kind=ident_kind, value=value)
    tag_rows = _tags(tags)
    if tag_rows:
        customer.tags.set(tag_rows)
    _ownership(customer, PoolAction.CREATE, to_owner=owner, by=me)
    audit.record(actor, "customer.create", customer, after={
        **audit.snapshot(customer, _SNAPSHOT_FIELDS),  # type: ignore[dict-item]
        "tags": [t.name for t in tag_rows], "identities": [list(i) for i in idents],
    })
    events.emit("customer.created", customer, actor=actor,
                owner_id=owner.pk if owner else None, source=source, in_pool=in_pool)
    return customer


@transaction.atomic
def create_customers_in_bulk(
    *, actor: Any, rows: list[dict[str, Any]], source: str, reason: str = "",
) -> list[tuple[Customer, bool]]:
    """Many new customers at once (a WeCom sync of thousands of contacts): the same checks as
    create_customer, in a few queries per batch instead of a dozen per customer.

    Each row: name, kind, owner (Employee or None: the shared pool), identities
    [(kind, value)], tags [names], tag_groups {name: group}, contact {name, title} or None.
    A row whose WeChat identity is already a customer's, or a company whose normalised name
    is (or an earlier row's), is not created again: it is linked, its new identities and its
    contact person attached there. Returns (customer, created) per row, in row order.

    One history row per new customer, one audit row and one "customer.imported" event (with
    the id range and count, as the file import has) per call, not one per customer.
    """
    if actor is not None:
        require(actor, "customer.edit")
    _choice(source, Source, "source")
    me = _employee(actor)
    now = timezone.now()
    clean: list[dict[str, Any]] = []
    for row in rows:
        kind = _choice(row.get("kind") or CustomerKind.INDIVIDUAL, CustomerKind, "kind")
        owner = row.get("owner")
        if owner is not None and not owner.is_active:
            owner = None  # a leaver holds nothing new: the customer waits in the pool
        name = _clean_name(row["name"])
        clean.append({"name": name, "kind": kind, "key": name_key(name), "owner": owner,
                      "identities": _clean_identities(row.get("identities", ())),
                      "tags": list(row.get("tags", ())), "groups": row.get("tag_groups", {}),
                      "contact": row.get("contact")})

    # 1. Who is already here: by WeChat identity, then (companies) by normalised name.
    pairs = {pair for row in clean for pair in row["identities"]}
    by_identity: dict[tuple[str, str], int] = {}
    values = sorted({v for _k, v in pairs})
    for start in range(0, len(values), 900):
        for kind, value, customer_id in WeChatIdentity.objects.filter(
            value__in=values[start:start + 900]
        ).values_list("kind", "value", "customer_id"):
            by_identity[(kind, value)] = customer_id
    keys = sorted({r["key"] for r in clean if r["kind"] == CustomerKind.COMPANY and r["key"]})
    by_key: dict[str, int] = {}
    for start in range(0, len(keys), 900):
        for key, customer_id in Customer.objects.filter(
            name_key__in=keys[start:start + 900], kind=CustomerKind.COMPANY,
            merged_into__isnull=True,
        ).order_by("-pk").values_list("name_key", "pk"):
            by_key[key] = customer_id

    # 2. New rows (the first row of a company creates it, later ones link to it).
    found: list[int | None] = []
    new_objects: list[Customer] = []
    new_index: dict[int, int] = {}  # row index -> position in new_objects
    first_of_key: dict[str, int] = {}
    for index, row in enumerate(clean):
        existing = next((by_identity[p] for p in row["identities"] if p in by_identity), None)
        if existing is None and row["kind"] == CustomerKind.COMPANY and row["key"]:
            existing = by_key.get(row["key"])
            if existing is None and row["key"] in first_of_key:
                found.append(None)
                new_index[index] = new_index[first_of_key[row["key"]]]
                continue
        found.append(existing)
        if existing is not None:
            continue
        owner = row["owner"]
        if row["kind"] == CustomerKind.COMPANY and row["key"]:
            first_of_key[row["key"]] = index
        new_index[index] = len(new_objects)
        new_objects.append(Customer(
            kind=row["kind"], name=row["name"], name_key=row["key"], source=source,
            level=Level.B, owner=owner, department_id=owner.department_id if owner else None,
            in_pool=owner is None, owned_since=now if owner else None,
            released_at=None if owner else now, last_activity_at=now,
        ))
    Customer.objects.bulk_create(new_objects, batch_size=500)
    created_ids = [c.pk for c in new_objects]
    existing_ids = {pk for pk in found if pk is not None}
    loaded = Customer.objects.in_bulk(sorted(existing_ids)) if existing_ids else {}
    result: list[tuple[Customer, bool]] = []
    first_row_of: dict[int, int] = {}
    for index, pk in enumerate(found):
        if pk is not None:
            result.append((loaded[pk], False))
            continue
        customer = new_objects[new_index[index]]
        first = first_row_of.setdefault(customer.pk, index)
        result.append((customer, first == index))

    # 3. What hangs off them: identities not yet anyone's, contact persons, history, tags.
    identity_rows, seen_pairs = [], set(by_identity)
    contacts: list[Contact] = []
    has_contacts = set(Contact.objects.filter(customer_id__in=existing_ids)
                       .values_list("customer_id", flat=True)) if existing_ids else set()
    for (customer, _created), row in zip(result, clean, strict=True):
        for pair in row["identities"]:
            if pair not in seen_pairs:
                seen_pairs.add(pair)
                identity_rows.append(WeChatIdentity(customer=customer, kind=pair[0],
                                                    value=pair[1]))
        person = row["contact"]
        if person and person.get("name"):
            contacts.append(Contact(customer=customer, name=" ".join(person["name"].split())[:64],
                                    title=(person.get("title") or "")[:64],
                                    is_primary=customer.pk not in has_contacts))
            has_contacts.add(customer.pk)
    WeChatIdentity.objects.bulk_create(identity_rows, batch_size=1000)
    Contact.objects.bulk_create(contacts, batch_size=1000)
    OwnershipChange.objects.bulk_create([
        OwnershipChange(customer=c, action=PoolAction.CREATE, to_owner=c.owner, by=me,
                        reason=reason[:255]) for c in new_objects
    ], batch_size=1000)
    wanted: dict[int, set[str]] = {}
    tag_cache: dict[str, Tag] = {}
    new_ids = set(created_ids)
    for (customer, _created), row in zip(result, clean, strict=True):
        if customer.pk in new_ids:
            names = {t.name for t in _tags_in_bulk(row["tags"], row["groups"], tag_cache)}
            wanted.setdefault(customer.pk, set()).update(names)
    if wanted:
        tag_ids = dict(Tag.objects.filter(
            name__in={n for names in wanted.values() for n in names}).values_list("name", "pk"))
        Customer.tags.through.objects.bulk_create([
            Customer.tags.through(customer_id=pk, tag_id=tag_ids[n])
            for pk, names in wanted.items() for n in sorted(names)
        ], batch_size=1000, ignore_conflicts=True)

    if new_objects:
        audit.record(actor, "customer.bulk_create", object_type="customers.customer",
                     object_id=f"{created_ids[0]}-{created_ids[-1]}", after={
                         "source": source, "count": len(new_objects), "first_id": created_ids[0],
                         "last_id": created_ids[-1], "reason": reason,
                         "linked": len(existing_ids)})
        events.emit("customer.imported", new_objects[0], actor=actor, source=source,
                    first_id=created_ids[0], last_id=created_ids[-1], count=len(new_objects))
    return result


def _tags_in_bulk(names: Iterable[str], groups: dict[str, str],
                  cache: dict[str, Tag]) -> list[Tag]:
    """_tags with a per-call cache, so a sync of thousands of customers reads each tag once."""
    out = []
    missing = []
    for raw in names:
        name = " ".join((raw or "").split())[:32]
        if not name:
            continue
        if name in cache:
            out.append(cache[name])
        else:
            missing.append(name)
    for tag in _tags(missing, groups):
        cache[tag.name] = tag
        out.append(tag)
    return out


def _or(qs: list[Q]) -> Q:
    out = Q()
    for q in qs:
        out |= q
    return out


@transaction.atomic
def update_customer(*, actor: Any, customer: Customer, **fields: Any) -> Customer:
    """Change the customer's own fields (not its owner: see claim/assign/release).

    Pass allow_duplicate=True to keep a name or phone another customer already has.
    """
    allow_duplicate = bool(fields.pop("allow_duplicate", False))
    unknown = sorted(set(fields) - set(EDITABLE_FIELDS))
    if unknown:
        raise ValidationFailed(
            _("These fields cannot be changed here: %(fields)s.")
            % {"fields": ", ".join(unknown)}, field=unknown[0],
        )
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    _editable(actor, customer)
    clean: dict[str, Any] = {}
    for field, value in fields.items():
        if field == "name":
            value = _clean_name(value)
        elif field == "phone":
            value = _clean_phone(value or "")
        elif field == "email":
            value = _clean_email(value or "")
        elif field == "kind":
            _choice(value, CustomerKind, field)
        elif field == "source":
            _choice(value, Source, field)
        elif field == "level":
            _choice(value, Level, field)
        elif field == "status":
            _choice(value, FollowStatus, field)
        elif field != "next_followup_at":
            value = (value or "").strip() if isinstance(value, str) or value is None else value
        clean[field] = value

    before = audit.snapshot(customer, list(clean))
    for field, value in clean.items():
        setattr(customer, field, value)
    customer.name_key = name_key(customer.name)
    if not allow_duplicate and ({"name", "phone", "kind"} & set(clean)):
        found = find_duplicates(
            phone=customer.phone if "phone" in clean else "",
            name=customer.name if {"name", "kind"} & set(clean) else "",
            exclude_id=customer.pk, kind=customer.kind,
        )
        if found:
            _refuse_duplicate(actor, found[0],
                              _duplicate_field(found[0], customer.phone, customer.name_key))
    after = audit.snapshot(customer, list(clean))
    diff = audit.changes(before, after)
    if not diff:
        return customer
    customer.save()
    audit.record(actor, "customer.update", customer,
                 before={k: v[0] for k, v in diff.items()},
                 after={k: v[1] for k, v in diff.items()})
    return customer


@transaction.atomic
def add_contact(
    *, actor: Any, customer: Customer, name: str, title: str = "", phone: str = "",
    email: str = "", is_primary: bool = False,
) -> Contact:
    _editable(actor, customer)
    name = " ".join((name or "").split())
    if not name:
        raise ValidationFailed(_("A contact needs a name."), field="name")
    if len(name) > 64:
        raise ValidationFailed(_("A contact name has at most 64 characters."), field="name")
    phone = _clean_phone(phone)
    email = _clean_email(email)
    if is_primary:
        customer.contacts.filter(is_primary=True).update(is_primary=False)
    elif not customer.contacts.exists():
        is_primary = True
    contact = Contact.objects.create(customer=customer, name=name, title=(title or "").strip(),
                                     phone=phone, email=email, is_primary=is_primary)
    audit.record(actor, "customer.add_contact", customer,
                 after={"contact": contact.pk, **audit.snapshot(contact)})  # type: ignore[dict-item]
    return contact


@transaction.atomic
def record_consent(
    *, actor: Any, customer: Customer, purpose: str, granted: bool, method: str,
    evidence: str = "", at: dt.datetime | None = None,
) -> Consent:
    """Record what the person agreed to (or withdrew); the newest row per purpose counts."""
    _editable(actor, customer)
    _choice(purpose, ConsentPurpose, "purpose")
    _choice(method, ConsentMethod, "method")
    now = timezone.now()
    at = at or now
    if timezone.is_naive(at):
        raise ValidationFailed(_("Give the time with its time zone."), field="at")
    if at > now + dt.timedelta(minutes=5):
        raise ValidationFailed(_("Consent cannot be recorded for a future time."), field="at")
    consent = Consent.objects.create(
        customer=customer, purpose=purpose, granted=bool(granted), at=at, method=method,
        evidence=(evidence or "").strip()[:255], recorded_by=_employee(actor),
    )
    audit.record(actor, "customer.consent", customer, after={
        "purpose": purpose, "granted": bool(granted), "method": method, "at": at,
        "evidence": consent.evidence,
    })
    return consent


@transaction.atomic
def add_identity(*, actor: Any, customer: Customer, kind: str, value: str) -> WeChatIdentity:
    """Attach a WeChat identity; attaching the same one again is harmless."""
    _editable(actor, customer)
    ((kind, value),) = _clean_identities([(kind, value)])
    existing = WeChatIdentity.objects.filter(kind=kind, value=value).first()
    if existing is not None:
        if existing.customer_id == customer.pk:
            return existing
        raise Conflict(
            _("This WeChat identity already belongs to another customer; merge the two "
              "instead."),
            code="identity_taken", field="value",
        )
    identity = WeChatIdentity.objects.create(customer=customer, kind=kind, value=value)
    audit.record(actor, "customer.add_identity", customer, after={"kind": kind, "value": value})
    return identity


@transaction.atomic
def set_tags(*, actor: Any, customer: Customer, names: Iterable[str],
             groups: dict[str, str] | None = None) -> list[Tag]:
    """Replace the customer's tags with `names`, creating tags that do not exist yet (in the
    group `groups` names for them, if any)."""
    _editable(actor, customer)
    before = sorted(customer.tags.values_list("name", flat=True))
    tags = _tags(names, groups)
    customer.tags.set(tags)
    after = sorted(t.name for t in tags)
    if before != after:
        audit.record(actor, "customer.tags", customer, before={"tags": before},
                     after={"tags": after})
    return tags


def reveal_phone(*, actor: Any, customer: Customer) -> str:
    """The full phone number; audited every time (PIPL)."""
    return _reveal(actor, customer, customer.phone, "phone")


def reveal_contact_phone(*, actor: Any, contact: Contact) -> str:
    return _reveal(actor, contact.customer, contact.phone, f"contact:{contact.pk}")


@transaction.atomic
def _reveal(actor: Any, customer: Customer, phone: str, what: str) -> str:
    require(actor, "customer.unmask")
    _visible(actor, customer)
    audit.record(actor, "customer.unmask", customer, after={"field": what})
    return phone


# --- Merge ----------------------------------------------------------------------------------
_FILL_BLANKS = ("phone", "email", "industry", "city", "region", "address", "channel")


@transaction.atomic
def merge_customers(*, actor: Any, survivor: Customer, duplicate: Customer) -> Customer:
    """Fold `duplicate` into `survivor`: every related row moves, value figures add up; the
    duplicate row stays (marked merged_into) so links and history still resolve."""
    from weiying.pipeline import models as pipeline

    require(actor, "customer.merge")
    if survivor.pk == duplicate.pk:
        raise ValidationFailed(_("Pick two different customers to merge."), field="duplicate")
    # Lock in id order so two merges touching the same pair cannot deadlock.
    locked = {c.pk: c for c in Customer.objects.select_for_update().filter(
        pk__in=[survivor.pk, duplicate.pk]).order_by("pk")}
    if len(locked) != 2:
        raise NotFound()
    survivor, duplicate = locked[survivor.pk], locked[duplicate.pk]
    _visible(actor, survivor)
    _visible(actor, duplicate)
    for c in (survivor, duplicate):
        if c.merged_into_id:
            raise Conflict(
                _("%(name)s was already merged into another customer; pick the surviving "
                  "one.") % {"name": c.name},
                code="already_merged",
            )

    snapshot = {
        "customer": audit.snapshot(duplicate),
        "survivor_before": audit.snapshot(survivor),
        "contacts": list(duplicate.contacts.values_list("pk", flat=True)),
        "identities": [[i.kind, i.value] for i in duplicate.wechat_identities.all()],
        "tags": sorted(duplicate.tags.values_list("name", flat=True)),
    }
    moved = {
        "contacts": Contact.objects.filter(customer=duplicate).update(customer=survivor),
        "identities": WeChatIdentity.objects.filter(customer=duplicate).update(
            customer=survivor),
        "consents": Consent.objects.filter(customer=duplicate).update(customer=survivor),
        "followups": pipeline.FollowUp.objects.filter(customer=duplicate).update(
            customer=survivor),
        "leads": pipeline.Lead.objects.filter(customer=duplicate).update(customer=survivor),
        "opportunities": pipeline.Opportunity.objects.filter(customer=duplicate).update(
            customer=survivor),
        "quotes": pipeline.Quote.objects.filter(customer=duplicate).update(customer=survivor),
        "contracts": pipeline.Contract.objects.filter(customer=duplicate).update(
            customer=survivor),
        "tickets": pipeline.Ticket.objects.filter(customer=duplicate).update(customer=survivor),
    }
    dup_tags = list(duplicate.tags.all())
    survivor.tags.add(*dup_tags)
    survivor.collaborators.add(*duplicate.collaborators.all())
    moved["tags"] = len(dup_tags)

    survivor.total_signed = money(survivor.total_signed + duplicate.total_signed)
    survivor.total_collected = money(survivor.total_collected + duplicate.total_collected)
    survivor.last_purchase_at = _latest(survivor.last_purchase_at, duplicate.last_purchase_at)
    survivor.last_followup_at = _latest(survivor.last_followup_at, duplicate.last_followup_at)
    survivor.last_activity_at = _latest(survivor.last_activity_at, duplicate.last_activity_at)
    survivor.next_followup_at = _earliest(survivor.next_followup_at, duplicate.next_followup_at)
    for field in _FILL_BLANKS:
        if not getattr(survivor, field) and getattr(duplicate, field):
            setattr(survivor, field, getattr(duplicate, field))
    if duplicate.note:
        survivor.note = (survivor.note + "\n\n" if survivor.note else "") + duplicate.note
    survivor.save()

    Customer.objects.filter(pk=duplicate.pk).update(
        merged_into=survivor, in_pool=False, total_signed=0, total_collected=0,
        updated_at=timezone.now(),
    )
    duplicate.refresh_from_db()
    me = _employee(actor)
    _ownership(survivor, PoolAction.MERGE, from_owner=duplicate.owner, to_owner=survivor.owner,
               by=me, reason=_("Merged no. %(id)s %(name)s") % {
                   "id": duplicate.pk, "name": duplicate.name})
    merge = CustomerMerge.objects.create(survivor=survivor, duplicate=duplicate,
                                         snapshot=snapshot, moved=moved, by=me)
    audit.record(actor, "customer.merge", survivor, before=snapshot["survivor_before"],
                 after={"duplicate": duplicate.pk, "merge": merge.pk, "moved": moved})
    events.emit("customer.merged", survivor, actor=actor, duplicate_id=duplicate.pk,
                moved=moved)
    return survivor


def _latest(a: Any, b: Any) -> Any:
    return max(x for x in (a, b) if x is not None) if (a or b) else None


def _earliest(a: Any, b: Any) -> Any:
    return min(x for x in (a, b) if x is not None) if (a or b) else None


# --- The shared pool (公海) -----------------------------------------------------------------
def _to_pool_fields(owner: Employee | None, now: dt.datetime) -> dict[str, Any]:
    branch = branch_of(owner.department) if owner else None
    return {
        "in_pool": True, "pool_department": branch, "owner": None, "released_at": now,
        "owned_since": None, "recycle_warned_at": None, "updated_at": now,
    }


@transaction.atomic
def release_customer(*, actor: Any, customer: Customer, reason: str) -> Customer:
    """Give a customer back to the pool of the owner's branch (the company's if none)."""
    reason = " ".join((reason or "").split())
    if not reason:
        raise ValidationFailed(_("Say why you release this customer."), field="reason")
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    _visible(actor, customer)
    if customer.merged_into_id:
        raise Conflict(_("This customer was merged into another."), code="customer_merged")
    if customer.in_pool or customer.owner_id is None:
        raise Conflict(_("This customer is already in the shared pool."), code="not_owned")
    me = _employee(actor)
    if actor is not None:
        is_owner = me is not None and me.pk == customer.owner_id
        if is_owner:
            require(actor, "pool.release")
        else:
            require(actor, "pool.assign")
    owner = customer.owner
    now = timezone.now()
    for field, value in _to_pool_fields(owner, now).items():
        setattr(customer, field, value)
    customer.save()
    _ownership(customer, PoolAction.RELEASE, from_owner=owner, by=me, reason=reason)
    audit.record(actor, "customer.release", customer,
                 before={"owner": owner.pk if owner else None},
                 after={"in_pool": True, "pool_department": customer.pool_department_id,
                        "reason": reason})
    events.emit("customer.released", customer, actor=actor, from_owner_id=owner.pk if owner
                else None, reason=reason, action="release")
    return customer


def _local_day_start(now: dt.datetime) -> dt.datetime:
    day = timezone.localtime(now).date()
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


@transaction.atomic
def claim_customer(*, actor: Any, customer: Customer) -> Customer:
    """Take a customer from the pool. Race-safe: of many simultaneous claims one wins.

    Limits (settings.WEIYING): claims a local day, customers held, and a bar on a former
    owner taking back a customer that left them recently.
    """
    require(actor, "pool.claim")
    me = _require_employee(actor)
    _visible(actor, customer)
    # 1. Lock the claimant's row: their parallel claims queue here, so the counts hold.
    me = Employee.objects.select_for_update().get(pk=me.pk)
    now = timezone.now()
    current = Customer.objects.filter(pk=customer.pk).values(
        "in_pool", "owner_id", "merged_into_id").first()
    if current is None or not current["in_pool"] or current["owner_id"] is not None \
            or current["merged_into_id"] is not None:
        raise Conflict(_("This customer is no longer in the shared pool; someone has it "
                         "already."), code="not_in_pool")

    # 2. The rules, each with its own refusal.
    bar_days = rule("POOL_RECLAIM_BAR_DAYS")
    left_me = OwnershipChange.objects.filter(
        customer_id=customer.pk, from_owner=me,
        action__in=[PoolAction.RELEASE, PoolAction.RECYCLE, PoolAction.ASSIGN],
        at__gte=now - dt.timedelta(days=bar_days),
    ).order_by("-at").first()
    if left_me is not None:
        until = timezone.localtime(left_me.at + dt.timedelta(days=bar_days))
        raise Conflict(
            _("You held this customer until recently; you may claim it again from "
              "%(date)s.") % {"date": until.strftime("%Y-%m-%d %H:%M")},
            code="claim_reclaim_barred",
        )
    daily = rule("POOL_DAILY_CLAIM_LIMIT")
    claimed_today = OwnershipChange.objects.filter(
        to_owner=me, action=PoolAction.CLAIM, at__gte=_local_day_start(now)
    ).count()
    if claimed_today >= daily:
        raise Conflict(
            _("You have claimed %(count)s customers today, the daily limit; claim more "
              "tomorrow.") % {"count": claimed_today},
            code="claim_daily_limit",
        )
    holding = rule("POOL_HOLDING_LIMIT")
    held = Customer.objects.filter(owner=me, merged_into__isnull=True).count()
    if held >= holding:
        raise Conflict(
            _("You hold %(count)s customers, the most one person may hold; release some "
              "before claiming more.") % {"count": held},
            code="claim_holding_limit",
        )

    # 3. The claim itself: only one conditional UPDATE can find the row still in the pool.
    won = Customer.objects.filter(
        pk=customer.pk, in_pool=True, owner__isnull=True, merged_into__isnull=True
    ).update(
        in_pool=False, owner=me, department=me.department_id, pool_department=None,
        owned_since=now, released_at=None, recycle_warned_at=None, last_activity_at=now,
        updated_at=now,
    )
    if won != 1:
        raise Conflict(_("This customer is no longer in the shared pool; someone has it "
                         "already."), code="not_in_pool")
    customer.refresh_from_db()
    _ownership(customer, PoolAction.CLAIM, to_owner=me, by=me)
    audit.record(actor, "customer.claim", customer, before={"owner": None, "in_pool": True},
                 after={"owner": me.pk, "in_pool": False})
    events.emit("customer.claimed", customer, actor=actor, owner_id=me.pk)
    return customer


@transaction.atomic
def assign_customer(*, actor: Any, customer: Customer, owner: Employee,
                    reason: str = "") -> Customer:
    """A manager gives a pool customer (or someone else's) to a person in their scope.

    `actor` None is the system (the WeCom sync when the owner's WeCom tie ends and another
    follower remains): no permission or scope check, the same history, audit and event."""
    if actor is not None:
        require(actor, "pool.assign")
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    _visible(actor, customer)
    if customer.merged_into_id:
        raise Conflict(_("This customer was merged into another."), code="customer_merged")
    if actor is not None and not visible_employees(actor).filter(pk=owner.pk).exists():
        raise ValidationFailed(
            _("You can only assign customers to people in your own team."), field="owner"
        )
    if not owner.is_active:
        raise ValidationFailed(
            _("%(name)s has left the company; pick someone else.") % {"name": owner.name},
            field="owner",
        )
    if customer.owner_id == owner.pk:
        raise Conflict(_("%(name)s already holds this customer.") % {"name": owner.name},
                       code="already_owner")
    previous = customer.owner
    was_in_pool = customer.in_pool
    now = timezone.now()
    Customer.objects.filter(pk=customer.pk).update(
        in_pool=False, owner=owner, department=owner.department_id, pool_department=None,
        owned_since=now, released_at=None, recycle_warned_at=None, last_activity_at=now,
        updated_at=now,
    )
    customer.refresh_from_db()
    me = _employee(actor)
    _ownership(customer, PoolAction.ASSIGN, from_owner=previous, to_owner=owner, by=me,
               reason=reason)
    audit.record(actor, "customer.assign", customer,
                 before={"owner": previous.pk if previous else None, "in_pool": was_in_pool},
                 after={"owner": owner.pk, "in_pool": False, **({"reason": reason}
                                                                if reason else {})})
    events.emit("customer.assigned", customer, actor=actor, owner_id=owner.pk,
                from_owner_id=previous.pk if previous else None, from_pool=was_in_pool)
    return customer


@transaction.atomic
def hand_over_customers(*, actor: Any, from_employee: Employee, to_employee: Employee,
                        reason: str = "") -> list[int]:
    """Give every customer `from_employee` holds to `to_employee` (a departure's successor).

    One history row and one "customer.assigned" event per customer, one audit row for the
    hand-over. Customers already handed over are not touched again, so a replay changes
    nothing. Returns the ids handed over. `actor` None is the system (the "employee.left"
    subscriber)."""
    if actor is not None:
        require(actor, "pool.assign")
        if not visible_employees(actor).filter(pk=to_employee.pk).exists():
            raise ValidationFailed(
                _("You can only assign customers to people in your own team."), field="owner"
            )
    to_employee = Employee.objects.select_related("department").get(pk=to_employee.pk)
    if to_employee.pk == from_employee.pk:
        raise ValidationFailed(_("Pick someone else to hand the customers over to."),
                               field="owner")
    if not to_employee.is_active:
        raise ValidationFailed(
            _("%(name)s has left the company; pick someone else.") % {"name": to_employee.name},
            field="owner",
        )
    held = Customer.objects.select_for_update(of=("self",)).filter(
        owner=from_employee, in_pool=False, merged_into__isnull=True
    )
    if actor is not None:
        held = scoped(held, actor)
    ids = sorted(held.values_list("pk", flat=True))
    if not ids:
        return []
    now = timezone.now()
    Customer.objects.filter(pk__in=ids).update(
        owner=to_employee, department=to_employee.department_id, owned_since=now,
        recycle_warned_at=None, last_activity_at=now, updated_at=now,
    )
    # The successor owns them now; a collaborator entry of theirs would say it twice.
    Customer.collaborators.through.objects.filter(
        customer_id__in=ids, employee_id=to_employee.pk).delete()
    me = _employee(actor)
    reason = (reason or _("Hand-over from %(name)s") % {"name": from_employee.name})[:255]
    OwnershipChange.objects.bulk_create([
        OwnershipChange(customer_id=pk, action=PoolAction.ASSIGN, from_owner=from_employee,
                        to_owner=to_employee, by=me, reason=reason)
        for pk in ids
    ])
    audit.record(actor, "customer.hand_over", from_employee,
                 before={"owner": from_employee.pk},
                 after={"owner": to_employee.pk, "customers": ids, "reason": reason})
    for pk in ids:
        events.emit("customer.assigned", Customer(pk=pk), actor=actor, owner_id=to_employee.pk,
                    from_owner_id=from_employee.pk, from_pool=False, hand_over=True)
    return ids


@transaction.atomic
def update_collaborators(*, actor: Any, customer: Customer, add: Iterable[Employee] = (),
                         remove: Iterable[Employee] = ()) -> Customer:
    """Add and remove people who work a customer beside its owner (a second rep who follows
    the same WeCom contact). The owner is never a collaborator of their own customer."""
    _editable(actor, customer)
    before = set(customer.collaborators.values_list("pk", flat=True))
    adding = {e.pk for e in add if e.pk != customer.owner_id} - before
    removing = {e.pk for e in remove} & before
    if not adding and not removing:
        return customer
    if adding:
        customer.collaborators.add(*adding)
    if removing:
        customer.collaborators.remove(*removing)
    audit.record(actor, "customer.collaborators", customer, before={"collaborators":
                 sorted(before)}, after={"collaborators": sorted((before | adding) - removing)})
    return customer


def _recycle_candidates(now: dt.datetime) -> tuple[Q, Q, Any]:
    from weiying.pipeline.models import Opportunity

    no_followup = rule("POOL_RECYCLE_NO_FOLLOWUP_DAYS")
    no_opportunity = rule("POOL_RECYCLE_NO_OPPORTUNITY_DAYS")
    qs = Customer.objects.filter(
        owner__isnull=False, in_pool=False, merged_into__isnull=True
    ).annotate(
        clock=Coalesce("last_followup_at", "owned_since", "created_at"),
        held_since=Coalesce("owned_since", "created_at"),
        has_opportunity=Exists(Opportunity.objects.filter(
            customer=OuterRef("pk"), status__in=["open", "won"])),
    )
    stale = Q(clock__lt=now - dt.timedelta(days=no_followup))
    idle = Q(has_opportunity=False, held_since__lt=now - dt.timedelta(days=no_opportunity))
    return stale, idle, qs


@transaction.atomic
def recycle_customers(*, now: dt.datetime | None = None) -> dict[str, int]:
    """The nightly job: customers neglected too long go back to the pool; those close to it
    get one warning (customer.recycle_warning) per stretch of neglect."""
    # Limitation: one row at a time (a conditional UPDATE each, so a follow-up or a claim
    # racing the job wins); fine for thousands a night, slow for a million.
    now = now or timezone.now()
    warn_days = dt.timedelta(days=rule("POOL_RECYCLE_WARNING_DAYS"))
    stale, idle, qs = _recycle_candidates(now)
    recycled = 0
    for row in qs.filter(stale | idle).select_related("owner__department").iterator():
        reason = (
            _("No follow-up for %(days)s days") % {"days": rule("POOL_RECYCLE_NO_FOLLOWUP_DAYS")}
            if row.clock < now - dt.timedelta(days=rule("POOL_RECYCLE_NO_FOLLOWUP_DAYS"))
            else _("No opportunity for %(days)s days")
            % {"days": rule("POOL_RECYCLE_NO_OPPORTUNITY_DAYS")}
        )
        owner = row.owner
        fields = _to_pool_fields(owner, now)
        done = Customer.objects.filter(
            pk=row.pk, owner_id=row.owner_id, in_pool=False,
            last_followup_at=row.last_followup_at,
        ).update(**{k: v for k, v in fields.items()})
        if not done:
            continue
        recycled += 1
        _ownership(row, PoolAction.RECYCLE, from_owner=owner, reason=reason)
        audit.record(None, "customer.recycle", row, before={"owner": owner.pk},
                     after={"in_pool": True, "pool_department": fields["pool_department"],
                            "reason": reason})
        events.emit("customer.released", row, from_owner_id=owner.pk, reason=reason,
                    action="recycle")

    # Warnings: due within the warning window, and not yet warned since the clock restarted.
    _stale_soon, _idle_soon, qs = _recycle_candidates(now + warn_days)
    warned = 0
    soon = qs.filter(_stale_soon | _idle_soon).filter(
        Q(recycle_warned_at__isnull=True) | Q(recycle_warned_at__lt=F("clock"))
    )
    for row in soon.iterator():
        due = _recycle_due(row)
        Customer.objects.filter(pk=row.pk).update(recycle_warned_at=now)
        warned += 1
        events.emit("customer.recycle_warning", row, owner_id=row.owner_id,
                    due_at=due, days_left=max(0, (due - now).days))
    logger.info("customer recycle done", extra={"recycled": recycled, "warned": warned})
    return {"recycled": recycled, "warned": warned}


def _recycle_due(row: Any) -> dt.datetime:
    """When an annotated candidate row falls back to the pool."""
    due = row.clock + dt.timedelta(days=rule("POOL_RECYCLE_NO_FOLLOWUP_DAYS"))
    if not row.has_opportunity:
        due = min(due, row.held_since + dt.timedelta(
            days=rule("POOL_RECYCLE_NO_OPPORTUNITY_DAYS")))
    return due
