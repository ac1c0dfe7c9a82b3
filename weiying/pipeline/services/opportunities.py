"""Opportunities (商机) and the pipelines they move through.

An opportunity's stage changes only here: every move writes a `StageChange` with the seconds
spent in the stage it leaves, so stage durations and conversion rates come from history, not
from guesses. Won and lost are terminal stages of each pipeline, reached only through
`mark_won` / `mark_lost`, and left only through `reopen_opportunity`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from weiying.catalog.models import Product
from weiying.core import audit, events
from weiying.core.errors import InvalidTransition, NotFound, ValidationFailed
from weiying.core.money import money, to_decimal
from weiying.core.permissions import employee_of, require
from weiying.core.scope import scoped, visible_employees
from weiying.customers.models import Customer
from weiying.org.models import Employee
from weiying.pipeline.choices import LostReason, OpportunityStatus, StageKind
from weiying.pipeline.models import (
    Lead,
    Opportunity,
    OpportunityLine,
    Pipeline,
    Stage,
    StageChange,
)

_FIELDS = ["name", "stage", "status", "amount", "expected_close", "owner", "closed_at",
           "lost_reason", "close_note"]


# --- helpers --------------------------------------------------------------------------------
def _seconds_between(start: dt.datetime, end: dt.datetime) -> int:
    return max(0, int((end - start).total_seconds()))


def _visible(queryset: Any, actor: Any) -> Any:
    """The system (actor None) sees everything; a person sees their scope."""
    return queryset if actor is None else scoped(queryset, actor)


def _locked_opportunity(actor: Any, opportunity: Opportunity) -> Opportunity:
    """Re-read the row under a lock, inside the actor's scope (outside it: not found)."""
    locked = (
        _visible(Opportunity.objects.select_for_update(of=("self",)), actor)
        .select_related("stage", "pipeline")
        .filter(pk=opportunity.pk)
        .first()
    )
    if locked is None:
        raise NotFound()
    return locked


def default_pipeline() -> Pipeline:
    pipeline = Pipeline.objects.filter(is_default=True).order_by("pk").first()
    pipeline = pipeline or Pipeline.objects.order_by("pk").first()
    if pipeline is None:
        raise ValidationFailed(
            _("There is no pipeline yet; create one in pipeline settings."), field="pipeline"
        )
    return pipeline


def open_stages(pipeline: Pipeline) -> list[Stage]:
    return list(pipeline.stages.filter(kind=StageKind.OPEN).order_by("order"))


def _terminal_stage(pipeline: Pipeline, kind: str) -> Stage:
    stage = pipeline.stages.filter(kind=kind).first()
    if stage is None:
        raise ValidationFailed(
            _("This pipeline has no won or lost stage; fix it in pipeline settings."),
            field="stage",
        )
    return stage


def _change(
    opportunity: Opportunity, *, from_stage: Stage | None, to_stage: Stage, at: dt.datetime,
    by: Employee | None,
) -> StageChange:
    seconds = (
        _seconds_between(opportunity.stage_entered_at, at) if from_stage is not None else None
    )
    return StageChange.objects.create(
        opportunity=opportunity, from_stage=from_stage, to_stage=to_stage, at=at,
        seconds_in_previous=seconds, by=by,
    )


def _clean_lines(lines: Iterable[dict[str, Any]]) -> list[tuple[Product, Decimal, Decimal]]:
    cleaned = []
    for i, line in enumerate(lines, start=1):
        product = line.get("product")
        if not isinstance(product, Product):
            product = Product.objects.filter(pk=product).first() if product else None
        if product is None:
            raise ValidationFailed(
                _("Line %(no)s: choose a product.") % {"no": i}, field="lines"
            )
        try:
            quantity = to_decimal(line.get("quantity", 1))
            amount = money(line.get("amount", 0))
        except (TypeError, ValueError):
            raise ValidationFailed(
                _("Line %(no)s: quantity and amount must be numbers.") % {"no": i},
                field="lines",
            ) from None
        if quantity <= 0:
            raise ValidationFailed(
                _("Line %(no)s: the quantity must be more than zero.") % {"no": i},
                field="lines",
            )
        if amount < 0:
            raise ValidationFailed(
                _("Line %(no)s: the amount cannot be negative.") % {"no": i}, field="lines"
            )
        cleaned.append((product, quantity, amount))
    return cleaned


# --- opportunities --------------------------------------------------------------------------
@transaction.atomic
def create_opportunity(
    *, actor: Any, customer: Customer, name: str, amount: Any = Decimal(0),
    expected_close: dt.date | None = None, owner: Employee | None = None,
    pipeline: Pipeline | None = None, stage: Stage | None = None,
    lines: Iterable[dict[str, Any]] = (), lead: Lead | None = None,
) -> Opportunity:
    """Open an opportunity in the default pipeline's first open stage unless told otherwise.

    The owner defaults to the customer's owner, else the actor's employee; the amount to the
    sum of the lines. The customer (and lead) must be inside the actor's scope.
    """
    if actor is not None:
        require(actor, "opportunity.edit")
    if not _visible(Customer.objects, actor).filter(pk=customer.pk).exists():
        raise NotFound(_("That customer does not exist or is outside what you may see."))
    if customer.merged_into_id is not None:
        raise ValidationFailed(
            _("That customer was merged into another; open the opportunity there."),
            field="customer",
        )
    if lead is not None and not _visible(Lead.objects, actor).filter(pk=lead.pk).exists():
        raise NotFound(_("That lead does not exist or is outside what you may see."))
    name = (name or "").strip()
    if not name:
        raise ValidationFailed(_("An opportunity needs a name."), field="name")
    if len(name) > 128:
        raise ValidationFailed(_("The name is too long (128 characters at most)."),
                               field="name")

    pipeline = pipeline or (stage.pipeline if stage is not None else default_pipeline())
    if stage is None:
        stages = open_stages(pipeline)
        if not stages:
            raise ValidationFailed(
                _("This pipeline has no open stage; add one in pipeline settings."),
                field="stage",
            )
        stage = stages[0]
    if stage.pipeline_id != pipeline.pk:
        raise ValidationFailed(_("That stage belongs to another pipeline."), field="stage")
    if stage.kind != StageKind.OPEN:
        raise ValidationFailed(
            _("A new opportunity starts in an open stage; mark it won or lost afterwards."),
            field="stage",
        )

    me = employee_of(actor) if actor is not None else None
    if owner is None:
        owner = customer.owner if customer.owner_id else me
    elif actor is not None and not visible_employees(actor).filter(pk=owner.pk).exists():
        raise ValidationFailed(
            _("You may only give opportunities to people in your own scope."), field="owner"
        )

    cleaned = _clean_lines(lines)
    try:
        amount = money(amount if amount is not None else 0)
    except (TypeError, ValueError):
        raise ValidationFailed(_("The amount must be a number."), field="amount") from None
    if amount < 0:
        raise ValidationFailed(_("The amount cannot be negative."), field="amount")
    if amount == 0 and cleaned:
        amount = money(sum((line[2] for line in cleaned), Decimal(0)))

    now = timezone.now()
    opportunity = Opportunity.objects.create(
        name=name, customer=customer, pipeline=pipeline, stage=stage, amount=amount,
        expected_close=expected_close, owner=owner,
        department=owner.department if owner is not None else customer.department,
        lead=lead, stage_entered_at=now, last_activity_at=now, created_at=now,
    )
    OpportunityLine.objects.bulk_create(
        OpportunityLine(opportunity=opportunity, product=product, quantity=quantity,
                        amount=line_amount)
        for product, quantity, line_amount in cleaned
    )
    _change(opportunity, from_stage=None, to_stage=stage, at=now, by=me)
    audit.record(actor, "opportunity.create", opportunity,
                 after=audit.snapshot(opportunity, _FIELDS))
    events.emit(
        "opportunity.created", opportunity, actor=actor, customer_id=customer.pk,
        owner_id=opportunity.owner_id, amount=amount, stage_id=stage.pk,
        pipeline_id=pipeline.pk, lead_id=lead.pk if lead else None,
    )
    return opportunity


@transaction.atomic
def move_stage(*, actor: Any, opportunity: Opportunity, stage: Stage) -> Opportunity:
    """Move an open opportunity to another open stage of its pipeline."""
    if actor is not None:
        require(actor, "opportunity.edit")
    opp = _locked_opportunity(actor, opportunity)
    if opp.status != OpportunityStatus.OPEN:
        raise InvalidTransition(
            _("This opportunity is closed; reopen it before moving it."), field="stage"
        )
    if stage.pipeline_id != opp.pipeline_id:
        raise ValidationFailed(
            _("That stage belongs to another pipeline."), field="stage"
        )
    if stage.kind != StageKind.OPEN:
        raise InvalidTransition(
            _("To close an opportunity, mark it won or lost instead of moving it."),
            field="stage",
        )
    if stage.pk == opp.stage_id:
        raise InvalidTransition(_("The opportunity is already in that stage."), field="stage")

    now = timezone.now()
    before = audit.snapshot(opp, _FIELDS)
    previous = opp.stage
    change = _change(opp, from_stage=previous, to_stage=stage, at=now, by=employee_of(actor))
    opp.stage = stage
    opp.stage_entered_at = now
    opp.last_activity_at = now
    opp.save(update_fields=["stage", "stage_entered_at", "last_activity_at"])
    audit.record(actor, "opportunity.move", opp, before=before,
                 after=audit.snapshot(opp, _FIELDS))
    events.emit(
        "opportunity.stage_changed", opp, actor=actor, from_stage_id=previous.pk,
        to_stage_id=stage.pk, seconds=change.seconds_in_previous, amount=opp.amount,
    )
    return opp


def _close(
    actor: Any, opportunity: Opportunity, *, status: str, reason: str = "", note: str = "",
) -> Opportunity:
    if actor is not None:
        require(actor, "opportunity.edit")
    opp = _locked_opportunity(actor, opportunity)
    if opp.status != OpportunityStatus.OPEN:
        raise InvalidTransition(
            _("This opportunity is already closed; reopen it first."), field="status"
        )
    target = _terminal_stage(opp.pipeline, StageKind.WON if status == "won" else StageKind.LOST)

    now = timezone.now()
    before = audit.snapshot(opp, _FIELDS)
    previous = opp.stage
    change = _change(opp, from_stage=previous, to_stage=target, at=now, by=employee_of(actor))
    opp.stage = target
    opp.status = status
    opp.stage_entered_at = now
    opp.closed_at = now
    opp.last_activity_at = now
    opp.lost_reason = reason
    opp.close_note = note
    opp.save(update_fields=["stage", "status", "stage_entered_at", "closed_at",
                            "last_activity_at", "lost_reason", "close_note"])
    audit.record(actor, f"opportunity.{status}", opp, before=before,
                 after=audit.snapshot(opp, _FIELDS))
    events.emit(
        f"opportunity.{status}", opp, actor=actor, customer_id=opp.customer_id,
        owner_id=opp.owner_id, amount=opp.amount, from_stage_id=previous.pk,
        seconds=change.seconds_in_previous, reason=reason,
    )
    return opp


@transaction.atomic
def mark_won(*, actor: Any, opportunity: Opportunity, note: str = "") -> Opportunity:
    note = (note or "").strip()
    if len(note) > 255:
        raise ValidationFailed(_("The note is too long (255 characters at most)."),
                               field="note")
    return _close(actor, opportunity, status=OpportunityStatus.WON, note=note)


@transaction.atomic
def mark_lost(
    *, actor: Any, opportunity: Opportunity, reason: str, note: str = "",
) -> Opportunity:
    note = (note or "").strip()
    if reason not in LostReason.values:
        raise ValidationFailed(_("Choose why the opportunity was lost."), field="reason")
    if reason == LostReason.OTHER and not note:
        raise ValidationFailed(
            _("The reason is \"Other\": write a note that says what happened."), field="note"
        )
    if len(note) > 255:
        raise ValidationFailed(_("The note is too long (255 characters at most)."),
                               field="note")
    return _close(actor, opportunity, status=OpportunityStatus.LOST, reason=reason, note=note)


@transaction.atomic
def reopen_opportunity(*, actor: Any, opportunity: Opportunity) -> Opportunity:
    """Put a won or lost opportunity back into the last open stage it was in."""
    if actor is not None:
        require(actor, "opportunity.edit")
    opp = _locked_opportunity(actor, opportunity)
    if opp.status == OpportunityStatus.OPEN:
        raise InvalidTransition(_("This opportunity is already open."), field="status")
    last_open = (
        StageChange.objects.filter(opportunity=opp, to_stage__kind=StageKind.OPEN,
                                   to_stage__pipeline=opp.pipeline_id)
        .select_related("to_stage").order_by("-at", "-pk").first()
    )
    stages = open_stages(opp.pipeline)
    target = last_open.to_stage if last_open is not None else (stages[0] if stages else None)
    if target is None:
        raise ValidationFailed(
            _("This pipeline has no open stage; add one in pipeline settings."), field="stage"
        )

    now = timezone.now()
    before = audit.snapshot(opp, _FIELDS)
    previous, previous_status = opp.stage, opp.status
    change = _change(opp, from_stage=previous, to_stage=target, at=now, by=employee_of(actor))
    opp.stage = target
    opp.status = OpportunityStatus.OPEN
    opp.stage_entered_at = now
    opp.closed_at = None
    opp.lost_reason = ""
    opp.close_note = ""
    opp.last_activity_at = now
    opp.save(update_fields=["stage", "status", "stage_entered_at", "closed_at", "lost_reason",
                            "close_note", "last_activity_at"])
    audit.record(actor, "opportunity.reopen", opp, before=before,
                 after=audit.snapshot(opp, _FIELDS))
    # No event of its own: a reopen is a stage change out of won/lost, flagged as such so
    # subscribers that counted the win or loss can take it back.
    events.emit(
        "opportunity.stage_changed", opp, actor=actor, from_stage_id=previous.pk,
        to_stage_id=target.pk, seconds=change.seconds_in_previous, amount=opp.amount,
        reopened_from=previous_status,
    )
    return opp


# --- pipelines and stages -------------------------------------------------------------------
def _clean_probability(probability: Any) -> int:
    try:
        value = int(probability)
    except (TypeError, ValueError):
        raise ValidationFailed(
            _("The win probability must be a whole number from 0 to 100."),
            field="probability",
        ) from None
    if not 0 <= value <= 100:
        raise ValidationFailed(
            _("The win probability must be a whole number from 0 to 100."),
            field="probability",
        )
    return value


def _clean_stage_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationFailed(_("A stage needs a name."), field="name")
    if len(name) > 64:
        raise ValidationFailed(_("The name is too long (64 characters at most)."),
                               field="name")
    return name


def _renumber(pipeline: Pipeline, ordered: list[Stage]) -> None:
    """Give stages the orders 1..n; a detour through high numbers keeps `order` unique."""
    offset = (pipeline.stages.aggregate(m=Max("order"))["m"] or 0) + len(ordered) + 1
    for i, stage in enumerate(ordered):
        Stage.objects.filter(pk=stage.pk).update(order=offset + i)
    for i, stage in enumerate(ordered, start=1):
        Stage.objects.filter(pk=stage.pk).update(order=i)
        stage.order = i


def _ordered(stages: list[Stage]) -> list[Stage]:
    """Open stages in their order, then won, then lost."""
    rank = {StageKind.OPEN: 0, StageKind.WON: 1, StageKind.LOST: 2}
    return sorted(stages, key=lambda s: (rank[s.kind], s.order))


@transaction.atomic
def create_pipeline(
    *, actor: Any, name: str, stages: Iterable[tuple[str, int]] = (), is_default: bool = False,
) -> Pipeline:
    """A pipeline with the given open stages (name, probability) plus a won and a lost stage."""
    require(actor, "settings.manage")
    name = (name or "").strip()
    if not name:
        raise ValidationFailed(_("A pipeline needs a name."), field="name")
    if len(name) > 64:
        raise ValidationFailed(_("The name is too long (64 characters at most)."),
                               field="name")
    if Pipeline.objects.filter(name=name).exists():
        raise ValidationFailed(_("A pipeline with this name already exists."), field="name")
    cleaned = [(_clean_stage_name(n), _clean_probability(p)) for n, p in stages]

    if is_default:
        Pipeline.objects.filter(is_default=True).update(is_default=False)
    pipeline = Pipeline.objects.create(name=name, is_default=is_default)
    rows = [(n, p, StageKind.OPEN) for n, p in cleaned]
    rows += [(_("Won"), 100, StageKind.WON), (_("Lost"), 0, StageKind.LOST)]
    Stage.objects.bulk_create(
        Stage(pipeline=pipeline, name=n, probability=p, kind=k, order=i)
        for i, (n, p, k) in enumerate(rows, start=1)
    )
    audit.record(actor, "pipeline.create", pipeline,
                 after={"name": name, "is_default": is_default, "stages": rows})
    return pipeline


@transaction.atomic
def set_default_pipeline(*, actor: Any, pipeline: Pipeline) -> Pipeline:
    require(actor, "settings.manage")
    Pipeline.objects.filter(is_default=True).exclude(pk=pipeline.pk).update(is_default=False)
    Pipeline.objects.filter(pk=pipeline.pk).update(is_default=True)
    pipeline.is_default = True
    audit.record(actor, "pipeline.set_default", pipeline, after={"is_default": True})
    return pipeline


@transaction.atomic
def add_stage(
    *, actor: Any, pipeline: Pipeline, name: str, probability: Any, kind: str = StageKind.OPEN,
    position: int | None = None,
) -> Stage:
    """Add a stage; open stages go before won and lost (at `position` among the open ones,
    1-based, or last). A pipeline has exactly one won and one lost stage."""
    require(actor, "settings.manage")
    name = _clean_stage_name(name)
    probability = _clean_probability(probability)
    if kind not in StageKind.values:
        raise ValidationFailed(_("Choose a stage kind: open, won or lost."), field="kind")
    if kind != StageKind.OPEN:
        raise ValidationFailed(
            _("A pipeline has exactly one won and one lost stage; edit those instead."),
            field="kind",
        )
    existing = list(Pipeline.objects.select_for_update().get(pk=pipeline.pk).stages.all())
    if any(s.name == name for s in existing):
        raise ValidationFailed(_("This pipeline already has a stage with that name."),
                               field="name")

    top = max((s.order for s in existing), default=0)
    stage = Stage.objects.create(pipeline=pipeline, name=name, probability=probability,
                                 kind=kind, order=top + 1)
    ordered = _ordered(existing)
    opens = [s for s in ordered if s.kind == StageKind.OPEN]
    at = len(opens) if position is None else max(0, min(int(position) - 1, len(opens)))
    opens.insert(at, stage)
    _renumber(pipeline, opens + [s for s in ordered if s.kind != StageKind.OPEN])
    audit.record(actor, "stage.create", stage, after=audit.snapshot(stage))
    return stage


@transaction.atomic
def update_stage(
    *, actor: Any, stage: Stage, name: str | None = None, probability: Any = None,
    position: int | None = None,
) -> Stage:
    """Rename a stage, change its win probability, or move an open stage among the open ones.
    A stage's kind never changes, so a pipeline keeps exactly one won and one lost stage."""
    require(actor, "settings.manage")
    stage = Stage.objects.select_for_update().get(pk=stage.pk)
    before = audit.snapshot(stage)
    if name is not None:
        name = _clean_stage_name(name)
        if stage.pipeline.stages.filter(name=name).exclude(pk=stage.pk).exists():
            raise ValidationFailed(_("This pipeline already has a stage with that name."),
                                   field="name")
        stage.name = name
    if probability is not None:
        stage.probability = _clean_probability(probability)
    stage.save(update_fields=["name", "probability"])
    if position is not None:
        if stage.kind != StageKind.OPEN:
            raise ValidationFailed(
                _("Won and lost stages always come last; only open stages can move."),
                field="position",
            )
        ordered = _ordered(list(stage.pipeline.stages.all()))
        opens = [s for s in ordered if s.kind == StageKind.OPEN and s.pk != stage.pk]
        at = max(0, min(int(position) - 1, len(opens)))
        opens.insert(at, stage)
        _renumber(stage.pipeline, opens + [s for s in ordered if s.kind != StageKind.OPEN])
    audit.record(actor, "stage.update", stage, before=before, after=audit.snapshot(stage))
    return stage


@transaction.atomic
def hand_over_opportunities(*, actor: Any, from_employee: Employee,
                            to_employee: Employee) -> list[int]:
    """Give every open opportunity of `from_employee` to `to_employee` (a departure's
    successor); won and lost ones keep the name of who closed them.

    One audit row for the hand-over, one "opportunity.reassigned" event per opportunity.
    What was handed over is not touched again, so a replay changes nothing. `actor` None is
    the system (the "employee.left" subscriber)."""
    if actor is not None:
        require(actor, "opportunity.edit")
        if not visible_employees(actor).filter(pk=to_employee.pk).exists():
            raise ValidationFailed(
                _("You may only give opportunities to people in your own scope."),
                field="owner",
            )
    to_employee = Employee.objects.get(pk=to_employee.pk)
    if not to_employee.is_active:
        raise ValidationFailed(
            _("%(name)s has left the company; pick someone else.") % {"name": to_employee.name},
            field="owner",
        )
    open_ones = _visible(Opportunity.objects.select_for_update(of=("self",)), actor).filter(
        owner=from_employee, status=OpportunityStatus.OPEN)
    ids = sorted(open_ones.values_list("pk", flat=True))
    if not ids:
        return []
    now = timezone.now()
    Opportunity.objects.filter(pk__in=ids).update(
        owner=to_employee, department=to_employee.department_id, last_activity_at=now)
    audit.record(actor, "opportunity.hand_over", from_employee,
                 before={"owner": from_employee.pk},
                 after={"owner": to_employee.pk, "opportunities": ids})
    for pk in ids:
        events.emit("opportunity.reassigned", Opportunity(pk=pk), actor=actor,
                    owner_id=to_employee.pk, previous_owner_id=from_employee.pk,
                    hand_over=True)
    return ids
