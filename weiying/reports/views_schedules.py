"""The scheduled reports page (/reports/schedules/): the schedules the viewer may see, a form
to add one, and pause / resume / delete. Needs reports.view; every rule is in
weiying.reports.schedules."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from weiying.core.errors import NotFound, ValidationFailed
from weiying.core.permissions import has_perm, require
from weiying.core.scope import visible_employees
from weiying.org.models import Department, Employee
from weiying.reports import schedules
from weiying.reports.models import ScheduleFrequency
from weiying.web.errors import domain_errors

PICKER_CAP = 500


class ScheduleForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=64)
    report = forms.ChoiceField(label=gettext_lazy("Send"))
    recipient = forms.ChoiceField(label=gettext_lazy("To"), required=False)
    recipient_level = forms.ChoiceField(label=gettext_lazy("Or every head of level"),
                                        required=False)
    frequency = forms.ChoiceField(label=gettext_lazy("How often"),
                                  choices=ScheduleFrequency.choices)
    weekday = forms.ChoiceField(label=gettext_lazy("Weekday (weekly)"), required=False)
    hour = forms.ChoiceField(label=gettext_lazy("Hour (Beijing time)"),
                             choices=[(str(h), f"{h:02d}:00") for h in range(24)], initial="9")

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["report"].choices = [(k, v[0]) for k, v in schedules.REPORTS.items()]
        people = visible_employees(user).exclude(status="left").order_by("name", "pk")
        self.fields["recipient"].choices = [("", "—")] + [
            (str(e.pk), f"{e.name} ({e.number})") for e in people[:PICKER_CAP]]
        if has_perm(user, "settings.manage"):
            heads = Department.objects.filter(manager__isnull=False).values("manager_id")
            levels = sorted(set(Employee.objects.filter(pk__in=heads).exclude(level="")
                                .values_list("level", flat=True)))
            self.fields["recipient_level"].choices = [("", "—")] + [(v, v) for v in levels]
        else:
            del self.fields["recipient_level"]
        self.fields["weekday"].choices = [("", "—")] + [
            (str(i), name) for i, name in enumerate(schedules.WEEKDAYS)]


def _describe(s: Any) -> dict[str, Any]:
    when = (_("daily at %(hour)02d:00") % {"hour": s.hour}
            if s.frequency == ScheduleFrequency.DAILY else
            _("every %(day)s at %(hour)02d:00") % {"day": schedules.WEEKDAYS[s.weekday or 0],
                                                   "hour": s.hour})
    to = s.recipient.name if s.recipient_id else _("every head of level %(level)s") % {
        "level": s.recipient_level}
    return {"row": s, "when": when, "to": to,
            "what": schedules.REPORTS.get(s.report, (s.report, ""))[0]}


@login_required
@domain_errors
def schedule_list(request: HttpRequest) -> HttpResponse:
    require(request.user, "reports.view")
    status = 200
    if request.method == "POST":
        form = ScheduleForm(request.POST, user=request.user)
        if form.is_valid():
            try:
                schedules.save_schedule(actor=request.user, data=form.cleaned_data)
            except (ValidationFailed, NotFound) as exc:
                field = exc.field if exc.field in form.fields else None
                form.add_error(field, str(exc.message))
            else:
                messages.success(request, _("The schedule is saved."))
                return redirect("reports:schedule_list")
        status = 400
    else:
        form = ScheduleForm(user=request.user)
    rows = [_describe(s) for s in schedules.schedules_for(request.user)]
    return render(request, "reports/schedule_list.html", {"form": form, "rows": rows},
                  status=status)


@login_required
@require_POST
@domain_errors
def schedule_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    if action == "pause":
        schedules.set_active(actor=request.user, schedule=pk, active=False)
        messages.success(request, _("The schedule is paused."))
    elif action == "resume":
        schedules.set_active(actor=request.user, schedule=pk, active=True)
        messages.success(request, _("The schedule is running again."))
    elif action == "delete":
        schedules.delete_schedule(actor=request.user, schedule=pk)
        messages.success(request, _("The schedule is deleted."))
    else:
        raise NotFound()
    return redirect("reports:schedule_list")


urlpatterns: list[Any] = [
    path("schedules/", schedule_list, name="schedule_list"),
    path("schedules/<int:pk>/<slug:action>/", schedule_action, name="schedule_action"),
]
