from __future__ import annotations

from typing import Any

from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from weiying.web.phone import is_phone


class LoginView(auth_views.LoginView):
    template_name = "web/login.html"
    redirect_authenticated_user = True

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # Inside the WeCom app the person is already known to WeCom: sign in through it at
        # once. ?password=1 keeps the form (the way back when WeCom sign-in refuses).
        agent = request.headers.get("User-Agent", "").lower()
        if ("wxwork" in agent and not request.GET.get("password")
                and not request.user.is_authenticated and _wecom_login_ready()):
            return redirect(_wecom_login_url("wechat:login", request.GET.get("next", "")))
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        if _wecom_login_ready():
            context["wecom_login_url"] = _wecom_login_url(
                "wechat:login_qr", self.request.GET.get("next", ""))
        return context


def _wecom_login_ready() -> bool:
    from weiying.wechat.login import ready

    return ready()


def _wecom_login_url(name: str, next_path: str) -> str:
    from urllib.parse import urlencode

    from django.urls import reverse

    return reverse(name) + (f"?{urlencode({'next': next_path})}" if next_path else "")


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("web:login")


@login_required
def home(request: HttpRequest) -> HttpResponse:
    if is_phone(request):
        return redirect("mobile:my_day")
    from weiying.web.dashboard import overview

    return render(request, "web/home.html", overview(request.user))


def healthz(request: HttpRequest) -> HttpResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
