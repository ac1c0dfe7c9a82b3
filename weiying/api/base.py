"""The NinjaAPI instance: authentication, the error format and the routers of every app."""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.security import HttpBearer, django_auth

from weiying.api.tokens import authenticate
from weiying.core.errors import DomainError

logger = logging.getLogger(__name__)


class TokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = authenticate(token)
        if user is not None:
            request.user = user
        return user


api = NinjaAPI(
    title="Weiying API",
    version="1",
    description=(
        "Leads, customers, opportunities, follow-ups, contracts, collections and service "
        "tickets. Authenticate with `Authorization: Bearer wy_…` (an API token) or a browser "
        "session. Errors are `{\"code\": …, \"message\": …}`."
    ),
    auth=[TokenAuth(), django_auth],
    urls_namespace="api",
    docs_url="/docs",
    openapi_url="/openapi.json",
)


def _error(request: HttpRequest, status: int, code: str, message: str, **extra: Any) -> HttpResponse:
    return api.create_response(request, {"code": code, "message": message, **extra}, status=status)


@api.exception_handler(DomainError)
def on_domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    return api.create_response(request, exc.as_dict(), status=exc.status)


@api.exception_handler(NinjaValidationError)
def on_validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    errors = []
    for err in exc.errors:
        loc = [str(p) for p in err.get("loc", []) if p not in ("body", "payload", "query", "path")]
        field = ".".join(loc)
        errors.append({"field": field, "message": err.get("msg", "")})
    first = errors[0] if errors else {"field": "", "message": ""}
    message = _("%(field)s: %(problem)s") % {
        "field": first["field"] or _("request"), "problem": first["message"],
    }
    return _error(request, 422, "invalid", message, errors=errors)


@api.exception_handler(AuthenticationError)
def on_auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return _error(
        request, 401, "unauthenticated",
        _("Sign in, or send a valid API token as 'Authorization: Bearer …'."),
    )


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    code = {404: "not_found", 403: "forbidden", 405: "method_not_allowed"}.get(
        exc.status_code, "error"
    )
    return _error(request, exc.status_code, code, str(exc))


@api.exception_handler(Exception)
def on_unexpected_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    logger.error("API request failed", extra={"path": request.path}, exc_info=exc)
    return _error(
        request, 500, "server_error",
        _("Something went wrong on our side. Try again in a moment; if it "
          "keeps failing, tell your administrator."),
    )


def register_routers() -> None:
    """Mount each app's router. An app's api.py exposes `router`."""
    import importlib

    for prefix, module in [
        ("/org", "weiying.org.api"),
        ("/customers", "weiying.customers.api"),
        ("/leads", "weiying.pipeline.api_leads"),
        ("/opportunities", "weiying.pipeline.api_opportunities"),
        ("/followups", "weiying.pipeline.api_followups"),
        ("/contracts", "weiying.pipeline.api_contracts"),
        ("/tickets", "weiying.pipeline.api_tickets"),
        ("/finance", "weiying.finance.api"),
        ("/catalog", "weiying.catalog.api"),
        ("/delivery-orders", "weiying.catalog.api_delivery"),
        ("/hr", "weiying.org.api_hr"),
        ("/performance", "weiying.performance.api"),
        ("/commissions", "weiying.performance.api_commissions"),
        ("/reports", "weiying.reports.api"),
        ("/reports/value", "weiying.reports.api_value"),
    ]:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module:
                continue
            raise
        api.add_router(prefix, mod.router)


register_routers()
