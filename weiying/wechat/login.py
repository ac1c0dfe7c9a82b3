"""Signing in with WeCom: inside the WeCom app (OAuth2, snsapi_base) and on a desk by
scanning a QR code with WeCom (企业微信扫码登录). Both come back to one callback, which
exchanges the single-use code for a WeCom user id (cgi-bin/auth/getuserinfo), finds the
employee by it and signs their login in.

The `state` is random, kept in the session and used once, so a callback that did not start
in this browser is refused; `next` is kept beside it and honoured only as a path of this site.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import login as auth_login
from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache

from weiying.core import audit
from weiying.org.choices import EmployeeStatus
from weiying.org.models import Employee
from weiying.wechat import client
from weiying.wechat import config as wechat_config

logger = logging.getLogger(__name__)

SESSION_KEY = "wechat_login"
CODE_TTL = 600  # WeCom codes live 5 minutes; remember used ones a little longer
# getuserinfo errcodes that mean "this code is no good": invalid, already used, expired.
SPENT_CODE = {40029, 40163, 42003}
BACKEND = "django.contrib.auth.backends.ModelBackend"

REFUSALS: dict[str, tuple[int, Any]] = {
    "not_configured": (503, _(
        "Signing in with WeCom is not set up yet. Sign in with your login name and password, "
        "or ask an administrator to set up WeCom.")),
    "bad_state": (400, _(
        "This sign-in did not start in this browser, or it was already finished. Start the "
        "sign-in again.")),
    "no_code": (400, _(
        "WeCom sent no sign-in code (the sign-in may have been cancelled). Start the sign-in "
        "again.")),
    "spent_code": (400, _(
        "This sign-in code has already been used or has expired. Start the sign-in again.")),
    "wecom_down": (502, _("WeCom did not answer. Wait a moment and start the sign-in again.")),
    "not_employee": (403, _(
        "This WeCom account is not on the employee roster. Ask an administrator to link your "
        "WeCom account to your employee record.")),
    "left": (403, _(
        "The roster shows that you have left the company, so you can no longer sign in. If "
        "this is a mistake, ask HR or an administrator.")),
    "no_login": (403, _(
        "You are on the roster but have no Weiying login yet (or it is switched off). Ask an "
        "administrator to give you one.")),
    "ambiguous": (403, _(
        "Several employees are linked to this WeCom account. Ask an administrator to correct "
        "the roster.")),
}


def ready(conf: wechat_config.WeChatConfig | None = None) -> bool:
    """Whether WeCom sign-in can start: the corp id and the app's agent id are known."""
    conf = conf or wechat_config.current()
    return bool(conf.corp_id and conf.agent_id)


def safe_next(request: HttpRequest, value: str) -> str:
    """`value` if it is a path on this site ("/m/leads/5/"), else ""."""
    value = (value or "").strip()
    if not value.startswith("/") or value.startswith("//") or value.startswith("/\\"):
        return ""
    if not url_has_allowed_host_and_scheme(value, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        return ""
    return value


def refuse(request: HttpRequest, reason: str, *, via: str = "oauth",
           userid: str = "") -> HttpResponse:
    status, message = REFUSALS[reason]
    if reason in ("not_employee", "left", "no_login", "ambiguous"):
        with transaction.atomic():
            audit.record(None, "wechat.login_refused", object_type="wechat.wecom_user",
                         object_id=userid[:64], after={"reason": reason, "via": via})
    logger.warning("WeCom sign-in refused", extra={"reason": reason, "via": via})
    again = reverse("wechat:login_qr" if via == "qr" else "wechat:login")
    return render(request, "wechat/login_refused.html", {
        "message": message, "again_url": again,
        "password_url": reverse("web:login") + "?password=1",
    }, status=status)


def _start(request: HttpRequest, via: str) -> HttpResponse:
    conf = wechat_config.current()
    if not ready(conf):
        return refuse(request, "not_configured", via=via)
    state = secrets.token_urlsafe(24)
    request.session[SESSION_KEY] = {
        "state": state, "via": via, "next": safe_next(request, request.GET.get("next", "")),
    }
    callback = request.build_absolute_uri(reverse("wechat:login_callback"))
    if via == "qr":
        query = urlencode([("login_type", "CorpApp"), ("appid", conf.corp_id),
                           ("agentid", conf.agent_id), ("redirect_uri", callback),
                           ("state", state)])
        return HttpResponseRedirect(f"{settings.WECHAT['WECOM_QR_LOGIN']}/wwlogin/sso/login?"
                                    f"{query}")
    # Tencent reads these in this order; the fragment tells WeCom to open the app's page.
    query = urlencode([("appid", conf.corp_id), ("redirect_uri", callback),
                       ("response_type", "code"), ("scope", "snsapi_base"), ("state", state),
                       ("agentid", conf.agent_id)])
    return HttpResponseRedirect(f"{settings.WECHAT['WECOM_OAUTH']}/connect/oauth2/authorize?"
                                f"{query}#wechat_redirect")


@never_cache
def login(request: HttpRequest) -> HttpResponse:
    """Inside WeCom: off to WeCom's OAuth page, which comes straight back with a code."""
    return _start(request, "oauth")


@never_cache
def login_qr(request: HttpRequest) -> HttpResponse:
    """On a desk: WeCom's QR page; the person scans it with WeCom on their phone."""
    return _start(request, "qr")


def _first_use(code: str) -> bool:
    """False when this code came before (a reload, a replayed link). WeCom refuses a used
    code too; remembering it here answers without asking."""
    key = "wechat:login-code:" + hashlib.sha256(code.encode()).hexdigest()[:40]
    return bool(cache.add(key, 1, CODE_TTL))


def _employee_for(userid: str) -> tuple[Employee | None, str]:
    """(employee, refusal reason or "")."""
    people = list(Employee.objects.filter(wecom_userid=userid).select_related("user"))
    current = [p for p in people if p.status != EmployeeStatus.LEFT]
    if not people:
        return None, "not_employee"
    if not current:
        return people[0], "left"
    if len(current) > 1:
        return None, "ambiguous"
    person = current[0]
    if person.user is None or not person.user.is_active:
        return person, "no_login"
    return person, ""


@never_cache
def login_callback(request: HttpRequest) -> HttpResponse:
    pending = request.session.pop(SESSION_KEY, None) or {}
    via = pending.get("via", "oauth")
    state = request.GET.get("state", "")
    if not pending.get("state") or not state or not constant_time_compare(state,
                                                                           pending["state"]):
        return refuse(request, "bad_state", via=via)
    code = request.GET.get("code", "").strip()
    if not code or len(code) > 512:
        return refuse(request, "no_code", via=via)
    if not _first_use(code):
        return refuse(request, "spent_code", via=via)
    try:
        with client.WeCom() as wecom:
            answer = wecom.get("/cgi-bin/auth/getuserinfo", code=code)
    except client.NotConfigured:
        return refuse(request, "not_configured", via=via)
    except client.ApiError as exc:
        if exc.code in SPENT_CODE:
            return refuse(request, "spent_code", via=via)
        logger.warning("WeCom getuserinfo failed", extra={"errcode": exc.code})
        return refuse(request, "wecom_down", via=via)
    except client.WeChatError:
        logger.warning("WeCom getuserinfo failed", exc_info=True)
        return refuse(request, "wecom_down", via=via)

    # Members come back with a userid (older answers: UserId); anyone else with an openid.
    userid = str(answer.get("userid") or answer.get("UserId") or "")
    if not userid:
        return refuse(request, "not_employee", via=via,
                      userid=str(answer.get("openid") or answer.get("OpenId") or ""))
    employee, reason = _employee_for(userid)
    if reason:
        return refuse(request, reason, via=via, userid=userid)
    assert employee is not None and employee.user is not None
    with transaction.atomic():
        auth_login(request, employee.user, backend=BACKEND)
        audit.record(employee.user, "wechat.login", employee,
                     after={"via": via, "wecom_userid": userid})
    logger.info("WeCom sign-in", extra={"employee_id": employee.pk, "via": via})
    default = reverse("mobile:my_day") if via == "oauth" else reverse("web:home")
    return HttpResponseRedirect(pending.get("next") or default)
