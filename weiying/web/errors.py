"""Turn domain errors into pages: outside your scope is a 404, a refused action a message."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from weiying.core.errors import NotFound, PermissionDenied
from weiying.core.scope import scoped


def scoped_or_404(queryset: QuerySet[Any], user: Any, **lookup: Any) -> Model:
    """One row the user may see, or 404 (a row outside the scope is not acknowledged)."""
    obj = scoped(queryset, user).filter(**lookup).first()
    if obj is None:
        raise Http404
    return obj


def domain_errors(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """NotFound → 404; PermissionDenied → a 403 page that says why."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except NotFound:
            raise Http404 from None
        except PermissionDenied as exc:
            return render(request, "web/forbidden.html", {"message": exc.message}, status=403)

    return wrapper
