"""Upload a CSV or .xlsx file of leads or customers and see what happened.

The report (counts and listed errors) is kept as JSON under DATA_DIR/imports/, readable only
by the person who ran the import; the error list downloads as CSV.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _

from weiying.core.errors import DomainError
from weiying.core.permissions import require
from weiying.pipeline.imports import IMPORTERS, ImportReport
from weiying.web.errors import domain_errors

_TOKEN = re.compile(r"^[0-9a-f]{32}$")
# Limitation: the web page imports while the browser waits; files of hundreds of thousands
# of rows belong to `weiying import` (same engine) so no proxy timeout cuts them off.


def _report_path(token: str) -> Path:
    return Path(settings.DATA_DIR) / "imports" / f"{token}.json"


def save_report(report: ImportReport, user: Any) -> str:
    folder = Path(settings.DATA_DIR) / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    data = {"user_id": user.pk, **report.as_dict()}
    _report_path(report.import_id).write_text(json.dumps(data, ensure_ascii=False), "utf-8")
    return report.import_id


def load_report(token: str, user: Any) -> ImportReport:
    if not _TOKEN.match(token or ""):
        raise Http404
    file = _report_path(token)
    if not file.exists():
        raise Http404
    data = json.loads(file.read_text("utf-8"))
    if data.get("user_id") != user.pk:
        raise Http404
    return ImportReport.from_dict(data)


@login_required
@domain_errors
def import_upload(request: HttpRequest) -> HttpResponse:
    require(request.user, "import")
    error = ""
    kind = request.POST.get("kind") or request.GET.get("kind") or "leads"
    if kind not in IMPORTERS:
        kind = "leads"
    if request.method == "POST":
        upload = request.FILES.get("file")
        if upload is None:
            error = _("Choose a CSV or .xlsx file to import.")
        else:
            try:
                report = IMPORTERS[kind](upload, actor=request.user,
                                         valid_only=request.POST.get("valid_only") == "on",
                                         file_name=upload.name or "")
            except DomainError as exc:
                if exc.status == 403:
                    raise
                error = str(exc.message)
            else:
                return redirect("pipeline:import_result", token=save_report(report, request.user))
    return render(request, "pipeline/import_upload.html",
                  {"error": error, "kind": kind, "kinds": IMPORTERS},
                  status=400 if error else 200)


@login_required
@domain_errors
def import_result(request: HttpRequest, token: str) -> HttpResponse:
    report = load_report(token, request.user)
    if request.GET.get("download") == "errors":
        response = HttpResponse(
            "\ufeff" + report.errors_csv(), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="import-{token[:8]}-errors.csv"'
        return response
    return render(request, "pipeline/import_result.html",
                  {"report": report, "errors": report.errors[:500], "token": token})


urlpatterns = [
    path("imports/", import_upload, name="import_upload"),
    path("imports/<str:token>/", import_result, name="import_result"),
]
