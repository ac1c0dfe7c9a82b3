"""The outbox desk: what the app pushed to whom, what failed, and a retry for what was given
up. Restricted to settings.manage: the message texts name customers and amounts of the whole
company, whatever the reader's data scope."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from weiying.core.errors import InvalidTransition
from weiying.core.permissions import require
from weiying.web.errors import domain_errors
from weiying.web.lists import list_page
from weiying.wechat import push
from weiying.wechat.choices import OutboxStatus
from weiying.wechat.models import OutboxMessage

SORTS = {"-created": ["-created_at", "-id"], "created": ["created_at", "id"]}


def _text(row: OutboxMessage) -> str:
    """The message as a person reads it: the card's title and lines, or the markdown."""
    import re

    body = row.content.get(row.content.get("msgtype", ""), {})
    if "title" in body:
        lines = re.findall(r"<div[^>]*>(.*?)</div>", body.get("description", ""))
        return " · ".join([body["title"], *lines]).replace("&lt;", "<").replace(
            "&gt;", ">").replace("&amp;", "&")
    return str(body.get("content", ""))


@login_required
@domain_errors
def outbox(request: HttpRequest) -> HttpResponse:
    require(request.user, "settings.manage")
    qs = OutboxMessage.objects.select_related("employee")
    status = request.GET.get("status", "")
    if status in OutboxStatus.values:
        qs = qs.filter(status=status)
    kind = request.GET.get("kind", "")[:48]
    if kind:
        qs = qs.filter(kind=kind)
    state = list_page(request, qs, sorts=SORTS, default="-created")
    kinds = sorted(OutboxMessage.objects.values_list("kind", flat=True).distinct())
    return render(request, "wechat/outbox.html", {
        "state": state, "rows": [(row, _text(row)) for row in state.page.items],
        "statuses": OutboxStatus.choices, "kinds": kinds,
        "next_url": state.with_params(after=state.page.next_cursor),
        "first_url": state.with_params(),
    })


@require_POST
@login_required
@domain_errors
def outbox_retry(request: HttpRequest) -> HttpResponse:
    require(request.user, "settings.manage")
    pk = request.POST.get("message", "")
    row = OutboxMessage.objects.filter(pk=int(pk)).first() if pk.isdigit() else None
    if row is None:
        raise Http404
    try:
        push.retry_message(actor=request.user, message=row)
    except InvalidTransition as exc:
        messages.error(request, str(exc.message))
    else:
        messages.success(request, _("The message is queued again."))
    back = request.POST.get("back", "")
    here = reverse("wechat:outbox")
    return redirect(back if back.startswith(here) and "//" not in back else here)
