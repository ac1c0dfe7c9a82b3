"""What the report pages share: the filter form (period, department, rep, source, pipeline),
the chart spec read by static/reports/charts.js, and the per-table export links."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from weiying.core.permissions import has_perm
from weiying.core.scope import visible_employees
from weiying.customers.choices import Source
from weiying.org.selectors import visible_departments
from weiying.pipeline.models import Pipeline
from weiying.reports.filters import NO_SOURCE

DATE = {"widget": forms.DateInput(attrs={"type": "date"})}
# Limitation: the pickers list at most this many departments and people (by path, by name);
# in a larger scope the one wanted is reached through ?department= / ?owner= (links from
# the team breakdown do this), and a chosen one is always listed.
PICKER_CAP = 500


class FilterForm(forms.Form):
    """The pickers of a report page. It only renders and pre-fills: the query string is
    parsed and checked by weiying.reports.filters.parse."""

    start = forms.DateField(label=_("From"), required=False, **DATE)
    end = forms.DateField(label=_("To"), required=False, **DATE)
    department = forms.ChoiceField(label=_("Department"), required=False)
    owner = forms.ChoiceField(label=_("Rep"), required=False)
    source = forms.ChoiceField(label=_("Lead source"), required=False)
    pipeline = forms.ChoiceField(label=_("Pipeline"), required=False)

    def __init__(self, data: Any, *, user: Any, period: bool = True, source: bool = True,
                 pipeline: bool = True, owner: bool = True) -> None:
        super().__init__(data)
        wanted_dept = str(data.get("department") or "")
        depts = list(visible_departments(user).order_by("path")
                     .values_list("pk", "name", "path")[:PICKER_CAP])
        if wanted_dept.isdigit() and int(wanted_dept) not in {d[0] for d in depts}:
            depts += list(visible_departments(user).filter(pk=int(wanted_dept))
                          .values_list("pk", "name", "path"))
        base = min((len(d[2]) for d in depts), default=0)
        self.fields["department"].choices = [("", _("Whole scope"))] + [
            (str(pk), "\u3000" * ((len(path) - base) // 8) + name) for pk, name, path in depts]
        if owner:
            wanted = str(data.get("owner") or "")
            people = list(visible_employees(user).order_by("name", "pk")
                          .values_list("pk", "name")[:PICKER_CAP])
            if wanted.isdigit() and int(wanted) not in {p[0] for p in people}:
                people += list(visible_employees(user).filter(pk=int(wanted))
                               .values_list("pk", "name"))
            self.fields["owner"].choices = [("", _("Anyone"))] + [
                (str(pk), name) for pk, name in people]
        else:
            del self.fields["owner"]
        if source:
            self.fields["source"].choices = [("", _("Any source")), *Source.choices,
                                             (NO_SOURCE, _("No lead (direct)"))]
        else:
            del self.fields["source"]
        if pipeline:
            self.fields["pipeline"].choices = [
                (str(p.pk), p.name) for p in Pipeline.objects.order_by("-is_default", "name")]
        else:
            del self.fields["pipeline"]
        if not period:
            del self.fields["start"]
            del self.fields["end"]

    def prefill(self, **values: Any) -> None:
        """Show the values in effect (defaults included) in the pickers."""
        # The form is bound (to the query string), so a default shows only through its data.
        data = self.data.copy()
        for name, value in values.items():
            if name in self.fields and not data.get(name) and value not in (None, ""):
                data[name] = value.isoformat() if hasattr(value, "isoformat") else str(value)
        self.data = data


def table_links(request: HttpRequest, table: str) -> dict[str, str]:
    """CSV / Excel links of one table of the page (empty without the export permission)."""
    if not has_perm(request.user, "export"):
        return {}
    kept = {k: v for k, v in request.GET.items() if k not in ("export", "table", "after") and v}
    return {fmt: "?" + urlencode({**kept, "table": table, "export": fmt})
            for fmt in ("csv", "xlsx")}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)  # a chart's value: display only, never summed again
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def chart(kind: str, categories: list[Any], series: list[tuple[Any, list[Any]]],
          title: Any = "") -> dict[str, Any]:
    """The spec charts.js draws: {type: bar|line|funnel|pie, title, categories,
    series: [{name, data}]}."""
    return {"type": kind, "title": str(title), "categories": [str(c) for c in categories],
            "series": [{"name": str(name), "data": [_plain(v) for v in data]}
                       for name, data in series]}


def drill_query(base: dict[str, str], **params: Any) -> str:
    return "?" + urlencode({**base, **{k: v for k, v in params.items() if v not in (None, "")}})


def pct(value: Decimal | None) -> str:
    """A fraction as a percentage with two decimals ("66.67%"), "—" for none."""
    if value is None:
        return "—"
    return f"{(value * 100).quantize(Decimal('0.01'))}%"


def signed_pct(value: Decimal | None) -> str:
    """A change of a rate in percentage points ("+12.50 pp"), "—" for none."""
    if value is None:
        return "—"
    points = (value * 100).quantize(Decimal("0.01"))
    return f"{'+' if points > 0 else ''}{points} pp"


def signed(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, Decimal):
        from weiying.core.money import format_cny

        return ("+" if value > 0 else "") + format_cny(value)
    return f"{'+' if value > 0 else ''}{value}"
