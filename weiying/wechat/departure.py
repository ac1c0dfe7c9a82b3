"""Departure hand-over of WeCom contacts (离职继承).

When an employee leaves with a successor ("employee.left" with `successor_id`), WeCom is
asked to move each of the leaver's external contacts to the successor
(externalcontact/resigned/transfer_customer, at most 100 a call). Each contact gets one
Transfer row (unique per leaver and external user id, so a replayed event asks nothing
twice), whose life is:

    requested (we mean to ask; not yet accepted by WeCom — the call failed or WeCom refused
    the whole request, e.g. the leaver is still in its directory: retried by the poll)
    → waiting (WeCom accepted; the customer has 24 hours to refuse)
    → done (the successor follows the contact now) | failed (with WeCom's reason)

A periodic task polls resigned/transfer_result for what is waiting; a `transfer_fail`
callback marks a row failed at once. The customers and pipeline layers hand the CRM records
over through their own subscribers; this module moves only the WeCom tie.

Limitation: WeCom caps how often one customer may be transferred (twice in 90 days) and
how many customers one successor may take; a refusal for either shows as a failure with
WeCom's code on the transfers page, and a manager hands that customer over another way.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from typing import Any

from django.db import transaction
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from weiying.core import audit
from weiying.core.scope import scoped
from weiying.org.models import Employee
from weiying.wechat import client, inbox
from weiying.wechat.choices import FollowEnd, FollowRelation, InboxSource, TransferStatus
from weiying.wechat.models import CustomerFollow, Transfer

logger = logging.getLogger(__name__)

TRANSFER_BATCH = 100  # resigned/transfer_customer takes at most 100 external user ids

# WeCom's reasons, said so a manager knows what to do.
REASONS = {
    "customer_refused": _("The customer refused the transfer; hand them over by phone or "
                          "ask them to add the successor."),
    "customer_limit_exceed": _("The successor has reached WeCom's customer limit; pick "
                               "another successor for this customer."),
    "status_3": _("The customer refused the transfer; hand them over by phone or ask them "
                  "to add the successor."),
    "status_4": _("The successor has reached WeCom's customer limit; pick another successor "
                  "for this customer."),
    "status_5": _("The leaver and the customer are no longer connected in WeCom."),
    "errcode_40096": _("WeCom does not know this customer any more."),
    "errcode_84061": _("The leaver and the customer are no longer connected in WeCom."),
    "errcode_40100": _("WeCom is already transferring this customer."),
    "errcode_40097": _("The leaver is still in the WeCom directory; remove them there and the "
                       "transfer is asked again."),
}


def reason_text(code: str) -> str:
    """What a stored error code means for a manager (the code itself when unknown)."""
    if not code:
        return ""
    return str(REASONS.get(code, code))


def transfers_for(user: Any) -> QuerySet[Transfer]:
    """The transfers `user` may see (Transfer's scope: the successor's), failures first."""
    return scoped(Transfer.objects.select_related(
        "from_employee", "to_employee", "customer"), user).annotate(
        failed_first=Case(When(status=TransferStatus.FAILED, then=Value(0)), default=Value(1),
                          output_field=IntegerField()))


# --- Asking WeCom -----------------------------------------------------------------------------
def request_transfers(*, leaver: Employee, successor: Employee) -> dict[str, int]:
    """Write a Transfer row for each active WeCom follow of the leaver that has none yet, then
    ask WeCom to move them. Safe to repeat: what has a row is not asked again here."""
    counts = {"requested": 0, "accepted": 0, "failed": 0}
    if not leaver.wecom_userid or not successor.wecom_userid:
        logger.info("transfer skipped: no WeCom account",
                    extra={"leaver": leaver.pk, "successor": successor.pk})
        return counts
    follows = CustomerFollow.objects.filter(employee=leaver, ended_at__isnull=True).exclude(
        external_userid__in=Transfer.objects.filter(from_employee=leaver)
        .values("external_userid"))
    rows = [Transfer(from_employee=leaver, to_employee=successor, customer_id=f.customer_id,
                     external_userid=f.external_userid)
            for f in follows.order_by("added_at", "pk")]
    if not rows:
        return counts
    Transfer.objects.bulk_create(rows, batch_size=500, ignore_conflicts=True)
    counts["requested"] = len(rows)
    audit.record(None, "wechat.transfer_request", leaver,
                 after={"successor": successor.pk, "count": len(rows)})
    done = _send(Transfer.objects.filter(from_employee=leaver, to_employee=successor,
                                         status=TransferStatus.REQUESTED))
    counts["accepted"], counts["failed"] = done
    return counts


def _send(pending: QuerySet[Transfer]) -> tuple[int, int]:
    """Ask WeCom for every requested row (grouped by leaver and successor, 100 a call)."""
    accepted = failed = 0
    groups: dict[tuple[int, int], list[Transfer]] = defaultdict(list)
    for row in pending.select_related("from_employee", "to_employee").order_by("pk"):
        groups[(row.from_employee_id, row.to_employee_id)].append(row)
    if not groups:
        return 0, 0
    now = timezone.now()
    with client.WeCom(contact=True) as api:
        for batch_rows in groups.values():
            leaver, successor = batch_rows[0].from_employee, batch_rows[0].to_employee
            for start in range(0, len(batch_rows), TRANSFER_BATCH):
                chunk = batch_rows[start:start + TRANSFER_BATCH]
                by_ext = {r.external_userid: r for r in chunk}
                try:
                    data = api.post("/cgi-bin/externalcontact/resigned/transfer_customer", {
                        "handover_userid": leaver.wecom_userid,
                        "takeover_userid": successor.wecom_userid,
                        "external_userid": list(by_ext),
                    })
                except client.WeChatError as exc:
                    # The rows stay requested: the poll asks again.
                    code = f"errcode_{exc.code}" if exc.code > 0 else str(exc)[:255]
                    Transfer.objects.filter(pk__in=[r.pk for r in chunk]).update(error=code)
                    logger.warning("transfer request failed; will retry",
                                   extra={"leaver": leaver.pk, "error": str(exc)})
                    continue
                for result in data.get("customer", []):
                    row = by_ext.get(str(result.get("external_userid")))
                    if row is None:
                        continue
                    code = int(result.get("errcode") or 0)
                    if code == 0:
                        Transfer.objects.filter(pk=row.pk, status=TransferStatus.REQUESTED) \
                            .update(status=TransferStatus.WAITING, error="")
                        accepted += 1
                    else:
                        Transfer.objects.filter(pk=row.pk, status=TransferStatus.REQUESTED) \
                            .update(status=TransferStatus.FAILED, error=f"errcode_{code}",
                                    finished_at=now)
                        failed += 1
    return accepted, failed


# --- Results ----------------------------------------------------------------------------------
def poll_transfers() -> dict[str, int]:
    """Ask again for rows still requested, then read resigned/transfer_result for every
    leaver–successor pair with rows waiting, and settle them."""
    counts = {"done": 0, "failed": 0, "waiting": 0}
    with transaction.atomic():
        _send(Transfer.objects.filter(status=TransferStatus.REQUESTED))
    pairs = list(Transfer.objects.filter(status=TransferStatus.WAITING)
                 .values_list("from_employee_id", "to_employee_id").distinct())
    if not pairs:
        return counts
    with client.WeCom(contact=True) as api:
        for from_id, to_id in pairs:
            leaver = Employee.objects.get(pk=from_id)
            successor = Employee.objects.get(pk=to_id)
            results: dict[str, dict[str, Any]] = {}
            cursor = ""
            while True:
                data = api.post("/cgi-bin/externalcontact/resigned/transfer_result", {
                    "handover_userid": leaver.wecom_userid,
                    "takeover_userid": successor.wecom_userid, "cursor": cursor})
                for item in data.get("customer", []):
                    results[str(item.get("external_userid"))] = item
                cursor = data.get("next_cursor") or ""
                if not cursor:
                    break
            with transaction.atomic():
                for row in Transfer.objects.select_for_update().filter(
                        from_employee=leaver, to_employee=successor,
                        status=TransferStatus.WAITING):
                    item = results.get(row.external_userid)
                    status = int(item.get("status") or 0) if item else 0
                    if status == 1:
                        settle_done(row, at=_when(item.get("takeover_time")))
                        counts["done"] += 1
                    elif status in (3, 4, 5):
                        mark_failed(row, f"status_{status}")
                        counts["failed"] += 1
                    else:
                        counts["waiting"] += 1
    return counts


def _when(timestamp: Any) -> dt.datetime:
    try:
        seconds = int(timestamp)
    except (TypeError, ValueError):
        seconds = 0
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC) if seconds > 0 else timezone.now()


def settle_done(row: Transfer, *, at: dt.datetime) -> None:
    """WeCom moved the contact: the leaver's follow ends (transferred), the successor's
    starts with the leaver's remark and tags."""
    from weiying.customers.models import Customer

    updated = Transfer.objects.filter(pk=row.pk).exclude(status=TransferStatus.DONE).update(
        status=TransferStatus.DONE, finished_at=at, error="")
    if not updated:
        return
    old = CustomerFollow.objects.filter(employee_id=row.from_employee_id,
                                        external_userid=row.external_userid).first()
    if old is not None and old.ended_at is None:
        CustomerFollow.objects.filter(pk=old.pk).update(
            ended_at=at, ended_by=FollowEnd.TRANSFERRED, updated_at=timezone.now())
    customer_id = row.customer_id or (old.customer_id if old else None)
    if customer_id is not None:
        owner_id = Customer.objects.filter(pk=customer_id).values_list("owner_id", flat=True) \
            .first()
        relation = (FollowRelation.OWNER if owner_id == row.to_employee_id
                    else FollowRelation.COLLABORATOR)
        mine = CustomerFollow.objects.filter(employee_id=row.to_employee_id,
                                             external_userid=row.external_userid).first()
        if mine is not None and mine.ended_at is None:
            # The successor already followed the customer: their own remark and tags stay.
            CustomerFollow.objects.filter(pk=mine.pk).update(relation=relation)
        else:
            copied = {"remark": old.remark, "description": old.description,
                      "tags": old.tags, "state": old.state,
                      "add_way": old.add_way} if old else {}
            CustomerFollow.objects.update_or_create(
                employee_id=row.to_employee_id, external_userid=row.external_userid,
                defaults={"customer_id": customer_id, "relation": relation, "added_at": at,
                          "ended_at": None, "ended_by": "", "retain_until": None, **copied})
    audit.record(None, "wechat.transfer_done", row, after={"external_userid":
                                                            row.external_userid})


def mark_failed(row: Transfer, code: str) -> bool:
    """A transfer WeCom will not make; False if it was settled already (a replay)."""
    updated = Transfer.objects.filter(pk=row.pk).filter(
        Q(status=TransferStatus.REQUESTED) | Q(status=TransferStatus.WAITING)
    ).update(status=TransferStatus.FAILED, error=code[:255], finished_at=timezone.now())
    if updated:
        audit.record(None, "wechat.transfer_failed", row, after={"reason": code})
    return bool(updated)


def handle_transfer_fail(row: Any, message: dict[str, Any]) -> str:
    """transfer_fail: UserID is the successor, ExternalUserID the customer."""
    reason = str(message.get("FailReason") or "failed")
    transfers = Transfer.objects.filter(
        to_employee__wecom_userid=str(message.get("UserID") or ""),
        external_userid=str(message.get("ExternalUserID") or ""),
        status__in=[TransferStatus.REQUESTED, TransferStatus.WAITING])
    marked = sum(mark_failed(t, reason) for t in transfers)
    return f"failed {marked}" if marked else "no open transfer"


for _source in (InboxSource.WECOM_CONTACTS, InboxSource.WECOM):
    inbox.handles(_source, "event:change_external_contact:transfer_fail")(handle_transfer_fail)
