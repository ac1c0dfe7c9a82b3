"""Consistency checks over generated data: every derived figure equals what it derives from.

`problems()` returns one sentence per broken invariant (empty when all hold). The tests run
it on the "small" company; on any database:
`python manage.py shell -c "from weiying.demo.checks import problems; print(problems())"`.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from decimal import Decimal
from typing import Any

from django.db.models import Count, Max, Min, Q, Sum

from weiying.core import tree
from weiying.core.money import money, split_vat
from weiying.customers.models import Contact, Customer
from weiying.org.models import Department, Employee
from weiying.pipeline.models import (
    Contract,
    ContractLine,
    FollowUp,
    Instalment,
    Lead,
    Opportunity,
    Receipt,
    StageChange,
)

SOLD = ("signed", "in_delivery", "completed")
ZERO = Decimal("0.00")


def problems(limit: int = 5) -> list[str]:
    found: list[str] = []
    for check in (_org, _lines, _contracts, _customers, _leads, _opportunities, _phones):
        found += check()[:limit]
    return found


def _org() -> list[str]:
    out = []
    depts = {d.pk: d for d in Department.objects.all()}
    for d in depts.values():
        parent = depts.get(d.parent_id) if d.parent_id else None
        if d.path != tree.child_path(parent.path if parent else "", d.pk):
            out.append(f"department {d.pk}: path {d.path} does not follow its parent")
        if d.depth != tree.depth(d.path):
            out.append(f"department {d.pk}: depth {d.depth} is not the path's")
    emps = {e.pk: e for e in Employee.objects.all()}
    for e in emps.values():
        leader = emps.get(e.leader_id) if e.leader_id else None
        if e.path != tree.child_path(leader.path if leader else "", e.pk):
            out.append(f"employee {e.pk}: path does not follow the leader's")
        dept = depts[e.department_id]
        head = dept.manager_id
        if head and head != e.pk and e.leader_id != head:
            out.append(f"employee {e.pk}: reports to {e.leader_id}, not the head {head}")
        if head == e.pk and dept.parent_id:
            parent_head = depts[dept.parent_id].manager_id
            if dept.kind != "other" and e.leader_id != parent_head:
                out.append(f"head {e.pk}: reports to {e.leader_id}, not {parent_head}")
    return out


def _lines() -> list[str]:
    out = []
    for line in ContractLine.objects.all().iterator(chunk_size=5000):
        amount = money(line.quantity * line.unit_price * (Decimal(1) - line.discount))
        net, vat = split_vat(amount, line.vat_rate)
        if (line.amount, line.net, line.vat) != (amount, net, vat):
            out.append(f"contract line {line.pk}: {line.amount}/{line.net}/{line.vat} "
                       f"should be {amount}/{net}/{vat}")
    return out


def _contracts() -> list[str]:
    out = []
    sums = {
        row["contract_id"]: row for row in ContractLine.objects.filter(contract__isnull=False)
        .values("contract_id").annotate(t=Sum("amount"), n=Sum("net"), v=Sum("vat"),
                                        d=Max("discount"))
    }
    received = dict(Receipt.objects.values("contract_id").annotate(s=Sum("amount"))
                    .values_list("contract_id", "s"))
    planned = dict(Instalment.objects.values("contract_id").annotate(s=Sum("amount"))
                   .values_list("contract_id", "s"))
    for c in Contract.objects.all().iterator(chunk_size=5000):
        s = sums.get(c.pk)
        if s is None or (c.total, c.total_net, c.total_vat, c.max_discount) != (
                s["t"], s["n"], s["v"], s["d"]):
            out.append(f"contract {c.number}: totals differ from its lines")
        if c.total_net + c.total_vat != c.total:
            out.append(f"contract {c.number}: net + VAT is not the total")
        if c.collected != (received.get(c.pk) or ZERO) or c.collected > c.total:
            out.append(f"contract {c.number}: collected {c.collected} is not its receipts")
        if c.pk in planned and planned[c.pk] != c.total:
            out.append(f"contract {c.number}: instalments do not add up to the total")
        if c.status == "completed" and not c.accepted_on:
            out.append(f"contract {c.number}: completed without acceptance")
    per_instalment = dict(Receipt.objects.values("instalment_id").annotate(s=Sum("amount"))
                          .values_list("instalment_id", "s"))
    for i in Instalment.objects.all().iterator(chunk_size=5000):
        if i.collected != (per_instalment.get(i.pk) or ZERO) or i.collected > i.amount:
            out.append(f"instalment {i.pk}: collected {i.collected} is not its receipts")
    return out


def _customers() -> list[str]:
    out = []
    signed = {r["customer_id"]: r for r in Contract.objects.filter(status__in=SOLD)
              .values("customer_id").annotate(t=Sum("total"), d=Max("signed_on"))}
    collected = dict(Receipt.objects.values("contract__customer_id").annotate(s=Sum("amount"))
                     .values_list("contract__customer_id", "s"))
    plans = dict(FollowUp.objects.filter(customer__isnull=False, next_done=False,
                                         next_at__isnull=False)
                 .values("customer_id").annotate(m=Min("next_at"))
                 .values_list("customer_id", "m"))
    # Follow-ups logged on the customer (a converted lead's earlier ones are linked later and
    # do not move the customer's times).
    last: dict[int, dt.datetime] = {}
    for cid, at, created in FollowUp.objects.filter(customer__isnull=False).values_list(
            "customer_id", "at", "customer__created_at").iterator(chunk_size=20000):
        if at >= created and (cid not in last or at > last[cid]):
            last[cid] = at
    for c in Customer.objects.all().iterator(chunk_size=5000):
        s = signed.get(c.pk)
        if c.total_signed != (s["t"] if s else ZERO):
            out.append(f"customer {c.pk}: total_signed {c.total_signed} is not its contracts")
        if c.last_purchase_at != (s["d"] if s else None):
            out.append(f"customer {c.pk}: last purchase is not its latest signature")
        if c.total_collected != (collected.get(c.pk) or ZERO):
            out.append(f"customer {c.pk}: total_collected is not its receipts")
        if c.last_followup_at != last.get(c.pk):
            out.append(f"customer {c.pk}: last follow-up {c.last_followup_at} is not "
                       f"{last.get(c.pk)}")
        if c.next_followup_at != plans.get(c.pk):
            out.append(f"customer {c.pk}: next follow-up is not its open plan")
        if c.last_followup_at and c.last_activity_at < c.last_followup_at:
            out.append(f"customer {c.pk}: last activity before the last follow-up")
        if c.in_pool == (c.owner_id is not None):
            out.append(f"customer {c.pk}: in_pool and owner disagree")
        if c.in_pool and c.released_at is None:
            out.append(f"customer {c.pk}: in the pool without a release time")
    return out


def _leads() -> list[str]:
    out = []
    first = dict(FollowUp.objects.filter(lead__isnull=False).values("lead_id")
                 .annotate(m=Min("at")).values_list("lead_id", "m"))
    for lead in Lead.objects.all().iterator(chunk_size=5000):
        at = first.get(lead.pk)
        if lead.first_response_at != at:
            out.append(f"lead {lead.pk}: first response is not its first follow-up")
        elif at is not None:
            start = lead.assigned_at or lead.created_at
            if lead.first_response_seconds != max(0, int((at - start).total_seconds())):
                out.append(f"lead {lead.pk}: first_response_seconds is wrong")
        if (lead.owner_id is None) != (lead.status == "new"):
            out.append(f"lead {lead.pk}: status {lead.status} and owner disagree")
        if lead.status == "converted" and not (lead.customer_id and lead.converted_at):
            out.append(f"lead {lead.pk}: converted without a customer")
        if lead.last_activity_at < (at or lead.created_at):
            out.append(f"lead {lead.pk}: last activity before its follow-ups")
    return out


def _opportunities() -> list[str]:
    out = []
    changes: dict[int, list[Any]] = defaultdict(list)
    for row in StageChange.objects.order_by("at", "pk").values_list(
            "opportunity_id", "from_stage_id", "to_stage_id", "at", "seconds_in_previous"
    ).iterator(chunk_size=20000):
        changes[row[0]].append(row)
    for o in Opportunity.objects.select_related("stage").iterator(chunk_size=5000):
        rows = changes.get(o.pk, [])
        if not rows or rows[0][1] is not None:
            out.append(f"opportunity {o.pk}: history does not start with its creation")
            continue
        for prev, cur in zip(rows, rows[1:], strict=False):
            if cur[1] != prev[2] or cur[4] != int((cur[3] - prev[3]).total_seconds()):
                out.append(f"opportunity {o.pk}: stage changes do not chain")
        if rows[-1][2] != o.stage_id or rows[-1][3] != o.stage_entered_at:
            out.append(f"opportunity {o.pk}: stage is not the last change")
        if o.stage.kind != o.status or (o.status == "open") != (o.closed_at is None):
            out.append(f"opportunity {o.pk}: status {o.status} and stage disagree")
    return out


def _phones() -> list[str]:
    out = []
    for label, qs in (("employees", Employee.objects), ("leads", Lead.objects),
                      ("contacts", Contact.objects)):
        dupes = qs.exclude(phone="").values("phone").annotate(n=Count("pk")).filter(n__gt=1)
        for row in dupes[:3]:
            out.append(f"{label}: phone {row['phone']} used {row['n']} times")
    employees = set(Employee.objects.values_list("phone", flat=True))
    shared = Counter(p for p in Lead.objects.filter(phone__in=employees)
                     .values_list("phone", flat=True))
    out += [f"lead phone {p} belongs to an employee" for p in shared]
    if Customer.objects.filter(Q(phone="") & Q(kind="individual")).exists():
        out.append("an individual customer has no phone")
    return out

