from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.utils.translation import gettext_lazy as _

from weiying.core.masking import mask_phone
from weiying.core.money import MONEY_FIELD, QUANTITY_FIELD, RATE_FIELD
from weiying.core.scope import ScopeRule
from weiying.customers.choices import Source
from weiying.pipeline.choices import (
    AssignmentKind,
    ContractStatus,
    DisqualifyReason,
    FollowUpKind,
    LeadStatus,
    LostReason,
    OpportunityStatus,
    PaymentMethod,
    QuoteStatus,
    StageKind,
    TicketPriority,
    TicketStatus,
)

OWNER = {"on_delete": models.PROTECT, "null": True, "blank": True, "related_name": "+"}


# --- Leads ----------------------------------------------------------------------------------
class Lead(models.Model):
    """A prospect not yet qualified. An unassigned lead waits in its team's queue
    (`department`); `first_response_seconds` is from assignment to the first follow-up."""

    scope = ScopeRule(owner="owner", department="department")

    name = models.CharField(_("contact name"), max_length=64)
    company_name = models.CharField(_("company"), max_length=128, blank=True)
    phone = models.CharField(_("phone"), max_length=20, blank=True, db_index=True)
    wechat = models.CharField(_("WeChat id"), max_length=64, blank=True)
    email = models.EmailField(_("email"), blank=True)
    city = models.CharField(_("city"), max_length=64, blank=True)
    region = models.CharField(_("region"), max_length=64, blank=True)
    source = models.CharField(_("source"), max_length=16, choices=Source.choices,
                              default=Source.OTHER)
    channel = models.CharField(_("channel"), max_length=64, blank=True)
    interest = models.CharField(_("interested in"), max_length=255, blank=True)
    note = models.TextField(_("note"), blank=True)
    external_id = models.CharField(_("external id"), max_length=64, null=True, blank=True,
                                   unique=True)
    status = models.CharField(_("status"), max_length=16, choices=LeadStatus.choices,
                              default=LeadStatus.NEW, db_index=True)
    owner = models.ForeignKey("org.Employee", verbose_name=_("owner"), **OWNER)
    department = models.ForeignKey("org.Department", verbose_name=_("team"), **OWNER)
    assigned_at = models.DateTimeField(_("assigned at"), null=True, blank=True)
    first_response_at = models.DateTimeField(_("first response"), null=True, blank=True)
    first_response_seconds = models.PositiveIntegerField(null=True, blank=True)
    disqualify_reason = models.CharField(_("disqualified because"), max_length=24,
                                         choices=DisqualifyReason.choices, blank=True)
    disqualify_note = models.CharField(_("disqualification note"), max_length=255, blank=True)
    customer = models.ForeignKey("customers.Customer", on_delete=models.SET_NULL, null=True,
                                 blank=True, related_name="leads")
    opportunity = models.ForeignKey("Opportunity", on_delete=models.SET_NULL, null=True,
                                    blank=True, related_name="+")
    converted_at = models.DateTimeField(_("converted at"), null=True, blank=True)
    last_activity_at = models.DateTimeField(_("last activity"))
    created_at = models.DateTimeField(_("created at"), db_index=True)

    class Meta:
        verbose_name = _("lead")
        verbose_name_plural = _("leads")
        indexes = [
            models.Index(fields=["owner", "-last_activity_at", "-id"], name="lead_owner_act_idx"),
            models.Index(fields=["-last_activity_at", "-id"], name="lead_activity_idx"),
            models.Index(fields=["department", "status"], name="lead_queue_idx"),
        ]

    def __str__(self) -> str:
        return self.company_name or self.name

    @property
    def masked_phone(self) -> str:
        return mask_phone(self.phone)


class AssignmentRule(models.Model):
    """Routes new leads: the first active rule (by priority) that matches assigns the lead
    round-robin among the active members of its team."""

    name = models.CharField(_("name"), max_length=64)
    kind = models.CharField(_("kind"), max_length=16, choices=AssignmentKind.choices)
    priority = models.PositiveIntegerField(_("priority"), default=100)
    match_region = models.CharField(_("region"), max_length=64, blank=True)
    match_source = models.CharField(_("source"), max_length=16, choices=Source.choices,
                                    blank=True)
    team = models.ForeignKey("org.Department", on_delete=models.CASCADE, related_name="+",
                             verbose_name=_("team"))
    last_assigned = models.ForeignKey("org.Employee", on_delete=models.SET_NULL, null=True,
                                      blank=True, related_name="+")
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("assignment rule")
        verbose_name_plural = _("assignment rules")
        ordering = ["priority", "pk"]

    def __str__(self) -> str:
        return self.name


# --- Opportunities --------------------------------------------------------------------------
class Pipeline(models.Model):
    """A sales process: an ordered list of stages."""

    name = models.CharField(_("name"), max_length=64)
    is_default = models.BooleanField(_("default"), default=False)

    class Meta:
        verbose_name = _("pipeline")
        verbose_name_plural = _("pipelines")

    def __str__(self) -> str:
        return self.name


class Stage(models.Model):
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="stages")
    name = models.CharField(_("name"), max_length=64)
    order = models.PositiveSmallIntegerField(_("order"))
    probability = models.PositiveSmallIntegerField(_("win probability (%)"))
    kind = models.CharField(_("kind"), max_length=8, choices=StageKind.choices,
                            default=StageKind.OPEN)

    class Meta:
        verbose_name = _("stage")
        verbose_name_plural = _("stages")
        ordering = ["pipeline", "order"]
        constraints = [
            models.UniqueConstraint(fields=["pipeline", "order"], name="stage_order_unique"),
            models.CheckConstraint(condition=models.Q(probability__lte=100),
                                   name="stage_probability_max_100"),
        ]

    def __str__(self) -> str:
        return self.name


class Opportunity(models.Model):
    """A deal being worked: amount VAT included, expected close date, stage."""

    scope = ScopeRule(owner="owner", department="department")

    name = models.CharField(_("name"), max_length=128)
    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT,
                                 related_name="opportunities", verbose_name=_("customer"))
    pipeline = models.ForeignKey(Pipeline, on_delete=models.PROTECT, related_name="+")
    stage = models.ForeignKey(Stage, on_delete=models.PROTECT, related_name="opportunities",
                              verbose_name=_("stage"))
    status = models.CharField(_("status"), max_length=8, choices=OpportunityStatus.choices,
                              default=OpportunityStatus.OPEN, db_index=True)
    amount = models.DecimalField(_("amount"), default=0, **MONEY_FIELD)
    expected_close = models.DateField(_("expected close"), null=True, blank=True)
    owner = models.ForeignKey("org.Employee", verbose_name=_("owner"), **OWNER)
    department = models.ForeignKey("org.Department", **OWNER)
    lead = models.ForeignKey(Lead, on_delete=models.SET_NULL, null=True, blank=True,
                             related_name="+")
    stage_entered_at = models.DateTimeField(_("in stage since"))
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    lost_reason = models.CharField(_("lost because"), max_length=16,
                                   choices=LostReason.choices, blank=True)
    close_note = models.CharField(_("close note"), max_length=255, blank=True)
    last_activity_at = models.DateTimeField(_("last activity"))
    created_at = models.DateTimeField(_("created at"), db_index=True)

    class Meta:
        verbose_name = _("opportunity")
        verbose_name_plural = _("opportunities")
        indexes = [
            models.Index(fields=["owner", "status", "-last_activity_at"], name="opp_owner_idx"),
            models.Index(fields=["-last_activity_at", "-id"], name="opp_activity_idx"),
            models.Index(fields=["stage", "status"], name="opp_stage_idx"),
        ]

    def __str__(self) -> str:
        return self.name


class OpportunityLine(models.Model):
    opportunity = models.ForeignKey(Opportunity, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey("catalog.Product", on_delete=models.PROTECT, related_name="+")
    quantity = models.DecimalField(_("quantity"), default=1, **QUANTITY_FIELD)
    amount = models.DecimalField(_("amount"), **MONEY_FIELD)

    class Meta:
        verbose_name = _("opportunity line")
        verbose_name_plural = _("opportunity lines")

    def __str__(self) -> str:
        return f"{self.product_id} × {self.quantity}"


class StageChange(models.Model):
    """One move of an opportunity; `seconds_in_previous` is the time spent in `from_stage`."""

    opportunity = models.ForeignKey(Opportunity, on_delete=models.CASCADE,
                                    related_name="stage_changes")
    from_stage = models.ForeignKey(Stage, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="+")
    to_stage = models.ForeignKey(Stage, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(_("at"))
    seconds_in_previous = models.PositiveBigIntegerField(null=True, blank=True)
    by = models.ForeignKey("org.Employee", on_delete=models.SET_NULL, null=True, blank=True,
                           related_name="+")

    class Meta:
        verbose_name = _("stage change")
        verbose_name_plural = _("stage changes")
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.opportunity_id}: {self.from_stage_id} → {self.to_stage_id}"


# --- Follow-ups -----------------------------------------------------------------------------
class FollowUp(models.Model):
    """A touch with a customer or lead: call, visit, WeChat, meeting."""

    scope = ScopeRule(owner="owner")

    kind = models.CharField(_("kind"), max_length=16, choices=FollowUpKind.choices)
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, null=True,
                                 blank=True, related_name="followups")
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, null=True, blank=True,
                             related_name="followups")
    opportunity = models.ForeignKey(Opportunity, on_delete=models.SET_NULL, null=True,
                                    blank=True, related_name="followups")
    owner = models.ForeignKey("org.Employee", on_delete=models.PROTECT, related_name="+",
                              verbose_name=_("by"))
    note = models.TextField(_("note"))
    at = models.DateTimeField(_("when"))
    next_at = models.DateTimeField(_("next follow-up"), null=True, blank=True)
    next_done = models.BooleanField(default=False)
    reminded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("follow-up")
        verbose_name_plural = _("follow-ups")
        indexes = [
            models.Index(fields=["customer", "-at"], name="fu_customer_idx"),
            models.Index(fields=["lead", "-at"], name="fu_lead_idx"),
            models.Index(fields=["owner", "next_at"], name="fu_due_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(customer__isnull=False) | models.Q(lead__isnull=False),
                name="followup_has_subject",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.at:%Y-%m-%d}"


# --- Quotes and contracts -------------------------------------------------------------------
class Quote(models.Model):
    scope = ScopeRule(owner="owner")

    number = models.CharField(_("number"), max_length=32, unique=True)
    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT,
                                 related_name="quotes")
    opportunity = models.ForeignKey(Opportunity, on_delete=models.SET_NULL, null=True,
                                    blank=True, related_name="quotes")
    owner = models.ForeignKey("org.Employee", verbose_name=_("owner"), **OWNER)
    status = models.CharField(_("status"), max_length=16, choices=QuoteStatus.choices,
                              default=QuoteStatus.DRAFT)
    valid_until = models.DateField(_("valid until"), null=True, blank=True)
    total = models.DecimalField(_("total (VAT incl.)"), default=0, **MONEY_FIELD)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("quote")
        verbose_name_plural = _("quotes")

    def __str__(self) -> str:
        return self.number


class Contract(models.Model):
    """A contract or order. Its status moves only through pipeline.services; each
    transition names what it needs."""

    scope = ScopeRule(owner="owner", department="department")

    number = models.CharField(_("number"), max_length=32, unique=True)
    title = models.CharField(_("title"), max_length=128)
    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT,
                                 related_name="contracts", verbose_name=_("customer"))
    opportunity = models.ForeignKey(Opportunity, on_delete=models.SET_NULL, null=True,
                                    blank=True, related_name="contracts")
    quote = models.ForeignKey(Quote, on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="contracts")
    owner = models.ForeignKey("org.Employee", verbose_name=_("owner"), **OWNER)
    department = models.ForeignKey("org.Department", **OWNER)
    status = models.CharField(_("status"), max_length=16, choices=ContractStatus.choices,
                              default=ContractStatus.DRAFT, db_index=True)
    total = models.DecimalField(_("total (VAT incl.)"), default=0, **MONEY_FIELD)
    total_net = models.DecimalField(_("total net of VAT"), default=0, **MONEY_FIELD)
    total_vat = models.DecimalField(_("VAT"), default=0, **MONEY_FIELD)
    max_discount = models.DecimalField(_("largest discount"), default=0, **RATE_FIELD)
    collected = models.DecimalField(_("collected"), default=0, **MONEY_FIELD)
    signed_on = models.DateField(_("signed on"), null=True, blank=True)
    start_on = models.DateField(_("starts on"), null=True, blank=True)
    end_on = models.DateField(_("ends on"), null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey("org.Employee", **OWNER)
    approved_at = models.DateTimeField(null=True, blank=True)
    rejection_reason = models.CharField(_("rejected because"), max_length=255, blank=True)
    cancel_reason = models.CharField(_("cancelled because"), max_length=255, blank=True)
    delivered_on = models.DateField(_("delivered on"), null=True, blank=True)
    accepted_on = models.DateField(_("accepted on"), null=True, blank=True)
    completed_on = models.DateField(_("completed on"), null=True, blank=True)
    note = models.TextField(_("note"), blank=True)
    created_at = models.DateTimeField(_("created at"), db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("contract")
        verbose_name_plural = _("contracts")
        indexes = [models.Index(fields=["owner", "status"], name="contract_owner_idx")]

    def __str__(self) -> str:
        return f"{self.number} {self.title}"

    @property
    def outstanding(self) -> Decimal:
        return self.total - self.collected


class ContractLine(models.Model):
    """A line: VAT-inclusive unit price, discount as a fraction (0.15 = 15 % off)."""

    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, null=True, blank=True,
                                 related_name="lines")
    quote = models.ForeignKey(Quote, on_delete=models.CASCADE, null=True, blank=True,
                              related_name="lines")
    product = models.ForeignKey("catalog.Product", on_delete=models.PROTECT, related_name="+",
                                verbose_name=_("product"))
    sku = models.ForeignKey("catalog.Sku", on_delete=models.PROTECT, null=True, blank=True,
                            related_name="+", verbose_name=_("SKU"))
    description = models.CharField(_("description"), max_length=255, blank=True)
    quantity = models.DecimalField(_("quantity"), **QUANTITY_FIELD)
    unit_price = models.DecimalField(_("unit price (VAT incl.)"), **MONEY_FIELD)
    discount = models.DecimalField(_("discount"), default=0, **RATE_FIELD)
    vat_rate = models.DecimalField(_("VAT rate"), **RATE_FIELD)
    amount = models.DecimalField(_("amount (VAT incl.)"), **MONEY_FIELD)
    net = models.DecimalField(_("net"), **MONEY_FIELD)
    vat = models.DecimalField(_("VAT"), **MONEY_FIELD)

    class Meta:
        verbose_name = _("line")
        verbose_name_plural = _("lines")

    def __str__(self) -> str:
        return f"{self.product_id} × {self.quantity}"


class Instalment(models.Model):
    """A planned collection (回款计划) on a contract."""

    scope = ScopeRule(owner="contract__owner", department="contract__department")

    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="instalments")
    seq = models.PositiveSmallIntegerField(_("no."))
    due_on = models.DateField(_("due on"), db_index=True)
    amount = models.DecimalField(_("amount"), **MONEY_FIELD)
    collected = models.DecimalField(_("collected"), default=0, **MONEY_FIELD)

    class Meta:
        verbose_name = _("instalment")
        verbose_name_plural = _("instalments")
        ordering = ["contract", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["contract", "seq"], name="instalment_seq_unique")
        ]

    def __str__(self) -> str:
        return f"{self.contract_id}#{self.seq}"

    @property
    def outstanding(self) -> Decimal:
        return self.amount - self.collected


class Receipt(models.Model):
    """Money received (回款). `external_id` makes a sender's retries harmless."""

    scope = ScopeRule(owner="contract__owner", department="contract__department")

    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="receipts")
    instalment = models.ForeignKey(Instalment, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="receipts")
    amount = models.DecimalField(_("amount"), **MONEY_FIELD)
    received_on = models.DateField(_("received on"), db_index=True)
    method = models.CharField(_("method"), max_length=16, choices=PaymentMethod.choices)
    reference = models.CharField(_("reference"), max_length=64, blank=True)
    external_id = models.CharField(max_length=64, null=True, blank=True, unique=True)
    recorded_by = models.ForeignKey("org.Employee", **OWNER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("receipt")
        verbose_name_plural = _("receipts")

    def __str__(self) -> str:
        return f"{self.contract_id} {self.amount}"


# --- After-sale -----------------------------------------------------------------------------
class Ticket(models.Model):
    """A service request with SLA deadlines set from its priority when opened."""

    scope = ScopeRule(owner="owner", department="department")

    number = models.CharField(_("number"), max_length=32, unique=True)
    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT,
                                 related_name="tickets", verbose_name=_("customer"))
    contract = models.ForeignKey(Contract, on_delete=models.SET_NULL, null=True, blank=True,
                                 related_name="tickets")
    title = models.CharField(_("title"), max_length=128)
    description = models.TextField(_("description"), blank=True)
    priority = models.CharField(_("priority"), max_length=8, choices=TicketPriority.choices,
                                default=TicketPriority.NORMAL)
    status = models.CharField(_("status"), max_length=16, choices=TicketStatus.choices,
                              default=TicketStatus.OPEN, db_index=True)
    owner = models.ForeignKey("org.Employee", verbose_name=_("assignee"), **OWNER)
    department = models.ForeignKey("org.Department", **OWNER)
    opened_at = models.DateTimeField(_("opened at"))
    respond_by = models.DateTimeField(_("respond by"))
    resolve_by = models.DateTimeField(_("resolve by"))
    responded_at = models.DateTimeField(_("responded at"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    # When the breach of each deadline was announced (ticket.sla_breached), so it is once.
    respond_breach_at = models.DateTimeField(null=True, blank=True, editable=False)
    resolve_breach_at = models.DateTimeField(null=True, blank=True, editable=False)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    resolution = models.TextField(_("resolution"), blank=True)

    class Meta:
        verbose_name = _("service ticket")
        verbose_name_plural = _("service tickets")
        indexes = [
            models.Index(fields=["owner", "status", "-opened_at"], name="ticket_owner_idx"),
            models.Index(fields=["-opened_at", "-id"], name="ticket_opened_idx"),
            models.Index(fields=["status", "resolve_by"], name="ticket_sla_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.title}"
