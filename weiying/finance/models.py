"""The finance layer's tables.

Three levels, each derived from the one below and reconciled against it in tests:

- `Obligation` (履约义务): one per product (or bundle component) on a signed contract, with the
  price allocated to it and running totals of what has been recognised and paid.
- `Movement`: the subledger. One row per obligation per event (a receipt, an acceptance, a
  service month, a refund, a cancellation), holding the change it made to every balance the
  bridge reads. Each row balances by itself, so any slice of rows balances too: that is what
  makes the bridge hold for any department, rep, product or channel.
- `Voucher` / `Entry`: the general journal (记账凭证), one voucher per event with the
  movements' amounts summed per account, plus manual vouchers for corrections.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.utils.translation import gettext_lazy as _

from weiying.core.money import MONEY_FIELD, QUANTITY_FIELD, RATE_FIELD
from weiying.core.scope import ScopeRule

OWNER = {"on_delete": models.SET_NULL, "null": True, "blank": True, "related_name": "+"}


class AccountKind(models.TextChoices):
    ASSET = "asset", _("Asset")
    LIABILITY = "liability", _("Liability")
    EQUITY = "equity", _("Equity")
    COST = "cost", _("Cost")
    REVENUE = "revenue", _("Revenue")
    EXPENSE = "expense", _("Expense")


class Account(models.Model):
    """A line of the chart of accounts. `role` names what the automatic vouchers use it for;
    renaming or renumbering an account keeps its role, so the chart is the company's own."""

    code = models.CharField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=64)
    kind = models.CharField(_("kind"), max_length=16, choices=AccountKind.choices)
    role = models.CharField(_("role"), max_length=32, unique=True, null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("account")
        verbose_name_plural = _("accounts")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class PeriodStatus(models.TextChoices):
    OPEN = "open", _("Open")
    CLOSED = "closed", _("Closed")


class Period(models.Model):
    """An accounting month. A closed period never changes: nothing is booked with a date in
    it, and a correction is a reversing voucher in an open period."""

    year = models.PositiveSmallIntegerField(_("year"))
    month = models.PositiveSmallIntegerField(_("month"))
    status = models.CharField(_("status"), max_length=8, choices=PeriodStatus.choices,
                              default=PeriodStatus.OPEN)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    closed_by = models.ForeignKey("org.Employee", verbose_name=_("closed by"), **OWNER)
    next_voucher = models.PositiveIntegerField(default=1)

    class Meta:
        verbose_name = _("accounting period")
        verbose_name_plural = _("accounting periods")
        ordering = ["year", "month"]
        constraints = [models.UniqueConstraint(fields=["year", "month"], name="period_unique")]

    def __str__(self) -> str:
        return f"{self.year}-{self.month:02d}"

    @property
    def is_closed(self) -> bool:
        return self.status == PeriodStatus.CLOSED


class ObligationStatus(models.TextChoices):
    OPEN = "open", _("Open")
    SATISFIED = "satisfied", _("Satisfied")
    CANCELLED = "cancelled", _("Cancelled")


class Obligation(models.Model):
    """A performance obligation (履约义务). `gross` is the allocated price VAT included,
    split into `net` and `vat`; the running totals say how much of it has been recognised and
    how much cash has been applied to it. For goods and milestones `quantity` is counted in
    the contract line's units and `accepted_quantity` moves with each acceptance."""

    contract = models.ForeignKey("pipeline.Contract", on_delete=models.PROTECT,
                                 related_name="obligations")
    contract_line = models.ForeignKey("pipeline.ContractLine", on_delete=models.PROTECT,
                                      related_name="+", null=True, blank=True)
    product = models.ForeignKey("catalog.Product", on_delete=models.PROTECT, related_name="+")
    seq = models.PositiveSmallIntegerField(_("no."))
    fulfilment = models.CharField(_("fulfilment"), max_length=16)
    quantity = models.DecimalField(_("quantity"), **QUANTITY_FIELD)
    accepted_quantity = models.DecimalField(_("accepted"), default=0, **QUANTITY_FIELD)
    vat_rate = models.DecimalField(_("VAT rate"), **RATE_FIELD)
    ssp = models.DecimalField(_("standalone selling price"), **MONEY_FIELD)
    gross = models.DecimalField(_("allocated price (VAT incl.)"), **MONEY_FIELD)
    net = models.DecimalField(_("allocated price (VAT excl.)"), **MONEY_FIELD)
    vat = models.DecimalField(_("VAT"), **MONEY_FIELD)
    cost = models.DecimalField(_("standard cost"), default=0, **MONEY_FIELD)
    start_on = models.DateField(_("service starts"), null=True, blank=True)
    end_on = models.DateField(_("service ends"), null=True, blank=True)
    recognised_gross = models.DecimalField(default=0, **MONEY_FIELD)
    recognised_vat = models.DecimalField(default=0, **MONEY_FIELD)
    cost_booked = models.DecimalField(default=0, **MONEY_FIELD)
    paid_gross = models.DecimalField(default=0, **MONEY_FIELD)
    released_gross = models.DecimalField(default=0, **MONEY_FIELD)
    status = models.CharField(_("status"), max_length=12, choices=ObligationStatus.choices,
                              default=ObligationStatus.OPEN)
    # The slice dimensions, copied from the contract when the obligation is made.
    department = models.ForeignKey("org.Department", **OWNER)
    owner = models.ForeignKey("org.Employee", **OWNER)
    customer = models.ForeignKey("customers.Customer", **OWNER)
    channel = models.CharField(_("channel"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("performance obligation")
        verbose_name_plural = _("performance obligations")
        ordering = ["contract_id", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["contract", "seq"], name="obligation_seq_unique"),
        ]
        indexes = [models.Index(fields=["fulfilment", "status"], name="obligation_open_idx")]

    scope = ScopeRule(owner="owner", department="department")

    def __str__(self) -> str:
        return f"{self.contract_id}/{self.seq}"

    @property
    def recognised_net(self) -> Decimal:
        return self.recognised_gross - self.recognised_vat

    @property
    def deferred_gross(self) -> Decimal:
        """What of the allocated price is still to be recognised."""
        return self.gross - self.recognised_gross - self.released_gross


class MovementKind(models.TextChoices):
    RECEIPT = "receipt", _("Receipt")
    RECOGNITION = "recognition", _("Revenue recognised")
    SERVICE_MONTH = "service_month", _("Service month")
    REFUND = "refund", _("Refund")
    CANCELLATION = "cancellation", _("Cancellation")


# The balance columns of a movement, in the order the journal shows them. Debit-natured
# columns (bank, receivable, cost) grow with a debit; the others grow with a credit.
BALANCE_COLUMNS = ("bank", "receivable", "contract_liability", "pending_vat",
                   "refund_payable", "revenue", "output_vat", "cost")


class Movement(models.Model):
    """The subledger: what one event did to one obligation's balances. For every row
    bank + receivable = contract_liability + pending_vat + refund_payable + revenue +
    output_vat; `cost` books cost of sales against inventory or fulfilment cost on its own."""

    obligation = models.ForeignKey(Obligation, on_delete=models.PROTECT,
                                   related_name="movements")
    contract = models.ForeignKey("pipeline.Contract", on_delete=models.PROTECT,
                                 related_name="+")
    voucher = models.ForeignKey("Voucher", on_delete=models.PROTECT, related_name="movements",
                                null=True, blank=True)
    kind = models.CharField(_("kind"), max_length=16, choices=MovementKind.choices)
    on = models.DateField(_("booked on"))
    event_on = models.DateField(_("happened on"))
    bank = models.DecimalField(default=0, **MONEY_FIELD)
    receivable = models.DecimalField(default=0, **MONEY_FIELD)
    contract_liability = models.DecimalField(default=0, **MONEY_FIELD)
    pending_vat = models.DecimalField(default=0, **MONEY_FIELD)
    refund_payable = models.DecimalField(default=0, **MONEY_FIELD)
    revenue = models.DecimalField(default=0, **MONEY_FIELD)
    output_vat = models.DecimalField(default=0, **MONEY_FIELD)
    cost = models.DecimalField(default=0, **MONEY_FIELD)
    department = models.ForeignKey("org.Department", **OWNER)
    owner = models.ForeignKey("org.Employee", **OWNER)
    customer = models.ForeignKey("customers.Customer", **OWNER)
    product = models.ForeignKey("catalog.Product", **OWNER)
    channel = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name = _("subledger movement")
        verbose_name_plural = _("subledger movements")
        indexes = [
            models.Index(fields=["department", "on"], name="movement_dept_on_idx"),
            models.Index(fields=["on"], name="movement_on_idx"),
            models.Index(fields=["owner", "on"], name="movement_owner_on_idx"),
            models.Index(fields=["voucher", "obligation"], name="movement_voucher_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.on} #{self.obligation_id}"

    scope = ScopeRule(owner="owner", department="department", follows_owner=False)

    def balances(self) -> bool:
        left = self.bank + self.receivable
        right = (self.contract_liability + self.pending_vat + self.refund_payable
                 + self.revenue + self.output_vat)
        return left == right


class MovementMonth(models.Model):
    """The subledger summed per month and slice (department, owner, product, channel), in whole
    fen, so a report over a year reads twelve rows per slice instead of every movement. Kept
    in the transaction that writes the movements (`rollup.add_voucher`), rebuildable from them
    (`rollup.rebuild`), and checked against them in tests."""

    key = models.CharField(max_length=120, unique=True)
    period = models.PositiveIntegerField()  # yyyymm
    department = models.ForeignKey("org.Department", **OWNER)
    owner = models.ForeignKey("org.Employee", **OWNER)
    product = models.ForeignKey("catalog.Product", **OWNER)
    channel = models.CharField(max_length=64, blank=True)
    bank = models.BigIntegerField(default=0)
    receivable = models.BigIntegerField(default=0)
    contract_liability = models.BigIntegerField(default=0)
    pending_vat = models.BigIntegerField(default=0)
    refund_payable = models.BigIntegerField(default=0)
    revenue = models.BigIntegerField(default=0)
    output_vat = models.BigIntegerField(default=0)
    cost = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("monthly subledger total")
        verbose_name_plural = _("monthly subledger totals")
        indexes = [models.Index(fields=["department", "period"], name="movementmonth_dept_idx"),
                   models.Index(fields=["period"], name="movementmonth_period_idx")]

    scope = ScopeRule(owner="owner", department="department", follows_owner=False)

    def __str__(self) -> str:
        return self.key


class Voucher(models.Model):
    """A journal voucher (记账凭证). `source_key` makes automatic vouchers idempotent: an
    event replayed finds its voucher and books nothing twice."""

    number = models.CharField(_("number"), max_length=32, unique=True)
    word = models.CharField(_("voucher word"), max_length=4, default="记")
    seq = models.PositiveIntegerField(_("number in period"))
    on = models.DateField(_("date"))
    year = models.PositiveSmallIntegerField()
    month = models.PositiveSmallIntegerField()
    summary = models.CharField(_("summary"), max_length=255)
    source = models.CharField(_("source"), max_length=24)
    source_key = models.CharField(max_length=64, unique=True, null=True, blank=True)
    contract = models.ForeignKey("pipeline.Contract", **OWNER)
    reverses = models.ForeignKey("self", verbose_name=_("reverses"), **OWNER)
    is_manual = models.BooleanField(_("manual"), default=False)
    created_by = models.ForeignKey("org.Employee", **OWNER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("voucher")
        verbose_name_plural = _("vouchers")
        ordering = ["on", "seq"]
        indexes = [models.Index(fields=["year", "month", "seq"], name="voucher_period_idx")]

    def __str__(self) -> str:
        return self.number


class Entry(models.Model):
    """One line of a voucher: an account and either a debit or a credit."""

    voucher = models.ForeignKey(Voucher, on_delete=models.CASCADE, related_name="entries")
    line = models.PositiveSmallIntegerField()
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="entries")
    summary = models.CharField(_("summary"), max_length=255, blank=True)
    debit = models.DecimalField(_("debit"), default=0, **MONEY_FIELD)
    credit = models.DecimalField(_("credit"), default=0, **MONEY_FIELD)
    on = models.DateField()
    department = models.ForeignKey("org.Department", **OWNER)
    owner = models.ForeignKey("org.Employee", **OWNER)
    customer = models.ForeignKey("customers.Customer", **OWNER)
    contract = models.ForeignKey("pipeline.Contract", **OWNER)

    class Meta:
        verbose_name = _("journal entry")
        verbose_name_plural = _("journal entries")
        ordering = ["voucher_id", "line"]
        indexes = [models.Index(fields=["account", "on"], name="entry_account_on_idx")]

    def __str__(self) -> str:
        return f"{self.voucher_id}/{self.line}"


class Refund(models.Model):
    contract = models.ForeignKey("pipeline.Contract", on_delete=models.PROTECT,
                                 related_name="refunds")
    amount = models.DecimalField(_("amount"), **MONEY_FIELD)
    refunded_on = models.DateField(_("refunded on"))
    reason = models.CharField(_("reason"), max_length=255)
    external_id = models.CharField(max_length=64, null=True, blank=True, unique=True)
    recorded_by = models.ForeignKey("org.Employee", **OWNER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ["-refunded_on", "-pk"]

    def __str__(self) -> str:
        return f"{self.contract_id} {self.amount}"


class InvoiceKind(models.TextChoices):
    SPECIAL = "special", _("Special VAT invoice (专票)")
    ORDINARY = "ordinary", _("Ordinary VAT invoice (普票)")


class InvoiceStatus(models.TextChoices):
    ISSUED = "issued", _("Issued")
    VOIDED = "voided", _("Voided")


class Invoice(models.Model):
    """A VAT invoice (发票) issued on a contract. Invoicing is recorded next to recognition and
    collection; it books no voucher (see the README's limitations on the VAT tax point)."""

    number = models.CharField(_("invoice number"), max_length=32, unique=True)
    contract = models.ForeignKey("pipeline.Contract", on_delete=models.PROTECT,
                                 related_name="invoices")
    kind = models.CharField(_("type"), max_length=12, choices=InvoiceKind.choices)
    issued_on = models.DateField(_("issued on"))
    vat_rate = models.DecimalField(_("VAT rate"), **RATE_FIELD)
    gross = models.DecimalField(_("amount (VAT incl.)"), **MONEY_FIELD)
    net = models.DecimalField(_("amount (VAT excl.)"), **MONEY_FIELD)
    vat = models.DecimalField(_("VAT"), **MONEY_FIELD)
    status = models.CharField(_("status"), max_length=8, choices=InvoiceStatus.choices,
                              default=InvoiceStatus.ISSUED)
    void_reason = models.CharField(_("voided because"), max_length=255, blank=True)
    department = models.ForeignKey("org.Department", **OWNER)
    owner = models.ForeignKey("org.Employee", **OWNER)
    recorded_by = models.ForeignKey("org.Employee", **OWNER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("invoice")
        verbose_name_plural = _("invoices")
        ordering = ["-issued_on", "-pk"]

    def __str__(self) -> str:
        return self.number

    scope = ScopeRule(owner="owner", department="department")


class BankStatement(models.Model):
    file_name = models.CharField(_("file"), max_length=255)
    imported_at = models.DateTimeField(auto_now_add=True)
    imported_by = models.ForeignKey("org.Employee", **OWNER)
    lines_total = models.PositiveIntegerField(default=0)
    lines_new = models.PositiveIntegerField(default=0)
    lines_matched = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("bank statement")
        verbose_name_plural = _("bank statements")
        ordering = ["-imported_at"]

    def __str__(self) -> str:
        return self.file_name


class BankLineStatus(models.TextChoices):
    UNMATCHED = "unmatched", _("Unmatched")
    MATCHED = "matched", _("Matched")
    IGNORED = "ignored", _("Ignored")


class BankLine(models.Model):
    """A credit line of a bank statement. `bank_ref` (the bank's serial, 流水号) is unique:
    importing the same line again finds it and changes nothing."""

    statement = models.ForeignKey(BankStatement, on_delete=models.PROTECT, related_name="lines")
    bank_ref = models.CharField(_("bank serial"), max_length=64, unique=True)
    booked_on = models.DateField(_("booked on"))
    amount = models.DecimalField(_("amount"), **MONEY_FIELD)
    counterparty = models.CharField(_("payer"), max_length=128, blank=True)
    counterparty_account = models.CharField(_("payer account"), max_length=64, blank=True)
    memo = models.CharField(_("memo"), max_length=255, blank=True)
    status = models.CharField(_("status"), max_length=12, choices=BankLineStatus.choices,
                              default=BankLineStatus.UNMATCHED)
    contract = models.ForeignKey("pipeline.Contract", **OWNER)
    receipt = models.ForeignKey("pipeline.Receipt", **OWNER)
    matched_by = models.ForeignKey("org.Employee", **OWNER)
    matched_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(_("note"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("bank statement line")
        verbose_name_plural = _("bank statement lines")
        ordering = ["booked_on", "pk"]
        indexes = [models.Index(fields=["status", "booked_on"], name="bankline_status_idx")]

    def __str__(self) -> str:
        return self.bank_ref


class MarketingSpend(models.Model):
    """Money spent on a channel (a campaign, an ad, a fair), entered or imported, for the
    channel's return in cash and in revenue."""

    channel = models.CharField(_("channel"), max_length=64, db_index=True)
    spent_on = models.DateField(_("spent on"))
    amount = models.DecimalField(_("amount"), **MONEY_FIELD)
    note = models.CharField(_("note"), max_length=255, blank=True)
    department = models.ForeignKey("org.Department", **OWNER)
    external_id = models.CharField(max_length=64, null=True, blank=True, unique=True)
    recorded_by = models.ForeignKey("org.Employee", **OWNER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("marketing spend")
        verbose_name_plural = _("marketing spend")
        ordering = ["-spent_on", "-pk"]

    # Spend belongs to the department it was spent for, whoever typed it in.
    scope = ScopeRule(owner="recorded_by", department="department", follows_owner=False)

    def __str__(self) -> str:
        return f"{self.channel} {self.spent_on}"

