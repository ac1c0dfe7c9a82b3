"""Data-scope matrix over every API operation: list, search, detail, action, create and
aggregate, for rep A, rep B (other branch), A's manager, the east director, finance and admin.

Every operation in the OpenAPI schema must be listed in API_ROUTES; a new operation fails
`test_every_api_operation_is_in_the_matrix` until it is added here with its kind.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.scope.conftest import VISIBLE, World, markers_in
from tests.scope.matrix import (
    _body_text,
    action,
    check_action,
    check_create,
    check_detail,
    check_list,
    check_no_markers,
    create,
    detail,
    fill_path,
    lst,
    meta,
    org,
)

pytestmark = pytest.mark.django_db

Q = ({}, {"q": "MK"})  # every list with search: once plain, once searching for every marker
ACT = {"reason": "matrix", "signed_on": "$today", "delivered_on": "$today",
       "accepted_on": "$today", "completed_on": "$today"}


def _duplicate_probes(world: World, persona: str) -> list[dict[str, Any]]:
    """Ask the duplicate check about every customer by name and by phone."""
    out = []
    for _code, customer in world.records_of("customer"):
        out += [{"name": customer.name}, {"phone": customer.phone}]
    return out


API_ROUTES: dict[str, dict[str, Any]] = {
    # --- org: the company's structure, not business rows ---
    "GET /api/org/me": org("the caller's own login, role and permissions"),
    "GET /api/org/departments": org("the department tree; departments carry no customer data"),
    "POST /api/org/departments": org("needs org.manage; writes a department, no business row"),
    "GET /api/org/employees": org("people the caller may see (visible_employees); the "
                                  "employee detail below checks that scope"),
    "POST /api/org/employees": org("needs org.manage; writes an employee"),
    "GET /api/org/employees/{employee_id}": detail("employee"),
    "PATCH /api/org/employees/{employee_id}": action("employee", {"name": "矩阵改名"}),
    "POST /api/org/employees/{employee_id}/transfer": action(
        "employee", lambda w, p: {"department_id": w.company.hq.pk}),
    "POST /api/org/employees/{employee_id}/leader": action("employee", {"leader_id": None}),
    "POST /api/org/employees/{employee_id}/leave": action("employee", {"leave_date": "$today"}),
    "PATCH /api/org/departments/{department_id}": action("department", {"name": "矩阵改名"}),
    "POST /api/org/departments/{department_id}/move": action(
        "department", lambda w, p: {"parent_id": w.company.hq.pk}),
    "GET /api/org/roles": meta("the built-in roles and their permissions"),
    "PUT /api/hr/employees": org("needs org.manage; writes employees, each record checked "
                                 "against visible_departments and visible_employees "
                                 "(tests/org/test_hr_api.py)"),
    "GET /api/hr/employees/{number}/history": org(
        "404 outside visible_employees; each stretch scoped by its own department "
        "(tests/org/test_hr_api.py)"),
    "GET /api/org/tokens": org("needs api.tokens (admin); API tokens, no business rows"),
    "POST /api/org/tokens": org("needs api.tokens; issues a token"),
    "DELETE /api/org/tokens/{token_id}": org("needs api.tokens; revokes a token"),
    # --- customers and the pool ---
    "GET /api/customers": lst("cust", variants=Q),
    "POST /api/customers": create(why="makes a new customer; points at nothing but an owner "
                                      "picked from visible_employees"),
    "GET /api/customers/duplicates": lst(variants=_duplicate_probes, needs="customer.edit"),
    "GET /api/customers/pool": lst("cust", variants=Q),
    "GET /api/customers/{customer_id}": detail("customer"),
    "PATCH /api/customers/{customer_id}": action("customer", {"note": "matrix"}),
    "GET /api/customers/{customer_id}/contacts": detail("customer"),
    "POST /api/customers/{customer_id}/contacts": action("customer", {"name": "矩阵联系人"}),
    "GET /api/customers/{customer_id}/consents": detail("customer"),
    "POST /api/customers/{customer_id}/consents": action(
        "customer", {"purpose": "marketing", "granted": True, "method": "verbal"}),
    "PUT /api/customers/{customer_id}/tags": action("customer", {"names": ["矩阵"]}),
    "POST /api/customers/{customer_id}/identities": action(
        "customer", {"kind": "wechat_id", "value": "wxid_matrix"}),
    "POST /api/customers/{customer_id}/reveal-phone": action("customer"),
    "POST /api/customers/{customer_id}/merge": action(
        "customer", {"duplicate_id": "$pool_customer"}),
    "POST /api/customers/{customer_id}/claim": action("customer"),
    "POST /api/customers/{customer_id}/release": action("customer", {"reason": "matrix"}),
    "POST /api/customers/{customer_id}/assign": action("customer", {"owner_id": "$me"}),
    # --- leads ---
    "GET /api/leads/": lst("lead", variants=Q),
    "POST /api/leads/": create(why="captures a new lead; the owner comes from "
                                   "visible_employees"),
    "GET /api/leads/{lead_id}": detail("lead"),
    "POST /api/leads/{lead_id}/assign": action("lead", {"owner_id": "$me"}),
    "POST /api/leads/{lead_id}/disqualify": action("lead", {"reason": "no_need"}),
    "POST /api/leads/{lead_id}/convert": action("lead", {}),
    "POST /api/leads/import": create(why="a file upload; rows name owners by employee number "
                                         "and no existing record"),
    # --- opportunities ---
    "GET /api/opportunities": lst("oppo", variants=Q),
    "POST /api/opportunities": create("customer", {"customer_id": "$ref", "name": "矩阵商机"}),
    "GET /api/opportunities/pipelines": meta("pipelines and stages: configuration"),
    "GET /api/opportunities/{opportunity_id}": detail("opportunity"),
    "POST /api/opportunities/{opportunity_id}/move": action("opportunity", {"stage_id": "$stage"}),
    "POST /api/opportunities/{opportunity_id}/won": action("opportunity", {}),
    "POST /api/opportunities/{opportunity_id}/lost": action("opportunity", {"reason": "price"}),
    "POST /api/opportunities/{opportunity_id}/reopen": action("opportunity"),
    # --- follow-ups ---
    "GET /api/followups": lst("foll", variants=({}, {"due": "true"})),
    "POST /api/followups": create("customer", {"customer_id": "$ref", "kind": "call",
                                               "note": "矩阵跟进"}),
    "GET /api/followups/due": lst("foll", variants=({}, {"mine": "false"},
                                                     {"mine": "false", "within_hours": 48})),
    # --- contracts, quotes, collections ---
    "GET /api/contracts": lst("ctrt", variants=({}, {"status": "signed"})),
    "POST /api/contracts": create("customer", {
        "customer_id": "$ref", "title": "矩阵合同",
        "lines": [{"product_id": "$product", "quantity": "1"}]}),
    "GET /api/contracts/products": meta("the product catalogue, the same for everyone"),
    # --- the catalogue: company-wide reference data; the customer's prices are scoped ---
    "GET /api/catalog/products": meta("the product catalogue, the same for everyone"),
    "GET /api/catalog/products/{product_id}": meta("one product with its SKUs, components, "
                                                   "stock and capacity: reference data"),
    "GET /api/catalog/availability": meta("free stock or capacity of a product: no rows"),
    "GET /api/catalog/price-lists": meta("price lists: reference data, no customer named"),
    "GET /api/catalog/price-lists/{price_list_id}": meta("one price list and its prices"),
    "GET /api/catalog/customers/{customer_id}/prices": detail("customer"),
    "GET /api/catalog/stock": meta("stock levels per warehouse: reference data"),
    "POST /api/catalog/stock": org("needs catalog.manage; an ERP/WMS count or receipt of "
                                   "goods, no business row"),
    "GET /api/contracts/receivables": lst("ctrt", "cust", variants=({}, {"overdue": "true"})),
    "GET /api/contracts/quotes": lst("quot"),
    "POST /api/contracts/quotes": create("customer", {
        "customer_id": "$ref", "lines": [{"product_id": "$product", "quantity": "1"}]}),
    "GET /api/contracts/quotes/{quote_id}": detail("quote"),
    "POST /api/contracts/quotes/{quote_id}/convert": action("quote", {}),
    "POST /api/contracts/quotes/{quote_id}/send": action("quote"),
    "POST /api/contracts/quotes/{quote_id}/accept": action("quote"),
    "POST /api/contracts/quotes/{quote_id}/reject": action("quote"),
    "GET /api/contracts/{contract_id}": detail("contract"),
    "PATCH /api/contracts/{contract_id}": action("contract", {"title": "matrix"}),
    "POST /api/contracts/{contract_id}/submit": action("contract", ACT),
    "POST /api/contracts/{contract_id}/approve": action("contract", ACT),
    "POST /api/contracts/{contract_id}/reject": action("contract", ACT),
    "POST /api/contracts/{contract_id}/sign": action("contract", ACT),
    "POST /api/contracts/{contract_id}/deliver": action("contract", ACT),
    "POST /api/contracts/{contract_id}/accept": action("contract", ACT),
    "POST /api/contracts/{contract_id}/complete": action("contract", ACT),
    "POST /api/contracts/{contract_id}/cancel": action("contract", ACT),
    "PUT /api/contracts/{contract_id}/instalments": action(
        "contract", {"plan": [{"due_on": "$today", "amount": "1.00"}]}),
    "GET /api/contracts/{contract_id}/receipts": detail("contract"),
    "POST /api/contracts/{contract_id}/receipts": action(
        "contract", {"amount": "1.00", "received_on": "$today", "method": "bank"}),
    # --- delivery orders (an ERP/WMS names its orders by its own id: the world's orders
    # carry their pk as that id) ---
    "GET /api/delivery-orders": lst("dlvo", variants=({}, {"q": "MK"}, {"late": "true"},
                                                      {"status": "planned"})),
    "POST /api/delivery-orders": create("contract", {"contract_id": "$ref"}),
    "GET /api/delivery-orders/{order_id}": detail("deliveryorder"),
    "GET /api/delivery-orders/by-external/{external_id}": detail("deliveryorder"),
    "PUT /api/delivery-orders/by-external/{external_id}": action(
        "deliveryorder", {"status": "shipped", "shipped_on": "$today"}),
    # --- finance: figures through the reports' data scope (finance.view; reps get 403) ---
    "GET /api/finance/bridge": lst(needs="finance.view"),
    "GET /api/finance/revenue": lst(variants=({}, {"by": "contract"}, {"by": "customer"},
                                              {"by": "owner"}), needs="finance.view"),
    "GET /api/finance/ageing": lst(needs="finance.view"),
    "GET /api/finance/vouchers": lst(needs="finance.view"),
    "POST /api/finance/bank-lines": create(why="a bank connector's statement lines (needs "
                                               "finance.post); they name no record, and "
                                               "matching goes through record_receipt's scope"),
    # --- reports: channel economics and customer value (reports.view) ---
    "GET /api/reports/value/channels": lst(needs="reports.view"),
    "GET /api/reports/value/customers/rfm": lst(needs="reports.view"),
    "GET /api/reports/value/customers/rfm/customers": lst(needs="reports.view"),
    "GET /api/reports/value/customers/cohorts": lst(needs="reports.view"),
    "GET /api/reports/value/customers/churn": lst(needs="reports.view"),
    "GET /api/reports/value/customers/upsell": lst(needs="reports.view"),
    # --- commissions: statements for a payroll system (scoped; month required) ---
    "GET /api/commissions/statements": lst(variants=({"month": "2026-03"},)),
    "GET /api/commissions/statements/{statement_id}": meta(
        "one statement: 404 outside the caller's scope (tests/performance/test_commissions.py "
        "checks every persona; the matrix world computes no statements)"),
    # --- reports: funnel, forecast, activity (reports.view; reps get 403) ---
    "GET /api/reports/funnel": lst(variants=({}, {"breakdowns": "true"}),
                                   needs="reports.view"),
    "GET /api/reports/forecast": lst(needs="reports.view"),
    "GET /api/reports/activity/followups": lst(needs="reports.view"),
    "GET /api/reports/activity/response-times": lst(needs="reports.view"),
    "GET /api/reports/activity/neglected": lst(variants=({}, {"days": 1}),
                                                needs="reports.view"),
    # --- after-sale and tickets ---
    "GET /api/tickets/aftersale/repurchase-due": lst("cust", variants=({}, {"within_days": 90})),
    "GET /api/tickets/aftersale/upsell": lst(),  # needs completed contracts: none here
    "GET /api/tickets/aftersale/customer-value": lst("cust"),
    "GET /api/tickets/": lst("tick", variants=Q),
    "POST /api/tickets/": create("customer", {"customer_id": "$ref", "title": "矩阵工单"}),
    "GET /api/tickets/{ticket_id}": detail("ticket"),
    "POST /api/tickets/{ticket_id}/start": action("ticket"),
    "POST /api/tickets/{ticket_id}/wait": action("ticket"),
    "POST /api/tickets/{ticket_id}/resolve": action("ticket", {"resolution": "matrix"}),
    "POST /api/tickets/{ticket_id}/close": action("ticket"),
    "POST /api/tickets/{ticket_id}/reopen": action("ticket", {"reason": "matrix"}),
    "POST /api/tickets/{ticket_id}/reassign": action("ticket", {"owner_id": "$me"}),
    "POST /api/tickets/{ticket_id}/priority": action("ticket", {"priority": "high"}),
}


def api_operations() -> set[str]:
    """Every operation the API publishes, as "METHOD /path"."""
    from weiying.api.base import api

    schema = api.get_openapi_schema()
    return {f"{method.upper()} {path}" for path, ops in schema["paths"].items() for method in ops}


def test_every_api_operation_is_in_the_matrix() -> None:
    operations = api_operations()
    missing = sorted(operations - set(API_ROUTES))
    stale = sorted(set(API_ROUTES) - operations)
    assert not missing, (
        "API operations missing from the data-scope matrix (add each to API_ROUTES in "
        f"tests/scope/test_matrix_api.py with its kind): {missing}")
    assert not stale, f"API_ROUTES entries that match no operation any more: {stale}"


def test_every_org_and_meta_entry_says_why() -> None:
    for route, spec in API_ROUTES.items():
        if spec["kind"] in ("org", "meta", "public") or (spec["kind"] == "create"
                                                          and not spec["ref"]):
            assert len(spec["why"]) > 10, route


def _receivable_figures(world: World) -> Any:
    def check(persona: str, response: Any, params: dict[str, Any]) -> list[str]:
        data = response.json()
        want_total = world.expected_sum(persona)
        want_collected = world.expected_sum(persona, Decimal("0.1"))
        got = (Decimal(str(data["total"])), Decimal(str(data["collected"])))
        if got != (want_total, want_collected):
            return [f"summary total/collected {got}, expected {(want_total, want_collected)} "
                    f"(owners {sorted(VISIBLE[persona])})"]
        return []

    return check


@pytest.mark.parametrize("route", sorted(API_ROUTES))
def test_api_route_keeps_to_the_scope(route: str, world: World, clients: dict[str, Any]) -> None:
    spec = API_ROUTES[route]
    method, path = route.split(" ", 1)
    kind = spec["kind"]
    if kind == "list":
        hook = _receivable_figures(world) if path == "/api/contracts/receivables" else None
        problems = check_list(world, clients, path, spec, on_response=hook)
    elif kind == "detail":
        problems = check_detail(world, clients, lambda pk: fill_path(path, pk), spec)
    elif kind == "action":
        problems = check_action(world, clients, method, lambda pk: fill_path(path, pk), spec)
    elif kind == "create":
        problems = check_create(world, clients, method, path, spec)
    elif kind in ("org", "meta") and method == "GET" and "{" not in path:
        problems = check_no_markers(world, clients, path)
    else:
        problems = []  # org writes: no business rows to leak (see "why")
    assert not problems, "\n".join([route, *problems])


def test_api_lists_are_not_vacuous_for_finance(world: World, clients: dict[str, Any]) -> None:
    """Finance sees everything: the customer list shows every customer of the world."""
    body = _body_text(clients["finance"].get("/api/customers", {"size": 200}))
    want = {f"MK{code}cust" for code, _c in world.records_of("customer")}
    assert want <= markers_in(body), sorted(want - markers_in(body))


# --- cross-references: a write on an own record (or a create) whose body points at a record
# outside the scope. Each is refused (400/404/422), writes nothing and names nothing.
def _r(world: World, code: str, kind: str) -> Any:
    return world.records[(code, kind)]


def _instalment_of(world: World, code: str) -> int:
    return _r(world, code, "ctrt").instalments.order_by("seq").first().pk


CROSSREFS: list[tuple[str, str, Any]] = [
    # (persona, operation in API_ROUTES, world -> (path id or None, body))
    ("rep_a", "POST /api/leads/{lead_id}/convert",
     lambda w: (_r(w, "repa1", "lead").pk, {"customer_id": _r(w, "repb1", "cust").pk})),
    ("manager_a", "POST /api/customers/{customer_id}/merge",
     lambda w: (_r(w, "repa1", "cust").pk, {"duplicate_id": _r(w, "repb1", "cust").pk})),
    ("manager_a", "POST /api/customers/{customer_id}/assign",
     lambda w: (_r(w, "poole", "cust").pk, {"owner_id": w.company.rep_b.pk})),
    ("manager_a", "POST /api/leads/{lead_id}/assign",
     lambda w: (_r(w, "depta", "lead").pk, {"owner_id": w.company.rep_b.pk})),
    ("rep_a", "POST /api/tickets/{ticket_id}/reassign",
     lambda w: (_r(w, "repa1", "tick").pk, {"owner_id": w.company.rep_b.pk})),
    ("manager_a", "POST /api/contracts/{contract_id}/receipts",
     lambda w: (_r(w, "repa1", "ctrt").pk, {"amount": "1.00", "received_on": w.today.isoformat(),
                                             "method": "bank",
                                             "instalment_id": _instalment_of(w, "repb1")})),
    ("rep_a", "POST /api/opportunities",
     lambda w: (None, {"customer_id": _r(w, "repa1", "cust").pk, "name": "矩阵",
                       "lead_id": _r(w, "repb1", "lead").pk})),
    ("rep_a", "POST /api/opportunities",
     lambda w: (None, {"customer_id": _r(w, "repa1", "cust").pk, "name": "矩阵",
                       "owner_id": w.company.rep_b.pk})),
    ("rep_a", "POST /api/followups",
     lambda w: (None, {"customer_id": _r(w, "repa1", "cust").pk, "kind": "call",
                       "note": "矩阵", "opportunity_id": _r(w, "repb1", "oppo").pk})),
    ("rep_a", "POST /api/followups",
     lambda w: (None, {"lead_id": _r(w, "repb1", "lead").pk, "kind": "call", "note": "矩阵"})),
    ("rep_a", "POST /api/contracts",
     lambda w: (None, {"customer_id": _r(w, "repa1", "cust").pk, "title": "矩阵",
                       "opportunity_id": _r(w, "repb1", "oppo").pk,
                       "lines": [{"product_id": w.product.pk, "quantity": "1"}]})),
    ("rep_a", "POST /api/contracts",
     lambda w: (None, {"customer_id": _r(w, "repa1", "cust").pk, "title": "矩阵",
                       "owner_id": w.company.rep_b.pk,
                       "lines": [{"product_id": w.product.pk, "quantity": "1"}]})),
    ("rep_a", "POST /api/contracts/quotes",
     lambda w: (None, {"customer_id": _r(w, "repa1", "cust").pk,
                       "opportunity_id": _r(w, "repb1", "oppo").pk,
                       "lines": [{"product_id": w.product.pk, "quantity": "1"}]})),
    ("rep_a", "POST /api/tickets/",
     lambda w: (None, {"customer_id": _r(w, "repa1", "cust").pk, "title": "矩阵",
                       "contract_id": _r(w, "repb1", "ctrt").pk})),
    ("rep_a", "POST /api/leads/",
     lambda w: (None, {"name": "矩阵线索", "phone": "13912345678",
                       "owner_id": w.company.rep_b.pk})),
]


@pytest.mark.parametrize(("persona", "route", "build"), CROSSREFS,
                         ids=[f"{p} {r} #{i}" for i, (p, r, _b) in enumerate(CROSSREFS)])
def test_a_body_pointing_outside_the_scope_is_refused(
    persona: str, route: str, build: Any, world: World, clients: dict[str, Any],
) -> None:
    from tests.scope.conftest import table_counts
    from tests.scope.matrix import _send

    assert route in API_ROUTES
    method, path = route.split(" ", 1)
    pk, body = build(world)
    url = fill_path(path, pk) if pk is not None else path
    before = table_counts()
    response = _send(clients[persona], method, url, body, form=False)
    after = table_counts()
    grew = {k: (v, after[k]) for k, v in before.items() if after[k] != v}
    assert response.status_code in (400, 404, 422), (response.status_code, response.json())
    assert not grew, f"wrote rows: {grew}"
    assert not markers_in(_body_text(response)) - world.allowed(persona)


def test_the_matrix_catches_a_scope_leak(world: World, clients: dict[str, Any],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Break the scope on purpose (everyone sees everything): the checks must say so."""
    from weiying.core import scope

    monkeypatch.setattr(scope, "data_scope_of", lambda user: "all")
    listed = check_list(world, clients, "/api/customers", API_ROUTES["GET /api/customers"])
    assert any(p.startswith("rep_a ") and "LEAK" in p and "MKrepb1cust" in p for p in listed)
    path = "/api/customers/{customer_id}"
    shown = check_detail(world, clients, lambda pk: fill_path(path, pk), API_ROUTES["GET " + path])
    assert any(p.startswith("rep_b ") and "status 200, expected 404" in p for p in shown)
    changed = check_action(world, clients, "PATCH", lambda pk: fill_path(path, pk),
                           API_ROUTES["PATCH " + path])
    assert any(p.startswith("rep_a ") and "WROTE" in p for p in changed)
    figures = check_list(world, clients, "/api/contracts/receivables",
                         API_ROUTES["GET /api/contracts/receivables"],
                         on_response=_receivable_figures(world))
    assert any(p.startswith("rep_a ") and "summary total/collected" in p for p in figures)
