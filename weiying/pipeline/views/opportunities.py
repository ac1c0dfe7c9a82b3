"""Desktop pages for opportunities: list, kanban, detail, new, stage moves and won/lost,
and the pipeline settings page."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from weiying.core.errors import DomainError, NotFound, ValidationFailed
from weiying.core.permissions import has_perm, require
from weiying.core.scope import scoped, visible_employees
from weiying.customers.models import Customer
from weiying.org.models import Department
from weiying.pipeline.choices import LostReason, OpportunityStatus, StageKind
from weiying.pipeline.models import Pipeline, Stage
from weiying.pipeline.selectors import opportunities as selectors
from weiying.pipeline.selectors.followups import followups_for
from weiying.pipeline.selectors.timeline import customer_timeline
from weiying.pipeline.services import opportunities as services
from weiying.web.errors import domain_errors
from weiying.web.exports import (
    Column,
    export_links,
    export_response,
    money_text,
    name_of,
    wants_export,
)
from weiying.web.lists import list_page, whole_list


def duration(seconds: int | None) -> str:
    """3 days 4 hours / 5 hours 20 minutes / 12 minutes."""
    seconds = int(seconds or 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return _("%(d)sd %(h)sh") % {"d": days, "h": hours}
    if hours:
        return _("%(h)sh %(m)smin") % {"h": hours, "m": minutes}
    return _("%(m)smin") % {"m": minutes}


def _back(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return default


def _pipeline_from(request: HttpRequest) -> Pipeline:
    wanted = request.GET.get("pipeline") or request.POST.get("pipeline")
    if wanted and wanted.isdigit():
        pipeline = Pipeline.objects.filter(pk=wanted).first()
        if pipeline is not None:
            return pipeline
    return services.default_pipeline()


def _teams(user: Any) -> list[Department]:
    ids = visible_employees(user).values("department_id")
    return list(Department.objects.filter(pk__in=ids).order_by("path"))


# --- list -----------------------------------------------------------------------------------
# The columns of the opportunities export (?export=csv|xlsx).
EXPORT_COLUMNS: list[Column] = [
    (gettext_lazy("Opportunity"), lambda o: o.name),
    (gettext_lazy("Customer"), lambda o: o.customer.name),
    (gettext_lazy("Pipeline"), lambda o: o.pipeline.name),
    (gettext_lazy("Stage"), lambda o: o.stage.name),
    (gettext_lazy("Status"), lambda o: o.get_status_display()),
    (gettext_lazy("Amount"), lambda o: money_text(o.amount)),
    (gettext_lazy("Expected close"), lambda o: o.expected_close),
    (gettext_lazy("Owner"), lambda o: name_of(o.owner)),
    (gettext_lazy("Lost because"), lambda o: o.get_lost_reason_display()),
    (gettext_lazy("Closed at"), lambda o: o.closed_at),
    (gettext_lazy("Last activity"), lambda o: o.last_activity_at),
    (gettext_lazy("Created at"), lambda o: o.created_at),
]


@login_required
@domain_errors
def opportunity_list(request: HttpRequest) -> HttpResponse:
    g = request.GET
    qs = selectors.filter_opportunities(
        selectors.opportunities_for(request.user),
        stage=g.get("stage", "") if g.get("stage", "").isdigit() else None,
        status=g.get("status", "") if g.get("status") in OpportunityStatus.values else "",
        owner=g.get("owner") if g.get("owner", "").isdigit() else None,
        team=g.get("team") if g.get("team", "").isdigit() else None,
        close_month=g.get("close_month", ""), q=g.get("q", "").strip(),
        pipeline=g.get("pipeline") if g.get("pipeline", "").isdigit() else None,
    )
    fmt = wants_export(request)
    if fmt:
        qs = qs.select_related("customer", "pipeline", "stage", "owner")
        return export_response(
            request, whole_list(request, qs, sorts=selectors.SORTS, default="-activity"),
            EXPORT_COLUMNS, name="opportunities", fmt=fmt,
        )
    state = list_page(request, qs, sorts=selectors.SORTS, default="-activity")
    return render(request, "pipeline/opportunity_list.html", {
        "state": state,
        "rows": state.page.items,
        "next_url": state.with_params(after=state.page.next_cursor),
        "first_url": state.with_params(after=""),
        "stages": Stage.objects.select_related("pipeline").order_by("pipeline", "order"),
        "statuses": OpportunityStatus.choices,
        "owners": visible_employees(request.user).order_by("name"),
        "can_edit": has_perm(request.user, "opportunity.edit"),
        "export_links": export_links(request),
        "sort_links": {
            column: state.with_params(
                sort=first if state.sort != first else second, after=""
            )
            for column, first, second in (("amount", "-amount", "amount"),
                                          ("close", "close", "-close"),
                                          ("activity", "-activity", "activity"))
        },
    })


# --- kanban ---------------------------------------------------------------------------------
def _board_context(request: HttpRequest, params: Any) -> dict[str, Any]:
    pipeline = _pipeline_from(request)
    owner = params.get("owner") if params.get("owner", "").isdigit() else None
    team = params.get("team") if params.get("team", "").isdigit() else None
    the_board = selectors.board(request.user, pipeline, owner=owner, team=team)
    return {
        "board": the_board,
        "pipeline": pipeline,
        "pipelines": Pipeline.objects.order_by("-is_default", "name"),
        "owners": visible_employees(request.user).order_by("name"),
        "teams": _teams(request.user),
        "owner": owner or "",
        "team": team or "",
        "open_stages": [c.stage for c in the_board.columns],
        "can_edit": has_perm(request.user, "opportunity.edit"),
        "cap": selectors.BOARD_CAP,
    }


@login_required
@domain_errors
def opportunity_board(request: HttpRequest) -> HttpResponse:
    return render(request, "pipeline/opportunity_board.html",
                  _board_context(request, request.GET))


@login_required
@require_POST
@domain_errors
def opportunity_move(request: HttpRequest, pk: int) -> HttpResponse:
    """Move a card. From the kanban (HTMX) the board's columns come back re-rendered."""
    opportunity = selectors.get_opportunity(request.user, pk)
    error = ""
    stage_id = request.POST.get("stage", "")
    stage = Stage.objects.filter(pk=stage_id).first() if stage_id.isdigit() else None
    try:
        if stage is None:
            raise ValidationFailed(_("Choose a stage."), field="stage")
        services.move_stage(actor=request.user, opportunity=opportunity, stage=stage)
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        error = str(exc.message)
    if request.headers.get("HX-Request"):
        context = _board_context(request, request.POST)
        context["error"] = error
        return render(request, "pipeline/opportunity_board_columns.html", context,
                      status=200 if not error else 422)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, _("Moved to %(stage)s.") % {"stage": stage.name})
    return redirect(_back(request, reverse("pipeline:opportunity_detail", args=[pk])))


# --- detail ---------------------------------------------------------------------------------
class LostForm(forms.Form):
    reason = forms.ChoiceField(label=gettext_lazy("Why was it lost?"),
                               choices=LostReason.choices)
    note = forms.CharField(label=gettext_lazy("Note"), required=False, max_length=255)


class WonForm(forms.Form):
    note = forms.CharField(label=gettext_lazy("Note"), required=False, max_length=255)


@login_required
@domain_errors
def opportunity_detail(request: HttpRequest, pk: int) -> HttpResponse:
    opportunity = selectors.get_opportunity(request.user, pk)
    stays = selectors.stage_history(opportunity)
    for stay in stays:
        stay.duration = duration(stay.seconds)
    return render(request, "pipeline/opportunity_detail.html", {
        "o": opportunity,
        "lines": opportunity.lines.select_related("product").order_by("pk"),
        "stays": stays,
        "followups": followups_for(request.user).filter(opportunity=opportunity)
        .order_by("-at", "-id")[:50],
        "entries": customer_timeline(request.user, opportunity.customer, limit=30),
        "open_stages": services.open_stages(opportunity.pipeline),
        "lost_form": LostForm(),
        "won_form": WonForm(),
        "can_edit": has_perm(request.user, "opportunity.edit"),
        "is_open": opportunity.status == OpportunityStatus.OPEN,
    })


def _close_view(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    opportunity = selectors.get_opportunity(request.user, pk)
    detail = reverse("pipeline:opportunity_detail", args=[pk])
    form: forms.Form = LostForm(request.POST) if action == "lost" else WonForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            messages.error(request, " ".join(errors))
        return redirect(detail)
    try:
        if action == "lost":
            services.mark_lost(actor=request.user, opportunity=opportunity,
                               reason=form.cleaned_data["reason"],
                               note=form.cleaned_data["note"])
            messages.success(request, _("Marked lost."))
        elif action == "won":
            services.mark_won(actor=request.user, opportunity=opportunity,
                              note=form.cleaned_data["note"])
            messages.success(request, _("Marked won. Congratulations!"))
        else:
            services.reopen_opportunity(actor=request.user, opportunity=opportunity)
            messages.success(request, _("Reopened."))
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        messages.error(request, str(exc.message))
    return redirect(detail)


@login_required
@require_POST
@domain_errors
def opportunity_won(request: HttpRequest, pk: int) -> HttpResponse:
    return _close_view(request, pk, "won")


@login_required
@require_POST
@domain_errors
def opportunity_lost(request: HttpRequest, pk: int) -> HttpResponse:
    return _close_view(request, pk, "lost")


@login_required
@require_POST
@domain_errors
def opportunity_reopen(request: HttpRequest, pk: int) -> HttpResponse:
    return _close_view(request, pk, "reopen")


# --- new ------------------------------------------------------------------------------------
class OpportunityForm(forms.Form):
    customer = forms.ModelChoiceField(label=gettext_lazy("Customer"),
                                      queryset=Customer.objects.none())
    name = forms.CharField(label=gettext_lazy("Name"), max_length=128)
    amount = forms.DecimalField(label=gettext_lazy("Amount (VAT incl.)"), min_value=0,
                                max_digits=18, decimal_places=2, required=False)
    expected_close = forms.DateField(label=gettext_lazy("Expected close"), required=False,
                                     widget=forms.DateInput(attrs={"type": "date"}))
    stage = forms.ModelChoiceField(label=gettext_lazy("Stage"), required=False,
                                   queryset=Stage.objects.none())

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Limitation: the customer picker lists at most 500 visible customers, most recently
        # active first; reps with more start from the customer's page (?customer=<id>).
        visible = scoped(Customer.objects.filter(merged_into__isnull=True), user)
        wanted = self.initial.get("customer") or self.data.get("customer")
        picks = list(visible.order_by("-last_activity_at", "-id").values_list("pk", flat=True)[:500])
        if wanted and str(wanted).isdigit():
            picks.append(int(wanted))
        self.fields["customer"].queryset = visible.filter(pk__in=picks).order_by("name")
        self.fields["stage"].queryset = Stage.objects.filter(
            pipeline=services.default_pipeline(), kind=StageKind.OPEN
        ).order_by("order")


@login_required
@domain_errors
def opportunity_new(request: HttpRequest) -> HttpResponse:
    require(request.user, "opportunity.edit")
    initial = {"customer": request.GET.get("customer", "")}
    if request.method == "POST":
        form = OpportunityForm(request.POST, user=request.user, initial=initial)
        if form.is_valid():
            data = form.cleaned_data
            try:
                opportunity = services.create_opportunity(
                    actor=request.user, customer=data["customer"], name=data["name"],
                    amount=data["amount"] or Decimal(0), expected_close=data["expected_close"],
                    stage=data["stage"],
                )
            except DomainError as exc:
                if isinstance(exc, NotFound):
                    raise
                form.add_error(exc.field if exc.field in form.fields else None,
                               str(exc.message))
            else:
                messages.success(request, _("Opportunity created."))
                return redirect("pipeline:opportunity_detail", opportunity.pk)
    else:
        form = OpportunityForm(user=request.user, initial=initial)
    return render(request, "pipeline/opportunity_new.html", {"form": form})


# --- pipeline settings ----------------------------------------------------------------------
@login_required
@domain_errors
def pipeline_settings(request: HttpRequest) -> HttpResponse:
    require(request.user, "settings.manage")
    if request.method == "POST":
        action = request.POST.get("action", "")
        p = request.POST
        try:
            if action == "create_pipeline":
                services.create_pipeline(actor=request.user, name=p.get("name", ""),
                                         is_default=bool(p.get("is_default")))
            elif action == "set_default":
                services.set_default_pipeline(actor=request.user, pipeline=_one(Pipeline, p,
                                                                                "pipeline"))
            elif action == "add_stage":
                services.add_stage(actor=request.user, pipeline=_one(Pipeline, p, "pipeline"),
                                   name=p.get("name", ""), probability=p.get("probability"),
                                   position=_int_or_none(p.get("position")))
            elif action == "update_stage":
                services.update_stage(actor=request.user, stage=_one(Stage, p, "stage"),
                                      name=p.get("name"), probability=p.get("probability"),
                                      position=_int_or_none(p.get("position")))
            else:
                raise ValidationFailed(_("Unknown action."))
        except DomainError as exc:
            if isinstance(exc, NotFound):
                raise
            messages.error(request, str(exc.message))
        else:
            messages.success(request, _("Saved."))
        return redirect("pipeline:pipeline_settings")
    return render(request, "pipeline/pipeline_settings.html", {
        "pipelines": selectors.pipelines_with_stages(),
    })


def _one(model: Any, data: Any, key: str) -> Any:
    value = data.get(key, "")
    obj = model.objects.filter(pk=value).first() if str(value).isdigit() else None
    if obj is None:
        raise ValidationFailed(_("That item no longer exists; reload the page."), field=key)
    return obj


def _int_or_none(value: Any) -> int | None:
    return int(value) if value and str(value).isdigit() else None


urlpatterns = [
    path("opportunities/", opportunity_list, name="opportunity_list"),
    path("opportunities/board/", opportunity_board, name="opportunity_board"),
    path("opportunities/new/", opportunity_new, name="opportunity_new"),
    path("opportunities/<int:pk>/", opportunity_detail, name="opportunity_detail"),
    path("opportunities/<int:pk>/move/", opportunity_move, name="opportunity_move"),
    path("opportunities/<int:pk>/won/", opportunity_won, name="opportunity_won"),
    path("opportunities/<int:pk>/lost/", opportunity_lost, name="opportunity_lost"),
    path("opportunities/<int:pk>/reopen/", opportunity_reopen, name="opportunity_reopen"),
    path("settings/pipelines/", pipeline_settings, name="pipeline_settings"),
]

