"""`{% finance_contract_block contract %}`: the contract page's finance block (invoiced,
recognised, collected, contract liability; links to the invoice and refund forms). The
pipeline's template loads this library and knows nothing else of the finance layer; the
block renders nothing for a viewer without finance.view."""

from __future__ import annotations

from typing import Any

from django import template

from weiying.core.permissions import has_perm
from weiying.finance.selectors import contract_figures

register = template.Library()


@register.inclusion_tag("finance/_contract_block.html", takes_context=True)
def finance_contract_block(context: template.Context, contract: Any) -> dict[str, Any]:
    request = context.get("request")
    if request is None or not has_perm(request.user, "finance.view"):
        return {"show": False}
    return {"show": True, "contract": contract, "figures": contract_figures(contract),
            "can_post": has_perm(request.user, "finance.post")}
