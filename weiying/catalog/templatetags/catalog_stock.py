"""`{% availability_warnings contract_or_quote %}`: what the lines ask for that stock or
capacity cannot deliver, shown while quoting and contracting (before signing, when nothing is
reserved yet). Signing is never blocked: the warning is for the rep, before they promise."""

from __future__ import annotations

from typing import Any

from django import template

from weiying.catalog.selectors import warnings_for

register = template.Library()


@register.inclusion_tag("catalog/_availability.html")
def availability_warnings(obj: Any) -> dict[str, Any]:
    return {"warnings": warnings_for(obj)}
