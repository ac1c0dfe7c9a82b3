"""The analysis desk's front page: the reports the viewer may open."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

from weiying.core.permissions import require
from weiying.web.errors import domain_errors

# (url name, title, what it answers); an entry whose page is not there is left out.
REPORTS = [
    ("reports:dashboard", _("Dashboard"), _("The figures of your role at a glance")),
    ("reports:funnel", _("Funnel"), _("Conversion and drop-off by stage, time in stage, "
                                      "win and loss reasons")),
    ("reports:forecast", _("Forecast"), _("Weighted pipeline, commit and best case by close "
                                          "month; accuracy against what closed")),
    ("reports:channels", _("Channel economics"), _("From channel to leads, deals and cash: "
                                                   "cost per lead, acquisition cost, return")),
    ("reports:customer_value", _("Customer value"), _("RFM segments, repurchase cohorts, "
                                                      "lifetime value, churn risk, upsell")),
    ("reports:activity", _("Activity"), _("Follow-ups per rep and day, response times, "
                                          "neglected customers")),
    ("reports:scoring", _("Predictive scores"), _("Win probability of leads and repurchase "
                                                  "propensity, with their measured accuracy")),
    ("reports:schedule_list", _("Scheduled reports"), _("Daily and weekly reports pushed to "
                                                        "WeCom")),
]


@login_required
@domain_errors
def index(request: HttpRequest) -> HttpResponse:
    require(request.user, "reports.view")
    entries = []
    for name, title, blurb in REPORTS:
        try:
            entries.append({"url": reverse(name), "title": title, "blurb": blurb})
        except NoReverseMatch:
            continue
    return render(request, "reports/index.html", {"entries": entries})
