"""Customers from WeCom external contacts (customer-contact secret): a full sync and the
`change_external_contact` callbacks.

An external contact is a customer, found by its WeChat identities (the external user id,
or the union id it shares with the Official Account) or created through the customers
services (source WeCom; a company when WeCom names the contact's employer, the person then
its contact; else an individual). Each `follow_user` entry is a CustomerFollow: the owner's
for the customer's owner, a collaborator's for every other rep who follows the contact.
A new customer's owner is the rep who has followed the contact longest.

When a tie ends (either side deletes the other) the CustomerFollow is ended and the
retention clock starts (WEIYING["WECHAT_RETENTION_DAYS"]). If the ended follower owned the
customer and another rep still follows, the longest-standing remaining follower becomes the
owner. If nobody follows any more, the customer stays with its owner (the relationship, the
opportunities and the history are still theirs to work by phone) and is tagged
NO_CONTACT_TAG: a tag, not a new column, because reps and managers already filter lists by
tags, and it disappears by itself when a rep is added back.

Changes the app makes through the API produce no callback; everything here only reads
WeCom, so nothing needs writing back.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_noop

from weiying.core import audit
from weiying.core.errors import Conflict
from weiying.customers import services as customers
from weiying.customers.choices import CustomerKind, IdentityKind, Source
from weiying.customers.models import Customer, WeChatIdentity
from weiying.org.models import Employee
from weiying.wechat import client, inbox
from weiying.wechat.choices import FollowEnd, FollowRelation, InboxSource
from weiying.wechat.models import CustomerFollow

logger = logging.getLogger(__name__)

BATCH_USERS = 100  # batch/get_by_user takes at most 100 user ids a call
PAGE_LIMIT = 100  # … and answers at most 100 contacts a page
WRITE_BATCH = 1000  # contacts written per transaction in a full sync

# Marks a customer whom no rep follows in WeCom any more (see the module docstring). Tag
# names are data, written in the installation's language.
NO_CONTACT_TAG = gettext_noop("No WeCom rep follows")
WECOM_TAG_GROUP = gettext_noop("WeCom")


def _in_site_language(text: str) -> str:
    with translation.override(settings.LANGUAGE_CODE):
        return gettext(text)


def no_contact_tag() -> str:
    return _in_site_language(NO_CONTACT_TAG)[:32]


def retention_days() -> int:
    return int(settings.WEIYING["WECHAT_RETENTION_DAYS"])


def _aware(timestamp: Any) -> dt.datetime | None:
    try:
        seconds = int(timestamp)
    except (TypeError, ValueError):
        return None
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC) if seconds > 0 else None


# --- What WeCom says about one contact ------------------------------------------------------
@dataclass
class Entry:
    """One external contact and its followers, normalised from either API shape.

    `from_batch`: read with batch/get_by_user, which names a follow's tags by id only and so
    leaves out the rep's personal tags (type 2, which have no id); the writer keeps the
    personal tags a follow already has instead of taking their absence for a removal."""

    contact: dict[str, Any]
    follows: list[dict[str, Any]] = field(default_factory=list)
    unresolved_tags: bool = False
    from_batch: bool = False

    @property
    def external_userid(self) -> str:
        return str(self.contact["external_userid"])

    @property
    def unionid(self) -> str:
        return str(self.contact.get("unionid") or "")

    def identities(self) -> list[tuple[str, str]]:
        out = [(IdentityKind.WECOM_EXTERNAL.value, self.external_userid)]
        if self.unionid:
            out.append((IdentityKind.UNIONID.value, self.unionid))
        return out

    @property
    def company(self) -> str:
        return str(self.contact.get("corp_full_name") or self.contact.get("corp_name") or "")

    def tag_names(self) -> dict[str, str]:
        """name -> group over every follower's tags."""
        return {t["name"]: t["group"] for f in self.follows for t in f["tags"]}


def _sorted_tags(tags: Iterable[dict[str, str]]) -> list[dict[str, str]]:
    return sorted(tags, key=lambda t: (t["group"], t["name"], t["id"]))


def _follow(raw: dict[str, Any], tags: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "userid": str(raw.get("userid", "")),
        "remark": str(raw.get("remark") or "")[:128],
        "description": str(raw.get("description") or "")[:255],
        "state": str(raw.get("state") or "")[:64],
        "add_way": int(raw["add_way"]) if str(raw.get("add_way", "")).lstrip("-").isdigit()
        else None,
        "added_at": _aware(raw.get("createtime")),
        "tags": _sorted_tags(tags),
    }


def _tag(tag_id: Any, name: Any, group: Any) -> dict[str, str]:
    return {"id": str(tag_id or ""), "name": " ".join(str(name or "").split())[:32],
            "group": str(group or "")[:32]}


def entry_from_get(data: dict[str, Any]) -> Entry:
    """externalcontact/get: follow_user entries carry tag objects with names."""
    follows = []
    for raw in data.get("follow_user", []):
        tags = [_tag(t.get("tag_id"), t.get("tag_name"), t.get("group_name"))
                for t in raw.get("tags", []) if t.get("tag_name")]
        follows.append(_follow(raw, tags))
    return Entry(dict(data["external_contact"]), follows)


class CorpTags:
    """The company's tag library (get_corp_tag_list): tag id -> (name, group), read once.

    A sync cannot do without it: reading each tagged contact again instead would cost one
    call per contact (tens of thousands in a large company), so an error here stops the
    sync before anything is written, like any other failed read."""

    def __init__(self, api: client.WeCom) -> None:
        self.by_id: dict[str, tuple[str, str]] = {}
        data = api.post("/cgi-bin/externalcontact/get_corp_tag_list", {})
        for group in data.get("tag_group", []):
            for tag in group.get("tag", []):
                self.by_id[str(tag.get("id"))] = (str(tag.get("name") or ""),
                                                  str(group.get("group_name") or ""))

    def resolve(self, ids: Iterable[Any]) -> tuple[list[dict[str, str]], bool]:
        tags, unresolved = [], False
        for tag_id in ids:
            found = self.by_id.get(str(tag_id))
            if found is None:
                unresolved = True
            elif found[0]:
                tags.append(_tag(tag_id, *found))
        return tags, unresolved


def fetch_contact(api: client.WeCom, external_userid: str) -> Entry | None:
    """externalcontact/get with its follow_user cursor (pages past 500 followers); None when
    WeCom no longer knows the contact or nobody follows it."""
    data: dict[str, Any] = {}
    cursor = ""
    while True:
        try:
            page = api.get("/cgi-bin/externalcontact/get", external_userid=external_userid,
                           **({"cursor": cursor} if cursor else {}))
        except client.ApiError as exc:
            if exc.code in (40096, 84061):  # no such contact / no follower left
                return None
            raise
        if not data:
            data = page
        else:
            data["follow_user"] = [*data.get("follow_user", []), *page.get("follow_user", [])]
        cursor = page.get("next_cursor") or ""
        if not cursor:
            return entry_from_get(data)


# --- Writing -------------------------------------------------------------------------------
class Writer:
    """Upserts entries: customers, identities, follows, collaborators and tags.

    `bulk` writes new customers with customers.services.create_customers_in_bulk (one audit
    row and one event per batch, the documented bulk path of the customers layer) and new
    follows with bulk_create under one "wechat.follows_sync" audit row per batch; otherwise
    each new customer goes through create_customer. Existing rows are compared first and
    written only where WeCom says something new, so a replay writes nothing.
    """

    def __init__(self, actor: Any = None, *, bulk: bool = False) -> None:
        self.actor = actor
        self.bulk = bulk
        self.people = {e.wecom_userid: e for e in
                       Employee.objects.exclude(wecom_userid="").select_related("department")}
        self.counts = {"customers_created": 0, "customers_linked": 0, "follows_created": 0,
                       "follows_updated": 0, "follows_ended": 0, "unknown_reps": 0}

    # 1. customers
    def _customers(self, entries: list[Entry]) -> dict[str, tuple[Customer, bool]]:
        values = [v for e in entries for _k, v in e.identities()]
        known: dict[tuple[str, str], int] = {}
        for start in range(0, len(values), 900):
            for kind, value, customer_id in WeChatIdentity.objects.filter(
                value__in=values[start:start + 900]
            ).values_list("kind", "value", "customer_id"):
                known[(kind, value)] = customer_id
        found: dict[str, int] = {}
        missing: list[Entry] = []
        for entry in entries:
            hit = next((known[i] for i in entry.identities() if i in known), None)
            if hit is None:
                missing.append(entry)
            else:
                found[entry.external_userid] = hit
        loaded = Customer.objects.in_bulk(set(found.values()))
        out: dict[str, tuple[Customer, bool]] = {}
        for ext, pk in found.items():
            customer = loaded[pk]
            while customer.merged_into_id:  # a merged duplicate: its survivor is the customer
                customer = Customer.objects.get(pk=customer.merged_into_id)
            out[ext] = (customer, False)
        if missing:
            if self.bulk:
                made = customers.create_customers_in_bulk(
                    actor=self.actor, rows=[self._row(e) for e in missing],
                    source=Source.WECOM, reason=gettext("WeCom sync"))
                for entry, (customer, created) in zip(missing, made, strict=True):
                    out[entry.external_userid] = (customer, created)
                    self.counts["customers_created" if created else "customers_linked"] += 1
            else:
                for entry in missing:
                    out[entry.external_userid] = self._create_one(entry)
        return out

    def _owner(self, entry: Entry) -> Employee | None:
        """The rep who has followed the contact longest (and still works here)."""
        ranked = sorted(
            (f for f in entry.follows if f["userid"] in self.people
             and self.people[f["userid"]].is_active),
            key=lambda f: (f["added_at"] or timezone.now(), f["userid"]))
        return self.people[ranked[0]["userid"]] if ranked else None

    def _row(self, entry: Entry) -> dict[str, Any]:
        name = str(entry.contact.get("name") or "").strip()
        first_remark = next((f["remark"] for f in entry.follows if f["remark"]), "")
        person = name or first_remark or entry.external_userid
        tags = entry.tag_names()
        row: dict[str, Any] = {
            "kind": CustomerKind.COMPANY if entry.company else CustomerKind.INDIVIDUAL,
            "name": (entry.company or person)[:128], "owner": self._owner(entry),
            "identities": entry.identities(), "tags": sorted(tags), "tag_groups": tags,
            "contact": ({"name": person, "title": str(entry.contact.get("position") or "")}
                        if entry.company else None),
        }
        return row

    def _create_one(self, entry: Entry) -> tuple[Customer, bool]:
        row = self._row(entry)
        try:
            with transaction.atomic():
                customer = customers.create_customer(
                    actor=self.actor, name=row["name"], kind=row["kind"], owner=row["owner"],
                    source=Source.WECOM, identities=row["identities"])
                if row["tags"]:
                    customers.set_tags(actor=self.actor, customer=customer, names=row["tags"],
                                       groups=row["tag_groups"])
                if row["contact"]:
                    customers.add_contact(actor=None, customer=customer,
                                          name=row["contact"]["name"][:64],
                                          title=row["contact"]["title"][:64])
        except Conflict as exc:
            duplicate = getattr(exc, "duplicate", None)
            if duplicate is None:
                raise
            # Another contact of the same company (same normalised name): this person joins
            # that customer instead of making a twin.
            customer = duplicate
            for kind, value in row["identities"]:
                customers.add_identity(actor=None, customer=customer, kind=kind, value=value)
            if row["contact"]:
                customers.add_contact(actor=None, customer=customer,
                                      name=row["contact"]["name"][:64],
                                      title=row["contact"]["title"][:64])
            self.counts["customers_linked"] += 1
            return customer, False
        self.counts["customers_created"] += 1
        return customer, True

    # 2. follows, collaborators, tags
    def write(self, entries: list[Entry]) -> dict[str, tuple[Customer, bool]]:
        unique = list({e.external_userid: e for e in entries}.values())
        if not unique:
            return {}
        resolved = self._customers(unique)
        existing = {
            (f.employee_id, f.external_userid): f for f in CustomerFollow.objects.filter(
                external_userid__in=[e.external_userid for e in unique])
        }
        old_tags: dict[int, dict[str, str]] = {}
        for f in existing.values():
            if f.ended_at is None:
                for t in f.tags:
                    old_tags.setdefault(f.customer_id, {})[t["name"]] = t["group"]
        self._keep_personal_tags(unique, existing)
        new_rows: list[CustomerFollow] = []
        changed: list[CustomerFollow] = []
        collaborators: dict[int, set[int]] = {}
        touched: dict[int, Customer] = {}
        for entry in unique:
            customer, created = resolved[entry.external_userid]
            for info in entry.follows:
                employee = self.people.get(info["userid"])
                if employee is None:
                    self.counts["unknown_reps"] += 1
                    continue
                values = {k: info[k] for k in ("remark", "description", "tags", "state",
                                                "add_way", "added_at")}
                follow = existing.get((employee.pk, entry.external_userid))
                if follow is None:
                    relation = (FollowRelation.OWNER if customer.owner_id == employee.pk
                                else FollowRelation.COLLABORATOR)
                    new_rows.append(CustomerFollow(
                        customer=customer, employee=employee,
                        external_userid=entry.external_userid, relation=relation, **values))
                else:
                    dirty = follow.ended_at is not None or any(
                        getattr(follow, k) != v for k, v in values.items())
                    if not dirty:
                        continue
                    for k, v in values.items():
                        setattr(follow, k, v)
                    follow.ended_at, follow.ended_by, follow.retain_until = None, "", None
                    changed.append(follow)
                    relation = follow.relation
                touched[customer.pk] = customer
                if relation == FollowRelation.COLLABORATOR and employee.is_active:
                    collaborators.setdefault(customer.pk, set()).add(employee.pk)
            if not created:
                self._refresh_tags(customer, entry, old_tags.get(customer.pk))
        CustomerFollow.objects.bulk_create(new_rows, batch_size=1000)
        if changed:
            now = timezone.now()
            for follow in changed:
                follow.updated_at = now
            CustomerFollow.objects.bulk_update(
                changed, ["remark", "description", "tags", "state", "add_way", "added_at",
                          "ended_at", "ended_by", "retain_until", "updated_at"],
                batch_size=500)
        self._collaborators(collaborators, resolved)
        self.counts["follows_created"] += len(new_rows)
        self.counts["follows_updated"] += len(changed)
        if new_rows or changed:
            audit.record(self.actor, "wechat.follows_sync", object_type="wechat.customerfollow",
                         object_id=f"{len(new_rows)}+{len(changed)}", after={
                             "created": len(new_rows), "updated": len(changed),
                             "customers": len(touched)})
        return resolved

    # Limitation: a follow first read by a full sync has none of the rep's personal tags
    # (batch/get_by_user has no id to name them by); they come with its next add or edit
    # callback, whose externalcontact/get names them, and later syncs keep them.
    def _keep_personal_tags(self, entries: list[Entry],
                            existing: dict[tuple[int, str], CustomerFollow]) -> None:
        """Entries read in batch carry no personal tags (they have no id to list): an active
        follow keeps the ones it has (they came with a callback's externalcontact/get, which
        names them, and the next edit callback brings any change)."""
        for entry in entries:
            if not entry.from_batch:
                continue
            for info in entry.follows:
                employee = self.people.get(info["userid"])
                follow = (existing.get((employee.pk, entry.external_userid))
                          if employee is not None else None)
                if follow is None or follow.ended_at is not None:
                    continue
                personal = [t for t in follow.tags if not t.get("id")]
                if personal:
                    info["tags"] = _sorted_tags([*info["tags"], *personal])

    def _collaborators(self, wanted: dict[int, set[int]],
                       resolved: dict[str, tuple[Customer, bool]]) -> None:
        created = {c.pk for c, new in resolved.values() if new}
        through = Customer.collaborators.through
        # New customers of this batch: straight rows (covered by the batch's audit row).
        through.objects.bulk_create([
            through(customer_id=pk, employee_id=e) for pk in sorted(wanted) if pk in created
            for e in sorted(wanted[pk])
        ], batch_size=1000, ignore_conflicts=True)
        present = set(through.objects.filter(
            customer_id__in=[pk for pk in wanted if pk not in created]
        ).values_list("customer_id", "employee_id"))
        by_pk = {c.pk: c for c, _new in resolved.values()}
        for pk in sorted(wanted):
            if pk in created:
                continue
            missing = [e for e in wanted[pk] if (pk, e) not in present]
            if missing:
                customers.update_collaborators(
                    actor=None, customer=by_pk[pk],
                    add=list(Employee.objects.filter(pk__in=missing)))

    def _refresh_tags(self, customer: Customer, entry: Entry,
                      before: dict[str, str] | None) -> None:
        """The customer's tags: what reps set in the CRM, less the WeCom tags no follower has
        any more, plus every active follower's WeCom tags; the no-rep mark goes.

        `before`: the WeCom tags of its active follows before this write (None: it had none,
        so it may carry the mark). Unchanged WeCom tags cost no query (a re-sync)."""
        after = entry.tag_names()
        if before is not None and set(before) == set(after):
            return
        before = before or {}
        current = set(customer.tags.values_list("name", flat=True))
        mark = no_contact_tag()
        wanted = (current - (set(before) - set(after)) - {mark}) | set(after)
        if wanted != current:
            customers.set_tags(actor=None, customer=customer, names=sorted(wanted),
                               groups=after)


def end_follow(follow: CustomerFollow, *, ended_by: str, at: dt.datetime | None = None,
               actor: Any = None) -> bool:
    """End one WeCom tie: the retention clock starts; ownership moves if the owner's tie
    ended and another rep still follows. False when it had ended already (a replay)."""
    at = at or timezone.now()
    retain_until = timezone.localtime(at).date() + dt.timedelta(days=retention_days())
    ended = CustomerFollow.objects.filter(pk=follow.pk, ended_at__isnull=True).update(
        ended_at=at, ended_by=ended_by, retain_until=retain_until, updated_at=timezone.now())
    if not ended:
        return False
    follow.refresh_from_db()
    audit.record(actor, "wechat.follow_end", follow,
                 after={"ended_by": ended_by, "retain_until": retain_until,
                        "external_userid": follow.external_userid})
    customer = Customer.objects.get(pk=follow.customer_id)
    remaining = list(
        CustomerFollow.objects.filter(customer=customer, ended_at__isnull=True,
                                      employee__status__in=["active", "probation"])
        .select_related("employee").order_by("added_at", "pk"))
    if customer.owner_id == follow.employee_id:
        if remaining:
            heir = remaining[0]
            customers.assign_customer(
                actor=None, customer=customer, owner=heir.employee,
                reason=gettext("The owner's WeCom tie ended; the longest-standing follower "
                               "takes over"))
            CustomerFollow.objects.filter(pk=heir.pk).update(relation=FollowRelation.OWNER)
            CustomerFollow.objects.filter(pk=follow.pk).update(
                relation=FollowRelation.COLLABORATOR)
            customer.refresh_from_db()
            customers.update_collaborators(actor=None, customer=customer,
                                           remove=[heir.employee])
        else:
            names = set(customer.tags.values_list("name", flat=True)) | {no_contact_tag()}
            customers.set_tags(actor=None, customer=customer, names=sorted(names),
                               groups={no_contact_tag(): _in_site_language(WECOM_TAG_GROUP)})
    elif follow.relation == FollowRelation.COLLABORATOR:
        customers.update_collaborators(actor=None, customer=customer, remove=[follow.employee])
    return True


# --- Full sync ------------------------------------------------------------------------------
def full_sync_contacts(*, actor: Any = None, write_batch: int = WRITE_BATCH) -> dict[str, int]:
    """Every external contact of every rep configured for customer contact.

    1. get_follow_user_list: the reps; only those on the roster (a WeCom user id) are read.
    2. get_corp_tag_list once, then batch/get_by_user, ≤100 reps a call, 100 contacts a page
       through its cursor, its tag ids named from that list. A contact with an id the list
       does not know (a rule-group tag, or one made since) is read again with
       externalcontact/get, which names its tags. Personal tags have no id, so batch reads
       leave them out; a follow keeps the ones it has (see Entry).
    3. Written in batches of `write_batch` contacts, each in its own transaction.
    4. A follow still active here but absent from WeCom (a missed callback) is ended.
    Returns the counts and `api_calls`.
    """
    if actor is not None:
        from weiying.core.permissions import require

        require(actor, "customer.edit")
    started = time.monotonic()
    with client.WeCom(contact=True) as api:
        writer = Writer(actor, bulk=True)
        reps = [str(u) for u in api.get("/cgi-bin/externalcontact/get_follow_user_list")
                .get("follow_user", [])]
        known = [u for u in reps if u in writer.people]
        tags = CorpTags(api)
        entries: dict[str, Entry] = {}
        for start in range(0, len(known), BATCH_USERS):
            group = known[start:start + BATCH_USERS]
            cursor = ""
            while True:
                page = api.post("/cgi-bin/externalcontact/batch/get_by_user",
                                {"userid_list": group, "cursor": cursor, "limit": PAGE_LIMIT})
                for item in page.get("external_contact_list", []):
                    contact = item["external_contact"]
                    info = item.get("follow_info") or {}
                    entry = entries.get(contact["external_userid"])
                    if entry is None:
                        entry = entries[contact["external_userid"]] = Entry(
                            dict(contact), from_batch=True)
                    resolved, unresolved = tags.resolve(info.get("tag_id", []))
                    entry.unresolved_tags |= unresolved
                    entry.follows.append(_follow(info, resolved))
                cursor = page.get("next_cursor") or ""
                if not cursor:
                    break
        details = 0
        for ext, entry in list(entries.items()):
            if entry.unresolved_tags:
                fresh = fetch_contact(api, ext)
                details += 1
                if fresh is not None:
                    entries[ext] = fresh
        items = list(entries.values())
        for start in range(0, len(items), write_batch):
            with transaction.atomic():
                writer.write(items[start:start + write_batch])
        ended = _end_missing(writer, known, entries)
        result = {**writer.counts, "follows_ended": ended, "reps": len(reps),
                  "reps_unknown": len(reps) - len(known), "contacts": len(entries),
                  "detail_reads": details, "api_calls": api.calls}
    logger.info("contacts sync done",
                extra={**result, "ms": int((time.monotonic() - started) * 1000)})
    return result


def _end_missing(writer: Writer, userids: list[str], entries: dict[str, Entry]) -> int:
    """Active follows of the reps just read that WeCom no longer lists: a callback was
    missed. Who ended the tie is unknown, so ended_by stays empty."""
    seen = {(f["userid"], ext) for ext, e in entries.items() for f in e.follows}
    ids = [writer.people[u].pk for u in userids]
    ended = 0
    for start in range(0, len(ids), 500):
        stale = CustomerFollow.objects.filter(
            employee_id__in=ids[start:start + 500], ended_at__isnull=True
        ).select_related("employee")
        for follow in stale.iterator():
            if (follow.employee.wecom_userid, follow.external_userid) in seen:
                continue
            with transaction.atomic():
                ended += end_follow(follow, ended_by="")
    return ended


# --- Callbacks ------------------------------------------------------------------------------
def _follow_of(message: dict[str, Any]) -> CustomerFollow | None:
    return CustomerFollow.objects.filter(
        employee__wecom_userid=message.get("UserID", ""),
        external_userid=message.get("ExternalUserID", ""),
    ).select_related("employee").first()


def handle_add(row: Any, message: dict[str, Any]) -> str:
    external_userid = str(message.get("ExternalUserID") or "")
    with client.WeCom(contact=True) as api:
        entry = fetch_contact(api, external_userid)
    if entry is None:
        return "contact gone"
    writer = Writer()
    customer, _created = writer.write([entry])[external_userid]
    state = str(message.get("State") or "")
    employee = writer.people.get(str(message.get("UserID") or ""))
    if state:
        from weiying.wechat.channels import record_arrival

        record_arrival(state=state, external_id=external_userid, employee=employee,
                       customer=customer, at=_aware(message.get("CreateTime")) or timezone.now())
    return ", ".join(f"{k}={v}" for k, v in writer.counts.items() if v) or "no change"


def handle_edit(row: Any, message: dict[str, Any]) -> str:
    external_userid = str(message.get("ExternalUserID") or "")
    with client.WeCom(contact=True) as api:
        entry = fetch_contact(api, external_userid)
    if entry is None:
        return "contact gone"
    writer = Writer()
    writer.write([entry])
    return ", ".join(f"{k}={v}" for k, v in writer.counts.items() if v) or "no change"


def _handle_end(message: dict[str, Any], ended_by: str) -> str:
    follow = _follow_of(message)
    if follow is None:
        return "unknown follow"
    at = _aware(message.get("CreateTime")) or timezone.now()
    return "ended" if end_follow(follow, ended_by=ended_by, at=at) else "already ended"


def handle_del_external_contact(row: Any, message: dict[str, Any]) -> str:
    # WeCom sends del_external_contact when the rep deleted the customer (Source
    # DELETE_BY_TRANSFER when a departure transfer removed it).
    if message.get("Source") == "DELETE_BY_TRANSFER":
        return _handle_end(message, FollowEnd.TRANSFERRED)
    return _handle_end(message, FollowEnd.BY_EMPLOYEE)


def handle_del_follow_user(row: Any, message: dict[str, Any]) -> str:
    # … and del_follow_user when the customer deleted the rep.
    return _handle_end(message, FollowEnd.BY_CUSTOMER)


_KIND = "event:change_external_contact:"
for _source in (InboxSource.WECOM_CONTACTS, InboxSource.WECOM):
    inbox.handles(_source, _KIND + "add_external_contact")(handle_add)
    inbox.handles(_source, _KIND + "add_half_external_contact")(handle_add)
    inbox.handles(_source, _KIND + "edit_external_contact")(handle_edit)
    inbox.handles(_source, _KIND + "del_external_contact")(handle_del_external_contact)
    inbox.handles(_source, _KIND + "del_follow_user")(handle_del_follow_user)
