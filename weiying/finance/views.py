"""The finance desk (/finance/): the reports, the journal, periods, invoices, refunds, marketing
spend and the bank statement queue. Views parse and call the services and reports; every
rule and every scope filter lives there. Seeing needs finance.view, acting finance.post (or
finance.close for the monthly close)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from weiying.core.errors import DomainError, NotFound, PermissionDenied, ValidationFailed
from weiying.core.permissions import has_perm, require
from weiying.core.scope import data_scope_of, scoped
from weiying.finance import bank, close, exports, reports, selectors, services
from weiying.finance.forms import (
    AsOfForm,
    BankMatchForm,
    BankUploadForm,
    GroupForm,
    IgnoreForm,
    InvoiceForm,
    RefundForm,
    ReverseForm,
    SliceForm,
    SpendForm,
    VoidForm,
    VoucherForm,
    VoucherLineFormSet,
)
from weiying.finance.models import (
    BankLine,
    BankLineStatus,
    Invoice,
    InvoiceStatus,
    MarketingSpend,
)
from weiying.org.choices import DataScope
from weiying.org.selectors import subtree_departments, visible_departments
from weiying.pipeline.models import Contract
from weiying.web.errors import domain_errors
from weiying.web.exports import export_links, wants_export
from weiying.web.lists import list_page

AGE_NAMES = [name for name, *_rest in reports.AGE_BUCKETS]


def _viewer(request: HttpRequest) -> None:
    require(request.user, "finance.view")


# A report page shows its largest rows; the export holds them all.
SHOWN_ROWS = 200


def _page(request: HttpRequest, template: str, context: dict[str, Any],
          status: int = 200) -> HttpResponse:
    rows = context.get("rows")
    if isinstance(rows, list) and len(rows) > SHOWN_ROWS:
        context["rows"] = rows[:SHOWN_ROWS]
        context["rows_hidden"] = len(rows) - SHOWN_ROWS
    context.setdefault("can_post", has_perm(request.user, "finance.post"))
    context.setdefault("can_close", has_perm(request.user, "finance.close"))
    context.setdefault("export_links", export_links(request))
    return render(request, f"finance/{template}", context, status=status)


def _form_error(form: Any, exc: DomainError) -> None:
    field = (exc.field or "").split(".")[-1]
    form.add_error(field if field in form.fields else None, str(exc.message))


def _contract(request: HttpRequest, pk: int) -> Contract:
    contract = scoped(Contract.objects.select_related("customer", "owner"), request.user) \
        .filter(pk=pk).first()
    if contract is None:
        raise Http404
    return contract


def _slice_label(start: dt.date, end: dt.date) -> str:
    return f"{start:%Y-%m-%d} – {end:%Y-%m-%d}"


# --- overview and the bridge -------------------------------------------------------------------
def _bridge_rows(b: reports.Bridge) -> list[list[Any]]:
    rows: list[list[Any]] = [[_("Cash collected"), b.cash]]
    rows += [[label, amount] for label, amount in b.items()]
    rows += [[_("Explained"), b.explained], [_("Difference"), b.difference],
             [_("Receivables at the start"), b.receivable_open],
             [_("Receivables at the end"), b.receivable_close],
             [_("Contract liabilities at the start (VAT incl.)"), b.liability_open],
             [_("Contract liabilities at the end (VAT incl.)"), b.liability_close],
             [_("Refunds owed at the start"), b.refund_open],
             [_("Refunds owed at the end"), b.refund_close]]
    if b.sales_cash is not None:
        rows += [[_("Receipts less refunds on the sales pages"), b.sales_cash],
                 [_("Receipts not in the books for this period (booked in a later open month, or still being posted)"), b.timing]]
    return rows


@login_required
@domain_errors
def overview(request: HttpRequest) -> HttpResponse:
    _viewer(request)
    today = timezone.localdate()
    start = today.replace(day=1)
    figures = reports.bridge(request.user, start, today)
    return _page(request, "overview.html", {
        "bridge": figures, "start": start, "end": today,
        "waiting": bank.waiting_lines().count() if has_perm(request.user, "finance.post")
        else None,
        "next_close": selectors.next_to_close(today),
    })


@login_required
@domain_errors
def bridge(request: HttpRequest) -> HttpResponse:
    _viewer(request)
    form = SliceForm(request.GET or None, user=request.user)
    start, end, where = form.values()
    try:
        figures = reports.bridge(request.user, start, end, where)
    except ValidationFailed as exc:
        _form_error(form, exc)
        figures = None
    fmt = wants_export(request)
    if fmt and figures is not None:
        return exports.table_response(
            request, name="bridge", what="finance.bridge", fmt=fmt,
            headers=[_("Item"), _("Amount")], rows=_bridge_rows(figures))
    return _page(request, "bridge.html", {"form": form, "bridge": figures, "start": start,
                                          "end": end})


# --- revenue and margin ------------------------------------------------------------------------
@login_required
@domain_errors
def revenue(request: HttpRequest) -> HttpResponse:
    _viewer(request)
    form = SliceForm(request.GET or None, user=request.user)
    group = GroupForm(request.GET or None)
    by = group.group()
    start, end, where = form.values()
    try:
        rows = reports.revenue_by(request.user, start, end, by, where)
    except ValidationFailed as exc:
        _form_error(form, exc)
        rows = []
    fmt = wants_export(request)
    if fmt:
        return exports.table_response(
            request, name=f"revenue-by-{by}", what="finance.revenue", fmt=fmt,
            headers=[_("Group"), _("Revenue (VAT excl.)"), _("Output VAT"), _("Cost of sales"),
                     _("Gross margin"), _("Margin rate")],
            rows=([r["label"], r["revenue"], r["output_vat"], r["cost"], r["margin"],
                   r["margin_rate"]] for r in rows))
    totals = {k: sum((r[k] for r in rows), reports.ZERO)
              for k in ("revenue", "output_vat", "cost", "margin")}
    return _page(request, "revenue.html", {"form": form, "group": group, "by": by,
                                           "rows": rows, "totals": totals})


# --- balances ----------------------------------------------------------------------------------
@login_required
@domain_errors
def ageing(request: HttpRequest) -> HttpResponse:
    _viewer(request)
    form = AsOfForm(request.GET or None, user=request.user, products=False)
    _start, as_of, where = form.values()
    rows = reports.receivables_ageing(request.user, as_of, where)
    fmt = wants_export(request)
    if fmt:
        return exports.table_response(
            request, name="receivables-ageing", what="finance.ageing", fmt=fmt,
            headers=[_("Contract"), _("Customer"), _("Owner"), *AGE_NAMES, _("Total")],
            rows=([r["contract"].number, r["customer"].name, getattr(r["owner"], "name", ""),
                   *(r["buckets"][n] for n in AGE_NAMES), r["total"]] for r in rows))
    for r in rows:
        r["cells"] = [r["buckets"][n] for n in AGE_NAMES]
    totals = reports.ageing_totals(rows)
    return _page(request, "ageing.html", {
        "form": form, "rows": rows, "as_of": as_of, "buckets": AGE_NAMES,
        "totals": [totals[n] for n in AGE_NAMES], "total": totals["total"]})


@login_required
@domain_errors
def liabilities(request: HttpRequest) -> HttpResponse:
    _viewer(request)
    form = AsOfForm(request.GET or None, user=request.user, products=False)
    _start, as_of, where = form.values()
    rows = reports.contract_liabilities(request.user, as_of, where)
    fmt = wants_export(request)
    if fmt:
        return exports.table_response(
            request, name="contract-liabilities", what="finance.liabilities", fmt=fmt,
            headers=[_("Contract"), _("Customer"), _("Net"), _("Pending VAT"),
                     _("Total (VAT incl.)"), _("Refund owed")],
            rows=([r["contract"].number, r["contract"].customer.name, r["net"], r["vat"],
                   r["total"], r["refund_owed"]] for r in rows))
    return _page(request, "liabilities.html", {
        "form": form, "rows": rows, "as_of": as_of,
        "total": sum((r["total"] for r in rows), reports.ZERO)})


@login_required
@domain_errors
def invoiced_not_collected(request: HttpRequest) -> HttpResponse:
    _viewer(request)
    form = AsOfForm(request.GET or None, user=request.user, products=False)
    _start, as_of, where = form.values()
    rows = reports.invoiced_not_collected(request.user, as_of, where)
    fmt = wants_export(request)
    if fmt:
        return exports.table_response(
            request, name="invoiced-not-collected", what="finance.invoiced", fmt=fmt,
            headers=[_("Contract"), _("Customer"), _("Invoiced"), _("Collected"),
                     _("Recognised"), _("Outstanding")],
            rows=([r["contract"].number, r["contract"].customer.name, r["invoiced"],
                   r["collected"], r["recognised"], r["outstanding"]] for r in rows))
    return _page(request, "invoiced.html", {
        "form": form, "rows": rows, "as_of": as_of,
        "total": sum((r["outstanding"] for r in rows), reports.ZERO)})


# --- marketing return --------------------------------------------------------------------------
SPEND_HEADERS = {"channel": ("渠道", "channel"), "spent_on": ("日期", "date", "spent_on"),
                 "amount": ("金额", "amount"), "note": ("备注", "note"),
                 "external_id": ("编号", "external_id", "id")}


def import_spend(request: HttpRequest, upload: Any) -> int:
    """Spend rows from a CSV (channel, date, amount, note, id): every row checked first, all
    recorded in one transaction or none (the first bad row named)."""
    from weiying.pipeline.imports import read_rows

    require(request.user, "finance.post")
    rows = read_rows(upload)
    try:
        items = _spend_rows(rows)
    finally:
        rows.close()
    with transaction.atomic():
        for values, amount, day in items:
            services.record_marketing_spend(
                actor=request.user, channel=values["channel"], spent_on=day, amount=amount,
                note=values.get("note", ""), external_id=values.get("external_id") or None)
    return len(items)


def _spend_rows(rows: Any) -> list[tuple[dict[str, str], Any, Any]]:
    from weiying.finance.bank import parse_amount, parse_date

    header = [h.strip().lower() for h in next(rows, [])]
    index = {}
    for name, aliases in SPEND_HEADERS.items():
        for alias in aliases:
            if alias in header:
                index[name] = header.index(alias)
                break
    if not {"channel", "spent_on", "amount"} <= set(index):
        raise ValidationFailed(_("The file needs the columns 渠道 (channel), 日期 (date) and "
                                 "金额 (amount)."), code="bad_file", field="file")
    items = []
    for number, cells in enumerate(rows, start=2):
        if not any(cells):
            continue
        values = {k: (cells[i] if i < len(cells) else "") for k, i in index.items()}
        amount, day = parse_amount(values["amount"]), parse_date(values["spent_on"])
        if amount is None or amount <= 0 or day is None or not values["channel"]:
            raise ValidationFailed(_("Row %(row)s: give a channel, a date (YYYY-MM-DD) and an "
                                     "amount above zero.") % {"row": number},
                                   code="bad_row", field="file")
        items.append((values, amount, day))
    return items


@login_required
@domain_errors
def marketing(request: HttpRequest) -> HttpResponse:
    _viewer(request)
    form = SliceForm(request.GET or None, user=request.user, products=False)
    start, end, where = form.values()
    spend_form = SpendForm(request.POST if request.method == "POST" else None,
                           initial={"spent_on": timezone.localdate()})
    upload = BankUploadForm()
    if request.method == "POST":
        require(request.user, "finance.post")
        if "file" in request.FILES:
            try:
                count = import_spend(request, request.FILES["file"])
            except ValidationFailed as exc:
                messages.error(request, str(exc.message))
            else:
                messages.success(request, _("%(n)s spend rows recorded.") % {"n": count})
            return redirect(request.get_full_path())
        if spend_form.is_valid():
            data = spend_form.cleaned_data
            try:
                services.record_marketing_spend(
                    actor=request.user, channel=data["channel"], spent_on=data["spent_on"],
                    amount=data["amount"], note=data["note"])
            except ValidationFailed as exc:
                _form_error(spend_form, exc)
            else:
                messages.success(request, _("Marketing spend recorded."))
                return redirect(request.get_full_path())
    rows = reports.marketing_return(request.user, start, end, where)
    fmt = wants_export(request)
    if fmt:
        return exports.table_response(
            request, name="marketing-return", what="finance.marketing", fmt=fmt,
            headers=[_("Channel"), _("Spend"), _("Cash collected"), _("Cash per yuan spent"),
                     _("Revenue (VAT excl.)"), _("Revenue per yuan spent"), _("Gross margin")],
            rows=([r.channel or "—", r.spend, r.cash, r.cash_return, r.revenue,
                   r.accrual_return, r.margin] for r in rows))
    recent = MarketingSpend.objects.filter(spent_on__gte=start, spent_on__lte=end)
    if where.department is not None:
        recent = recent.filter(department__in=subtree_departments(where.department))
    if data_scope_of(request.user) != DataScope.ALL:
        # Spend carries a department, not an owner: a manager reads their subtree's only.
        recent = recent.filter(department__in=visible_departments(request.user))
    recent = recent[:50]
    return _page(request, "marketing.html", {
        "form": form, "rows": rows, "spend_form": spend_form, "upload": upload,
        "recent": recent}, status=400 if spend_form.errors else 200)


# --- vouchers ----------------------------------------------------------------------------------
VOUCHER_SORTS = {"date": ["on", "seq", "id"], "-date": ["-on", "-seq", "-id"]}


def _period(request: HttpRequest) -> tuple[int | None, int | None, str]:
    raw = request.GET.get("period", "")
    try:
        year, month = (int(x) for x in raw.split("-"))
    except ValueError:
        return None, None, ""
    if not (1 <= month <= 12):
        return None, None, ""
    return year, month, f"{year}-{month:02d}"


@login_required
@domain_errors
def voucher_list(request: HttpRequest) -> HttpResponse:
    _viewer(request)
    year, month, period = _period(request)
    source = request.GET.get("source", "")
    qs = selectors.vouchers_for(request.user, year=year, month=month, source=source)
    fmt = wants_export(request)
    if fmt:
        return exports.vouchers_response(request, qs, fmt=fmt, period=period)
    state = list_page(request, qs.select_related("contract"), sorts=VOUCHER_SORTS,
                      default="date")
    return _page(request, "voucher_list.html", {
        "state": state, "period": period, "source": source,
        "sources": selectors.voucher_sources(),
        "next_url": state.with_params(after=state.page.next_cursor),
        "first_url": state.with_params(after="")})


def _voucher(request: HttpRequest, pk: int) -> Any:
    voucher = selectors.vouchers_for(request.user).filter(pk=pk).first()
    if voucher is None:
        raise Http404
    return voucher


@login_required
@domain_errors
def voucher_detail(request: HttpRequest, pk: int) -> HttpResponse:
    _viewer(request)
    voucher = _voucher(request, pk)
    entries = list(voucher.entries.select_related("account", "customer", "department",
                                                  "owner"))
    for e in entries:
        e.aux = exports.auxiliary(e)
    reversed_by = voucher.__class__.objects.filter(reverses=voucher).first()
    return _page(request, "voucher_detail.html", {
        "voucher": voucher, "entries": entries, "reversed_by": reversed_by,
        "debit": sum((e.debit for e in entries), reports.ZERO),
        "credit": sum((e.credit for e in entries), reports.ZERO),
        "reverse_form": ReverseForm(initial={"on": timezone.localdate()}),
        "can_reverse": voucher.is_manual and reversed_by is None and voucher.reverses is None})


@login_required
@domain_errors
def voucher_new(request: HttpRequest) -> HttpResponse:
    require(request.user, "finance.post")
    if request.method == "POST":
        form = VoucherForm(request.POST)
        lines = VoucherLineFormSet(request.POST, prefix="lines")
        if form.is_valid() and lines.is_valid():
            try:
                voucher = services.post_manual_voucher(
                    actor=request.user, on=form.cleaned_data["on"],
                    summary=form.cleaned_data["summary"],
                    lines=[x for f in lines.forms if (x := f.line()) is not None])
            except ValidationFailed as exc:
                _form_error(form, exc)
            else:
                messages.success(request, _("Voucher %(number)s posted.")
                                 % {"number": voucher.number})
                return redirect("finance:voucher_detail", pk=voucher.pk)
    else:
        form = VoucherForm(initial={"on": timezone.localdate()})
        lines = VoucherLineFormSet(prefix="lines")
    return _page(request, "voucher_form.html", {"form": form, "lines": lines},
                 status=400 if form.errors else 200)


@login_required
@domain_errors
@require_POST
def voucher_reverse(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, "finance.post")
    voucher = _voucher(request, pk)
    form = ReverseForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Give the date and the reason of the reversal."))
        return redirect("finance:voucher_detail", pk=pk)
    try:
        reversal = services.reverse_voucher(actor=request.user, voucher=voucher,
                                            on=form.cleaned_data["on"],
                                            reason=form.cleaned_data["reason"])
    except (PermissionDenied, NotFound):
        raise
    except DomainError as exc:
        messages.error(request, str(exc.message))
        return redirect("finance:voucher_detail", pk=pk)
    messages.success(request, _("Voucher %(number)s reversed by %(reversal)s.")
                     % {"number": voucher.number, "reversal": reversal.number})
    return redirect("finance:voucher_detail", pk=reversal.pk)


# --- periods -----------------------------------------------------------------------------------
@login_required
@domain_errors
def period_list(request: HttpRequest) -> HttpResponse:
    _viewer(request)
    today = timezone.localdate()
    return _page(request, "periods.html", {"periods": selectors.periods(today),
                                           "next_close": selectors.next_to_close(today)})


@login_required
@domain_errors
@require_POST
def period_close(request: HttpRequest) -> HttpResponse:
    require(request.user, "finance.close")
    try:
        result = close.close_period(actor=request.user, year=int(request.POST.get("year", 0)),
                                    month=int(request.POST.get("month", 0)))
    except (ValueError, TypeError):
        messages.error(request, _("Give a month as year and month, e.g. 2026 and 3."))
    except (PermissionDenied, NotFound):
        raise
    except DomainError as exc:
        messages.error(request, str(exc.message))
    else:
        messages.success(request, _("%(period)s closed: %(n)s service obligations, revenue "
                                    "%(revenue)s.") % {"period": str(result.period),
                                                        "n": result.obligations,
                                                        "revenue": result.revenue})
    return redirect("finance:period_list")


# --- invoices and refunds ----------------------------------------------------------------------
INVOICE_SORTS = {"-issued": ["-issued_on", "-id"], "number": ["number", "id"]}


@login_required
@domain_errors
def invoice_list(request: HttpRequest) -> HttpResponse:
    _viewer(request)
    status = request.GET.get("status", "")
    if status not in InvoiceStatus.values:
        status = ""
    qs = selectors.invoices_for(request.user, status=status)
    fmt = wants_export(request)
    if fmt:
        return exports.table_response(
            request, name="invoices", what="finance.invoice", fmt=fmt,
            headers=[_("Invoice number"), _("Type"), _("Issued on"), _("Contract"),
                     _("Customer"), _("Amount (VAT incl.)"), _("Net"), _("VAT"), _("Status")],
            rows=([i.number, i.get_kind_display(), i.issued_on, i.contract.number,
                   i.contract.customer.name, i.gross, i.net, i.vat, i.get_status_display()]
                  for i in qs.order_by("-issued_on", "-id")))
    state = list_page(request, qs, sorts=INVOICE_SORTS, default="-issued")
    return _page(request, "invoice_list.html", {
        "state": state, "status": status, "statuses": InvoiceStatus.choices,
        "void_form": VoidForm(),
        "next_url": state.with_params(after=state.page.next_cursor),
        "first_url": state.with_params(after="")})


@login_required
@domain_errors
def invoice_new(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, "finance.post")
    contract = _contract(request, pk)
    if request.method == "POST":
        form = InvoiceForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                invoice = services.issue_invoice(
                    actor=request.user, contract=contract, number=data["number"],
                    kind=data["kind"], issued_on=data["issued_on"], gross=data["gross"],
                    vat_rate=data["vat_rate"])
            except (PermissionDenied, NotFound):
                raise
            except DomainError as exc:
                _form_error(form, exc)
            else:
                messages.success(request, _("Invoice %(number)s recorded.")
                                 % {"number": invoice.number})
                return redirect("pipeline:contract_detail", pk=contract.pk)
    else:
        rate = contract.lines.values_list("vat_rate", flat=True).first()
        form = InvoiceForm(initial={"issued_on": timezone.localdate(), "kind": "special",
                                    "vat_rate": str(rate) if rate is not None else "0.13",
                                    "gross": contract.total - services.invoiced_total(contract)})
    return _page(request, "invoice_form.html", {
        "form": form, "contract": contract, "figures": selectors.contract_figures(contract),
        "invoices": Invoice.objects.filter(contract=contract)},
        status=400 if form.errors else 200)


@login_required
@domain_errors
@require_POST
def invoice_void(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, "finance.post")
    invoice = selectors.invoices_for(request.user).filter(pk=pk).first()
    if invoice is None:
        raise Http404
    try:
        services.void_invoice(actor=request.user, invoice=invoice,
                              reason=request.POST.get("reason", ""))
    except (PermissionDenied, NotFound):
        raise
    except DomainError as exc:
        messages.error(request, str(exc.message))
    else:
        messages.success(request, _("Invoice %(number)s voided.") % {"number": invoice.number})
    return redirect("finance:invoice_list")


@login_required
@domain_errors
def refund_new(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, "finance.post")
    contract = _contract(request, pk)
    if request.method == "POST":
        form = RefundForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.record_refund(actor=request.user, contract=contract,
                                       amount=data["amount"], refunded_on=data["refunded_on"],
                                       reason=data["reason"])
            except (PermissionDenied, NotFound):
                raise
            except DomainError as exc:
                _form_error(form, exc)
            else:
                messages.success(request, _("Refund recorded."))
                return redirect("pipeline:contract_detail", pk=contract.pk)
    else:
        form = RefundForm(initial={"refunded_on": timezone.localdate()})
    return _page(request, "refund_form.html", {
        "form": form, "contract": contract, "figures": selectors.contract_figures(contract),
        "refunds": contract.refunds.all()}, status=400 if form.errors else 200)


# --- bank statements ---------------------------------------------------------------------------
BANK_SORTS = {"date": ["booked_on", "id"], "-date": ["-booked_on", "-id"]}


@login_required
@domain_errors
def bank_queue(request: HttpRequest) -> HttpResponse:
    # Limitation: an unmatched line has no department to scope it by, so the queue is for
    # finance.post (all-scope roles) only; see the README's known limitations.
    require(request.user, "finance.post")
    status = request.GET.get("status", BankLineStatus.UNMATCHED)
    if status not in BankLineStatus.values:
        status = BankLineStatus.UNMATCHED
    qs = BankLine.objects.filter(status=status).select_related("contract", "statement")
    state = list_page(request, qs, sorts=BANK_SORTS, default="date")
    return _page(request, "bank_queue.html", {
        "state": state, "status": status, "statuses": BankLineStatus.choices,
        "upload": BankUploadForm(), "match_form": BankMatchForm(), "ignore_form": IgnoreForm(),
        "next_url": state.with_params(after=state.page.next_cursor),
        "first_url": state.with_params(after="")})


@login_required
@domain_errors
def bank_import(request: HttpRequest) -> HttpResponse:
    require(request.user, "finance.post")
    report = None
    error = ""
    form = BankUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST":
        if not form.is_valid():
            error = _("Choose a CSV or .xlsx file to import.")
        else:
            upload = form.cleaned_data["file"]
            try:
                report = bank.import_statement(upload, actor=request.user,
                                               file_name=upload.name or "")
            except (PermissionDenied, NotFound):
                raise
            except DomainError as exc:
                error = str(exc.message)
    bad = bool(error) or (report is not None and not report.ok)
    return _page(request, "bank_import.html", {"form": form, "report": report, "error": error},
                 status=400 if bad else 200)


def _line(pk: int) -> BankLine:
    line = BankLine.objects.filter(pk=pk).first()
    if line is None:
        raise Http404
    return line


@login_required
@domain_errors
def bank_match(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, "finance.post")
    line = _line(pk)
    form = BankMatchForm(request.POST or None, initial={"contract": ""})
    contract = None
    if request.method == "POST" and form.is_valid():
        number = form.cleaned_data["contract"].strip()
        contract = scoped(Contract.objects.all(), request.user).filter(number=number).first()
        if contract is None:
            form.add_error("contract", _("There is no contract %(number)s that you may see.")
                           % {"number": number})
        else:
            instalment = None
            seq = form.cleaned_data.get("instalment")
            if seq:
                instalment = contract.instalments.filter(seq=seq).first()
                if instalment is None:
                    form.add_error("instalment", _("Contract %(number)s has no instalment "
                                                   "no. %(seq)s.")
                                   % {"number": number, "seq": seq})
            if not form.errors:
                try:
                    bank.match_line(actor=request.user, line=line, contract=contract,
                                    instalment=instalment)
                except (PermissionDenied, NotFound):
                    raise
                except DomainError as exc:
                    _form_error(form, exc)
                else:
                    messages.success(request, _("Line %(ref)s matched to %(number)s.")
                                     % {"ref": line.bank_ref, "number": number})
                    return redirect("finance:bank_queue")
    suggestions = scoped(Contract.objects.filter(customer__name=line.counterparty),
                         request.user).select_related("customer")[:10] if line.counterparty \
        else []
    return _page(request, "bank_match.html", {"line": line, "form": form,
                                              "ignore_form": IgnoreForm(),
                                              "suggestions": suggestions},
                 status=400 if form.errors else 200)


@login_required
@domain_errors
@require_POST
def bank_ignore(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, "finance.post")
    line = _line(pk)
    try:
        bank.ignore_line(actor=request.user, line=line, note=request.POST.get("note", ""))
    except (PermissionDenied, NotFound):
        raise
    except DomainError as exc:
        messages.error(request, str(exc.message))
        return redirect("finance:bank_match", pk=pk)
    messages.success(request, _("Line %(ref)s ignored.") % {"ref": line.bank_ref})
    return redirect("finance:bank_queue")
