"""Desktop pages for channels (渠道活码 and Official Account campaign codes): the scoped list
with each channel's figures, new, detail (QR code, figures, arrivals), edit, deactivate and
the QR image (SVG or PNG, rendered here: no Pillow)."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

import qrcode
import qrcode.image.pure
import qrcode.image.svg
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from weiying.core.errors import Conflict, ValidationFailed
from weiying.core.permissions import require
from weiying.core.scope import scoped, visible_employees
from weiying.customers.models import Customer
from weiying.org.choices import EmployeeStatus
from weiying.org.models import Department, Employee
from weiying.org.selectors import visible_departments
from weiying.pipeline.models import Lead
from weiying.web.errors import domain_errors
from weiying.web.exports import Column, export_links, export_response, money_text, wants_export
from weiying.web.lists import list_page, whole_list
from weiying.wechat import channels as services
from weiying.wechat import oa
from weiying.wechat.models import Channel, ChannelArrival

ARRIVALS_SHOWN = 100
# Limitation: the pickers list at most this many reps and teams; someone further down the
# list cannot be picked meanwhile (pick their team instead, which covers its reps).
PICKER_LIMIT = 300


# --- QR images -------------------------------------------------------------------------------
def qr_svg(data: str) -> bytes:
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=10,
                        border=2)
    out = io.BytesIO()
    image.save(out)
    return out.getvalue()


def qr_png(data: str) -> bytes:
    image = qrcode.make(data, image_factory=qrcode.image.pure.PyPNGImage, box_size=10,
                        border=2)
    out = io.BytesIO()
    image.save(out)
    return out.getvalue()


# --- forms -----------------------------------------------------------------------------------
class ChannelForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=Channel.Kind.choices,
                             initial=Channel.Kind.WECOM)
    name = forms.CharField(label=gettext_lazy("Name"), max_length=64)
    cost = forms.DecimalField(label=gettext_lazy("Cost (yuan)"), max_digits=14,
                              decimal_places=2, initial=Decimal("0"))
    members = forms.ModelMultipleChoiceField(
        label=gettext_lazy("Reps"), queryset=Employee.objects.none(), required=False,
        help_text=gettext_lazy("Customers who scan the code add one of these reps."))
    teams = forms.ModelMultipleChoiceField(
        label=gettext_lazy("Teams"), queryset=Department.objects.none(), required=False,
        help_text=gettext_lazy("Every rep of these teams may receive customers."))
    # Checked by the service (its message says what WeChat accepts), not by max_length here.
    state = forms.CharField(
        label=gettext_lazy("State"), required=False, max_length=200,
        help_text=gettext_lazy("How WeChat tells this channel apart: letters, digits, - and "
                               "_, at most 30 characters (64 for an Official Account code). "
                               "Leave it empty to have one generated."))
    skip_verify = forms.BooleanField(label=gettext_lazy("Add without confirmation"),
                                     required=False, initial=True)

    def __init__(self, *args: Any, user: Any, editing: Channel | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        people = (visible_employees(user).exclude(status=EmployeeStatus.LEFT)
                  .exclude(wecom_userid="").order_by("department__path", "name"))
        teams = visible_departments(user).exclude(wecom_id="").order_by("path")
        # A form field filters its queryset again on submit, so it cannot be sliced: the
        # first PICKER_LIMIT ids instead.
        self.fields["members"].queryset = people.filter(
            pk__in=list(people.values_list("pk", flat=True)[:PICKER_LIMIT]))
        self.fields["teams"].queryset = teams.filter(
            pk__in=list(teams.values_list("pk", flat=True)[:PICKER_LIMIT]))
        if editing is not None:
            del self.fields["kind"]
            del self.fields["state"]
            if editing.kind == Channel.Kind.OA:
                for name in ("members", "teams", "skip_verify"):
                    del self.fields[name]


def _form_error(form: forms.Form, exc: ValidationFailed | Conflict) -> None:
    field = exc.field if exc.field in form.fields else None
    form.add_error(field, str(exc.message))


# --- list ------------------------------------------------------------------------------------
def _rows(channels: list[Channel]) -> list[dict[str, Any]]:
    figures = services.channel_figures(channels)
    return [{"channel": c, **figures[c.pk]} for c in channels]


def _ratio(value: Any) -> str:
    return "" if value is None else str(value)


def _export_columns() -> list[Column]:
    def figure(name: str) -> Any:
        return lambda row: row[name]

    return [
        (gettext_lazy("Name"), lambda row: row["channel"].name),
        (gettext_lazy("Kind"), lambda row: row["channel"].get_kind_display()),
        (gettext_lazy("State"), lambda row: row["channel"].state),
        (gettext_lazy("In use"), lambda row: _("yes") if row["channel"].is_active else _("no")),
        (gettext_lazy("Cost"), lambda row: money_text(row["cost"])),
        (gettext_lazy("Adds"), figure("adds")),
        (gettext_lazy("Leads"), figure("leads")),
        (gettext_lazy("Opportunities"), figure("opportunities")),
        (gettext_lazy("Signed contracts"), figure("contracts")),
        (gettext_lazy("Collected"), lambda row: money_text(row["collected"])),
        (gettext_lazy("Cost per lead"), lambda row: money_text(row["cost_per_lead"])),
        (gettext_lazy("Return"), lambda row: _ratio(row["return"])),
    ]


class _Rows:
    """An export source: the channels in batches, each batch's figures in one go."""

    model = Channel

    def __init__(self, queryset: Any) -> None:
        self.queryset = queryset

    def __getitem__(self, window: slice) -> _Rows:
        return _Rows(self.queryset[window])

    def iterator(self, chunk_size: int = 500) -> Any:
        batch: list[Channel] = []
        for channel in self.queryset.iterator(chunk_size=chunk_size):
            batch.append(channel)
            if len(batch) == chunk_size:
                yield from _rows(batch)
                batch = []
        if batch:
            yield from _rows(batch)

    def count(self) -> int:
        return int(self.queryset.count())


@login_required
@domain_errors
def channel_list(request: HttpRequest) -> HttpResponse:
    require(request.user, services.PERMISSION)
    g = request.GET
    qs = services.channels_for(request.user, q=g.get("q", "")[:64], kind=g.get("kind", ""),
                               active=g.get("active", ""))
    fmt = wants_export(request)
    if fmt:
        whole = whole_list(request, qs, sorts=services.CHANNEL_SORTS,
                           default=services.DEFAULT_SORT)
        return export_response(request, _Rows(whole), _export_columns(), name="channels",
                               fmt=fmt)
    state = list_page(request, qs, sorts=services.CHANNEL_SORTS, default=services.DEFAULT_SORT)
    return render(request, "wechat/channel_list.html", {
        "state": state, "rows": _rows(list(state.page.items)), "kinds": Channel.Kind.choices,
        "sort_choices": [("-created", _("Newest first")), ("name", _("Name"))],
        "next_url": state.with_params(after=state.page.next_cursor),
        "first_url": state.with_params(),
        "export_links": export_links(request),
    })


# --- new / edit ------------------------------------------------------------------------------
@login_required
@domain_errors
def channel_new(request: HttpRequest) -> HttpResponse:
    require(request.user, services.PERMISSION)
    form = ChannelForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            if d["kind"] == Channel.Kind.OA:
                channel = oa.create_oa_channel(actor=request.user, name=d["name"],
                                               cost=d["cost"], state=d["state"])
            else:
                channel = services.create_channel(
                    actor=request.user, name=d["name"], cost=d["cost"],
                    members=d["members"], teams=d["teams"], state=d["state"],
                    skip_verify=d["skip_verify"])
        except (ValidationFailed, Conflict) as exc:
            _form_error(form, exc)
        else:
            messages.success(request, _("The channel is ready; print or share its QR code."))
            return redirect("wechat:channel_detail", pk=channel.pk)
    return render(request, "wechat/channel_form.html", {"form": form, "channel": None})


@login_required
@domain_errors
def channel_edit(request: HttpRequest, pk: int) -> HttpResponse:
    channel = services.channel_for(request.user, pk)
    require(request.user, services.PERMISSION)
    initial = {"name": channel.name, "cost": channel.cost, "skip_verify": channel.skip_verify,
               "members": list(channel.members.all()), "teams": list(channel.teams.all())}
    form = ChannelForm(request.POST or None, user=request.user, editing=channel,
                       initial=initial)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            services.update_channel(
                actor=request.user, channel=channel, name=d["name"], cost=d["cost"],
                members=d.get("members") or [], teams=d.get("teams") or [],
                skip_verify=d.get("skip_verify", channel.skip_verify))
        except (ValidationFailed, Conflict) as exc:
            _form_error(form, exc)
        else:
            messages.success(request, _("The channel is saved."))
            return redirect("wechat:channel_detail", pk=channel.pk)
    return render(request, "wechat/channel_form.html", {"form": form, "channel": channel})


@require_POST
@login_required
@domain_errors
def channel_deactivate(request: HttpRequest, pk: int) -> HttpResponse:
    channel = services.channel_for(request.user, pk)
    try:
        services.deactivate_channel(actor=request.user, channel=channel)
    except (ValidationFailed, Conflict) as exc:
        messages.error(request, str(exc.message))
    else:
        messages.success(request, _("The channel is deactivated; its code adds nobody now."))
    return redirect("wechat:channel_detail", pk=channel.pk)


# --- detail and image ------------------------------------------------------------------------
@login_required
@domain_errors
def channel_detail(request: HttpRequest, pk: int) -> HttpResponse:
    channel = services.channel_for(request.user, pk)
    require(request.user, services.PERMISSION)
    arrivals = list(
        ChannelArrival.objects.filter(channel=channel)
        .select_related("employee", "customer", "lead").order_by("-at", "-pk")[:ARRIVALS_SHOWN]
    )
    # A repeat customer's lead or record may belong to someone outside the viewer's scope:
    # those are shown as such, not named.
    leads = set(scoped(Lead.objects.filter(pk__in=[a.lead_id for a in arrivals if a.lead_id]),
                       request.user).values_list("pk", flat=True))
    customers = set(scoped(Customer.objects.filter(
        pk__in=[a.customer_id for a in arrivals if a.customer_id]), request.user
    ).values_list("pk", flat=True))
    for a in arrivals:
        a.lead_visible = a.lead_id in leads
        a.customer_visible = a.customer_id in customers
    return render(request, "wechat/channel_detail.html", {
        "channel": channel, "figures": services.channel_figures([channel])[channel.pk],
        "members": list(channel.members.all()), "teams": list(channel.teams.all()),
        "arrivals": arrivals, "arrivals_limit": ARRIVALS_SHOWN,
        # An OA code is drawn here from what it opens; a WeCom code's qr_code is the address
        # of WeCom's own picture, which the page shows through our server (channel_qr).
        "qr": (qr_svg(channel.qr_url).decode("utf-8")
               if channel.qr_url and channel.kind == Channel.Kind.OA else ""),
        "wecom_picture": channel.kind == Channel.Kind.WECOM and bool(channel.qr_url),
        "tencent_image": oa.qr_image_url(channel.qr_ticket) if channel.qr_ticket else "",
    })


@login_required
@domain_errors
def channel_qr(request: HttpRequest, pk: int) -> HttpResponse:
    channel = services.channel_for(request.user, pk)
    require(request.user, services.PERMISSION)
    if not channel.qr_url:
        raise Http404
    if channel.kind == Channel.Kind.WECOM:
        return _wecom_picture(channel, download=bool(request.GET.get("download")))
    fmt = request.GET.get("format", "svg")
    if fmt == "png":
        response = HttpResponse(qr_png(channel.qr_url), content_type="image/png")
    else:
        fmt = "svg"
        response = HttpResponse(qr_svg(channel.qr_url), content_type="image/svg+xml")
    if request.GET.get("download"):
        response["Content-Disposition"] = f'attachment; filename="channel-{channel.pk}.{fmt}"'
    response["Cache-Control"] = "private, max-age=300"
    return response


PICTURE_TYPES = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif",
                 "image/svg+xml": "svg"}


def _wecom_picture(channel: Channel, *, download: bool) -> HttpResponse:
    """WeCom's picture of a channel code, fetched by the server: it is the one a customer
    can scan (the address alone is not a contact link), and staff browsers may not reach
    Tencent's image host directly."""
    import httpx
    from django.conf import settings

    from weiying.wechat import client

    try:
        with httpx.Client(transport=client.TRANSPORT, follow_redirects=True,
                          timeout=float(settings.WECHAT["TIMEOUT"])) as http:
            answer = http.get(channel.qr_url)
    except httpx.HTTPError:
        return HttpResponse(_("WeCom's picture of this code cannot be fetched right now; "
                              "try again in a minute."), status=502, content_type="text/plain")
    kind = answer.headers.get("content-type", "").split(";")[0].strip()
    if answer.status_code != 200 or kind not in PICTURE_TYPES:
        return HttpResponse(_("WeCom did not return a picture for this code; edit the channel "
                              "to have WeCom issue it again."), status=502,
                            content_type="text/plain")
    response = HttpResponse(answer.content, content_type=kind)
    if download:
        response["Content-Disposition"] = (
            f'attachment; filename="channel-{channel.pk}.{PICTURE_TYPES[kind]}"')
    response["Cache-Control"] = "private, max-age=300"
    return response


urlpatterns = [
    path("channels/", channel_list, name="channel_list"),
    path("channels/new/", channel_new, name="channel_new"),
    path("channels/<int:pk>/", channel_detail, name="channel_detail"),
    path("channels/<int:pk>/edit/", channel_edit, name="channel_edit"),
    path("channels/<int:pk>/deactivate/", channel_deactivate, name="channel_deactivate"),
    path("channels/<int:pk>/qr/", channel_qr, name="channel_qr"),
]
