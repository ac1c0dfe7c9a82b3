"""Desk pages of the roster import: upload a roster file (.xlsx or CSV), see the row-level
problems or what was applied, and download the template. The work is in
weiying.org.roster_import; these views only parse the upload and render the report."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils.translation import gettext as _

from weiying.core.errors import DomainError
from weiying.core.permissions import require
from weiying.org import roster_import
from weiying.web.errors import domain_errors

# Problems listed on the page; the page says how many more there are.
SHOWN_ERRORS = 500
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@login_required
@domain_errors
def roster_import_page(request: HttpRequest) -> HttpResponse:
    """GET: the upload form. POST: check the file; apply it only if every row is right."""
    require(request.user, "org.manage")
    error = ""
    report = None
    if request.method == "POST":
        upload = request.FILES.get("file")
        if upload is None:
            error = _("Choose a roster file (.xlsx or CSV) to import.")
        else:
            try:
                report = roster_import.import_roster(upload, actor=request.user,
                                                     file_name=upload.name or "")
            except DomainError as exc:
                if exc.status == 403:
                    raise
                error = str(exc.message)
    status = 400 if error or (report is not None and not report.ok) else 200
    return render(request, "org/roster_import.html", {
        "error": error, "report": report,
        "errors": report.errors[:SHOWN_ERRORS] if report else [],
        "headers": [aliases[:2] for aliases in roster_import.ROSTER_HEADERS.values()],
    }, status=status)


@login_required
@domain_errors
def roster_template(request: HttpRequest) -> HttpResponse:
    require(request.user, "org.manage")
    response = HttpResponse(roster_import.template_xlsx(), content_type=XLSX)
    response["Content-Disposition"] = 'attachment; filename="roster-template.xlsx"'
    return response


urlpatterns = [
    path("roster/import/", roster_import_page, name="roster_import"),
    path("roster/template.xlsx", roster_template, name="roster_template"),
]
