"""Data-scope matrix over every HTML page (desktop and phone): lists with search, export and
filters, aggregate pages, detail pages, forms pre-filled from a record, and POST actions —
for rep A, rep B (other branch), A's manager, the east director, finance and admin.

Every URL pattern in the namespaces customers, pipeline, mobile, org, web and wechat must be listed in
PAGE_ROUTES; a new page fails `test_every_page_is_in_the_matrix` until it is added here.
(The "api" namespace is the API, covered operation by operation in test_matrix_api.py;
"admin" is Django's admin, staff-only, and i18n switches the language.)
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.scope.conftest import OWNERS, PERSONAS, POOLS, VISIBLE, World, markers_in
from tests.scope.matrix import (
    MISSING_ID,
    _body_text,
    action,
    check_action,
    check_create,
    check_detail,
    check_list,
    check_no_markers,
    check_reference,
    create,
    detail,
    form,
    lst,
    meta,
    public,
    reference,
)

pytestmark = pytest.mark.django_db

NAMESPACES = ("customers", "pipeline", "mobile", "org", "web", "wechat", "catalog",
              "finance", "performance", "reports")
LIST = ({}, {"q": "MK"}, {"export": "csv"}, {"q": "MK", "export": "csv"})
PLAIN = ({}, {"export": "csv"})


def _every(model: str, key: str) -> Any:
    """Variants naming each record of a model, in and outside the scope (?key=<id>)."""
    return lambda world, persona: [{}] + [{key: obj.pk} for _c, obj in world.records_of(model)]


def _contract_actions() -> list[str]:
    from weiying.pipeline.services.contracts import TRANSITIONS

    return list(TRANSITIONS)


CONTRACT_FORM = {"reason": "matrix", "signed_on": "$today", "delivered_on": "$today",
                 "accepted_on": "$today", "completed_on": "$today"}
DELIVERY_FORM = {"shipped_on": "$today", "delivered_on": "$today", "accepted_on": "$today",
                 "kind": "receipt", "evidence_note": "matrix", "reason": "matrix"}


TICKET_ACTIONS = {
    "start": {}, "wait": {}, "resolve": {"resolution": "matrix"}, "close": {},
    "reopen": {"reason": "matrix"}, "reassign": {"owner": "$me"}, "priority": {"priority": "high"},
}


def _product(world: World) -> int:
    return world.product.pk


def _price_list(world: World) -> int:
    from weiying.catalog.models import PriceList

    return PriceList.objects.get_or_create(name="矩阵价目表",
                                           defaults={"valid_from": world.today})[0].pk


def _sku(world: World) -> int:
    from weiying.catalog.models import Sku

    return Sku.objects.get_or_create(code="MX-1-S", defaults={"product": world.product,
                                                               "name": "矩阵规格"})[0].pk


REF = "reference data: products, price lists and stock are the company's, not owned rows"
CATALOG_ROUTES: dict[str, Any] = {
    "catalog:product_list": meta("the catalogue: " + REF),
    "catalog:product_new": meta("the product form; needs catalog.manage (403 otherwise)"),
    "catalog:product_detail": reference(_product, "a product with SKUs, bundle, stock, "
                                        "capacity and price list prices: " + REF),
    "catalog:product_edit": reference(_product, "the product form; needs catalog.manage"),
    "catalog:product_retire": reference(_product, "needs catalog.manage", method="POST"),
    "catalog:sku_add": reference(_product, "needs catalog.manage", method="POST",
                                 body={"code": "MX-SKU", "name": "矩阵"}),
    "catalog:sku_retire": reference(_sku, "needs catalog.manage", method="POST"),
    "catalog:bundle_item_set": reference(_product, "needs catalog.manage", method="POST",
                                         body={"component": "", "quantity": "1"}),
    "catalog:bundle_item_remove": reference(_product, "needs catalog.manage", method="POST"),
    "catalog:capacity_set": reference(_product, "needs catalog.manage", method="POST",
                                      body={"year": "2026", "month": "1", "capacity": "1"}),
    "catalog:pricelist_list": meta("price lists: " + REF),
    "catalog:pricelist_new": meta("the price list form; needs catalog.manage"),
    "catalog:pricelist_detail": reference(_price_list, "a price list and its prices: " + REF),
    "catalog:pricelist_edit": reference(_price_list, "the price list form; needs "
                                        "catalog.manage"),
    "catalog:pricelist_item_set": reference(_price_list, "needs catalog.manage",
                                            method="POST", body={"product": "$product",
                                                                 "price": "1.00"}),
    "catalog:pricelist_item_remove": reference(_price_list, "needs catalog.manage",
                                               method="POST", body={"product": "$product"}),
    "catalog:stock": meta("stock per warehouse and the stock ledger: " + REF),
    "catalog:warehouse_new": meta("POST only (405 on GET), catalog.manage; adds a warehouse"),
    "catalog:stock_adjust": meta("POST only (405 on GET), catalog.manage; receives or counts "
                                 "goods"),
}

# name -> one spec or a tuple of specs. An action spec may carry "slug": the second URL
# argument (contract_action/<action>, quote_action/<action>).
PAGE_ROUTES: dict[str, Any] = {
    # --- web ---
    "web:home": lst(),  # figures only, no names: checked against the scope by HOOKS below
    "web:login": public("the sign-in form; no records"),
    "web:logout": meta("POST: signs out; no records"),
    "web:healthz": public("liveness probe (SELECT 1); no records"),
    # --- customers ---
    "customers:customer_list": lst("cust", variants=LIST),
    "customers:pool": lst("cust", variants=LIST),
    "customers:customer_new": form(),
    "customers:customer_detail": detail("customer"),
    "customers:customer_edit": (
        detail("customer"),
        action("customer", {"name": "矩阵改名", "kind": "company", "level": "B",
                            "source": "other"}, form=True),
    ),
    "customers:customer_merge": (
        detail("customer"),
        action("customer", {"duplicate": "$pool_customer"}, form=True),
    ),
    "customers:customer_claim": action("customer", form=True),
    "customers:customer_release": action("customer", {"reason": "matrix"}, form=True),
    "customers:customer_assign": action("customer", {"owner": "$me"}, form=True),
    "customers:customer_reveal_phone": action("customer", form=True),
    "customers:customer_contact_add": action("customer", {"name": "矩阵联系人"}, form=True),
    "customers:customer_consent_add": action(
        "customer", {"purpose": "marketing", "granted": "1", "method": "verbal"}, form=True),
    "customers:customer_tags": action("customer", {"tags": "矩阵"}, form=True),
    # --- leads and imports ---
    "pipeline:lead_list": lst("lead", variants=(*LIST, {"status": "new"},
                                                {"status": "assigned"})),
    "pipeline:lead_new": form(needs="lead.edit"),
    "pipeline:lead_detail": detail("lead"),
    "pipeline:lead_assign": action("lead", {"owner": "$me"}, form=True),
    "pipeline:lead_disqualify": action("lead", {"reason": "no_need"}, form=True),
    "pipeline:lead_convert": (
        detail("lead", needs="lead.edit"),
        action("lead", {"create_opportunity": "on", "opportunity_name": "矩阵"}, form=True),
    ),
    "pipeline:capture_form": public("the public lead form (no login); shows no records"),
    "pipeline:import_upload": meta("the upload form; needs import; lists no records"),
    "pipeline:import_result": {"kind": "import_result"},
    # --- opportunities, kanban, follow-ups ---
    "pipeline:opportunity_list": lst("oppo", variants=(*LIST, {"status": "open"})),
    "pipeline:opportunity_board": lst("oppo"),
    "pipeline:opportunity_new": (
        form(_every("customer", "customer"), needs="opportunity.edit"),
        create("customer", {"customer": "$ref", "name": "矩阵商机"}, ok=(302,)),
    ),
    "pipeline:opportunity_detail": detail("opportunity"),
    "pipeline:opportunity_move": action("opportunity", {"stage": "$stage"}, form=True),
    "pipeline:opportunity_won": action("opportunity", {"note": "matrix"}, form=True),
    "pipeline:opportunity_lost": action("opportunity", {"reason": "price"}, form=True),
    "pipeline:opportunity_reopen": action("opportunity", form=True),
    "pipeline:pipeline_settings": meta("pipelines and stages; needs settings.manage"),
    "pipeline:followup_list": lst("foll", variants=(*PLAIN, {"due": "1"})),
    "pipeline:followup_new": (
        detail("customer", query="customer"),
        detail("lead", query="lead"),
        detail("opportunity", query="opportunity"),
        create("customer", {"customer": "$ref", "kind": "call", "note": "矩阵跟进"},
               ok=(302,)),
    ),
    # --- contracts, quotes, collections ---
    "pipeline:contract_list": lst("ctrt", variants=(*LIST, {"status": "signed"})),
    "pipeline:contract_new": form(_every("customer", "customer"), needs="contract.edit"),
    "pipeline:contract_detail": detail("contract"),
    "pipeline:contract_edit": (
        detail("contract", ok=(302,)),  # signed: "only a draft can be edited" → the contract
        action("contract", {"title": "matrix"}, form=True),
    ),
    "pipeline:contract_action": tuple(
        {**action("contract", CONTRACT_FORM, form=True), "slug": a} for a in _contract_actions()
    ),
    "pipeline:instalment_plan": (
        detail("contract"),
        action("contract", {"rows": "1", "due_on_0": "$today", "amount_0": "1.00"}, form=True),
    ),
    "pipeline:receipt_new": (
        detail("contract"),
        action("contract", {"amount": "1.00", "received_on": "$today", "method": "bank"},
               form=True),
    ),
    "pipeline:receivables": lst("ctrt", "cust", variants=(*PLAIN, {"overdue": "1"})),
    "pipeline:quote_list": lst("quot", variants=PLAIN),
    "pipeline:quote_new": form(_every("customer", "customer"), needs="contract.edit"),
    "pipeline:quote_detail": detail("quote"),
    "pipeline:quote_action": tuple(
        {**action("quote", form=True), "slug": a} for a in ("send", "accept", "reject", "convert")
    ),
    # --- tickets and after-sale ---
    "pipeline:ticket_list": lst("tick", variants=(*LIST, {"sla": "breached"})),
    "pipeline:ticket_new": (
        form(({}, {"q": "MK"})),
        detail("customer", query="customer"),
        create("customer", {"customer": "$ref", "title": "矩阵工单", "priority": "normal"},
               ok=(302,)),
    ),
    "pipeline:ticket_detail": detail("ticket"),
    "pipeline:ticket_action": tuple(
        action("ticket", {"action": name, **body}, form=True)
        for name, body in TICKET_ACTIONS.items()
    ),
    "pipeline:aftersale": lst("cust", variants=({}, {"tab": "repurchase", "within": "90"},
                                                 {"tab": "upsell"}, {"tab": "value"})),
    # --- the organisation: departments and the roster carry no business rows; the employee
    # and department pages are 404 outside visible_employees / visible_departments, and every
    # write needs org.manage (403 otherwise) ---
    "org:chart": lst(),  # head counts checked against VISIBLE_PEOPLE by HOOKS below
    "org:employee_list": lst(variants=({}, {"q": "E0"}, {"status": "active"},
                                       {"export": "csv"})),
    "org:employee_detail": detail("employee"),
    # the upload (POST) checks every row against visible_departments and visible_employees:
    # tests/org/test_roster_import.py
    "org:roster_import": form(needs="org.manage"),
    "org:roster_template": meta("needs org.manage; an empty file with the column headers"),
    "org:employee_new": (
        form(needs="org.manage"),
        create(why="needs org.manage; writes an employee, no business row"),
    ),
    "org:employee_edit": (
        detail("employee", needs="org.manage"),
        action("employee", {"name": "矩阵改名", "status": "active"}, form=True),
    ),
    "org:employee_transfer": (
        detail("employee", needs="org.manage"),
        action("employee", lambda w, p: {"department": w.company.hq.pk}, form=True),
    ),
    "org:employee_promote": (
        detail("employee", needs="org.manage"),
        action("employee", {"position": "矩阵主管", "level": "M9"}, form=True),
    ),
    "org:employee_leader": (
        detail("employee", needs="org.manage"),
        action("employee", {"leader": ""}, form=True),
    ),
    "org:employee_leave": (
        detail("employee", needs="org.manage"),
        action("employee", {"leave_date": "$today"}, form=True),
    ),
    "org:department_new": (
        form(needs="org.manage"),
        create(why="needs org.manage; writes a department, no business row"),
    ),
    "org:department_edit": (
        detail("department", needs="org.manage"),
        action("department", {"name": "矩阵改名", "kind": "team"}, form=True),
    ),
    "org:department_move": (
        detail("department", needs="org.manage"),
        action("department", lambda w, p: {"parent": w.company.hq.pk}, form=True),
    ),
    # --- WeChat: the endpoints Tencent calls, and collecting by WeChat Pay ---
    "wechat:callback_wecom": public("WeCom calls it; signed and encrypted, no session"),
    "wechat:callback_wecom_contacts": public("WeCom calls it; signed and encrypted, no session"),
    "wechat:callback_oa": public("the Official Account calls it; signed, no session"),
    "wechat:pay_notify": public("WeChat Pay posts payment notifications; signed, no session"),
    "wechat:payorder_new": action("contract", {}, form=True),
    "wechat:payorder_detail": detail("payorder"),
    "wechat:payorder_status": detail("payorder"),
    "wechat:payorder_show": detail("payorder"),
    "wechat:transfer_list": lst("cust", variants=({}, {"status": "failed"})),
    # channel codes: managers' pages (lead.assign), a channel outside the scope is a 404
    "wechat:channel_list": lst("chan", variants=({}, {"q": "MK"}, {"export": "csv"},
                                                 {"kind": "wecom", "active": "1"}),
                               needs="lead.assign"),
    "wechat:channel_new": (
        form(needs="lead.assign"),
        create(why="needs lead.assign; the reps and teams behind the code are checked against "
                   "the actor's scope (tests/wechat/test_channels.py)"),
    ),
    "wechat:channel_detail": detail("channel", needs="lead.assign"),
    "wechat:channel_qr": detail("channel", needs="lead.assign"),
    "wechat:channel_edit": (
        detail("channel", needs="lead.assign"),
        action("channel", {"name": "矩阵改名", "cost": "1"}, form=True),
    ),
    "wechat:channel_deactivate": action("channel", form=True),
    # signing in with WeCom, the JS-SDK signature and the outbox desk: no business rows
    "wechat:login": public("starts the WeCom OAuth sign-in: a redirect to Tencent; no records"),
    "wechat:login_qr": public("starts the WeCom QR sign-in: a redirect to Tencent; no records"),
    "wechat:login_callback": public("Tencent sends the person back with a one-time code; it "
                                    "signs in the employee the code names and shows no records"),
    "wechat:jssdk_config": meta("signs a page address for the WeCom JS-SDK (signed-in only); "
                                "no records"),
    "wechat:outbox": meta("the WeCom outbox desk needs settings.manage (403 otherwise): its "
                          "message texts name customers and amounts of the whole company, "
                          "whatever the reader's data scope, so only administrators read it"),
    "wechat:outbox_retry": meta("POST only (405 on GET), settings.manage; queues a message that "
                                "was given up again; no records shown"),
    # --- delivery orders (交付单): the world has a planned one per owner's contract ---
    "catalog:delivery_list": lst("dlvo", variants=lambda w, p: [
        *LIST, {"status": "planned"}, {"late": "1"},
        *({"contract": c.pk} for _code, c in w.records_of("contract"))]),
    "catalog:delivery_detail": detail("deliveryorder"),
    "catalog:delivery_action": tuple(
        {**action("deliveryorder", DELIVERY_FORM, form=True), "slug": a}
        for a in ("ship", "deliver", "accept", "cancel")
    ),
    "catalog:delivery_evidence": action("deliveryorder", form=True),  # 404 outside; no file
    "catalog:delivery_new": (
        detail("contract", ok=(200, 403)),  # the owner and operations: 200; a manager: 403
        action("contract", lambda w, p: {f"qty_{line.pk}": "0.5" for _c, c in
                                         w.records_of("contract") for line in c.lines.all()},
               form=True),
    ),
    # --- phone pages ---
    "mobile:my_day": lst("foll", "lead", "oppo", "cust", "ctrt", mine=True),
    "mobile:followup_new": (
        detail("customer", query="customer"),
        detail("lead", query="lead"),
        create("customer", {"customer": "$ref", "kind": "call", "note": "矩阵跟进"},
               ok=(302,)),
    ),
    "mobile:leads": lst("lead", variants=({}, {"show": "all"}), mine=True),
    "mobile:lead_detail": (
        detail("lead"),
        action("lead", {"action": "convert"}, form=True),
    ),
    "mobile:customers": lst("cust", variants=({}, {"q": "MK"}), mine=True),
    "mobile:customer_detail": detail("customer"),
    "mobile:customer_claim": action("customer", form=True),
    "mobile:contract_detail": detail("contract"),
    "mobile:contract_action": tuple(
        {**action("contract", CONTRACT_FORM, form=True), "slug": a} for a in _contract_actions()
    ),
    "mobile:pool": lst("cust", variants=({}, {"q": "MK"})),
    "mobile:delivery_list": lst("dlvo", variants=({}, {"late": "1"})),
    "mobile:delivery_detail": detail("deliveryorder"),
    "mobile:delivery_action": tuple(
        {**action("deliveryorder", DELIVERY_FORM, form=True), "slug": a}
        for a in ("ship", "deliver", "accept", "cancel")
    ),
}
PAGE_ROUTES.update(CATALOG_ROUTES)


# --- finance: the reports read through the data scope (finance.view; reps get 403). The world
# books no subledger (its events are not dispatched), so these check the refusals and that no
# marker leaks; the figures per scope are tested in tests/finance/test_pages.py ---
FIN_LIST = ({}, {"export": "csv"}, {"export": "xlsx"})


def _none(world: World) -> int:
    return MISSING_ID


FINANCE_ROUTES: dict[str, Any] = {
    "finance:overview": lst(needs="finance.view"),
    "finance:bridge": lst(variants=FIN_LIST, needs="finance.view"),
    "finance:revenue": lst(variants=({}, {"by": "contract"}, {"by": "customer"},
                                     {"by": "owner", "export": "csv"}), needs="finance.view"),
    "finance:ageing": lst(variants=FIN_LIST, needs="finance.view"),
    "finance:liabilities": lst(variants=FIN_LIST, needs="finance.view"),
    "finance:invoiced_not_collected": lst(variants=FIN_LIST, needs="finance.view"),
    "finance:marketing": lst(variants=FIN_LIST, needs="finance.view"),
    "finance:voucher_list": lst(variants=FIN_LIST, needs="finance.view"),
    "finance:period_list": lst(needs="finance.view"),
    "finance:invoice_list": lst(variants=FIN_LIST, needs="finance.view"),
    "finance:bank_queue": lst(variants=({}, {"status": "ignored"}), needs="finance.post"),
    "finance:voucher_new": form(needs="finance.post"),
    "finance:invoice_new": (
        detail("contract", needs="finance.post"),
        action("contract", {"number": "MX-FP-1", "kind": "ordinary", "issued_on": "$today",
                            "gross": "1.00", "vat_rate": "0.13"}, form=True),
    ),
    "finance:refund_new": (
        detail("contract", needs="finance.post"),
        action("contract", {"amount": "1.00", "refunded_on": "$today", "reason": "matrix"},
               form=True),
    ),
    "finance:voucher_detail": reference(_none, "the world books no voucher: a missing one "
                                        "shows nothing; 404 outside vouchers_for (a manager "
                                        "sees the vouchers of contracts in scope) is tested in "
                                        "tests/finance/test_pages.py"),
    "finance:voucher_reverse": reference(_none, "POST, finance.post; reverses a manual voucher "
                                         "(no customer row)", method="POST",
                                         body={"on": "$today", "reason": "matrix"}),
    "finance:invoice_void": reference(_none, "POST, finance.post; 404 outside the invoices' "
                                      "scope (the world has no invoice)", method="POST",
                                      body={"reason": "matrix"}),
    "finance:period_close": meta("POST, finance.close; closes a month, shows no records"),
    "finance:bank_import": meta("a statement upload (finance.post); lines name no record and are "
                                "matched through record_receipt's scope"),
    "finance:bank_match": reference(_none, "finance.post (all-scope roles); the contract is "
                                    "looked up in the actor's scope, then record_receipt "
                                    "checks it again"),
    "finance:bank_ignore": reference(_none, "POST, finance.post; sets a bank line aside",
                                     method="POST", body={"note": "matrix"}),
}
PAGE_ROUTES.update(FINANCE_ROUTES)

# The performance layer. Its figures are sums (no record markers); what the matrix checks is
# the status per persona and that no foreign record's name shows. The figures per scope are
# checked in tests/performance (test_achievement.py, test_targets.py, test_commissions.py).
PERFORMANCE_ROUTES: dict[str, Any] = {
    "performance:overview": lst(variants=({}, {"tab": "rankings"}, {"export": "csv"},
                                          {"tab": "rankings", "export": "csv"})),
    "performance:targets": lst(variants=PLAIN),
    "performance:kpis": lst(),
    "performance:target_set": meta("POST only, targets.manage; sets one target of a subject "
                                   "in the viewer's scope (tests/performance/test_targets.py)"),
    "performance:target_decompose": reference(_none, "POST, targets.manage; splits a target "
                                              "the viewer may see (404 otherwise: "
                                              "test_targets.py)", method="POST"),
    "performance:target_import": meta("a target file upload (targets.manage); rows naming "
                                      "people outside the importer's view are refused "
                                      "(test_target_import.py)"),
    "performance:commission_statements": lst(variants=PLAIN),
    "performance:commission_compute": meta("POST only, commission.manage; computes a month's "
                                           "statements (test_commissions.py)"),
    "performance:commission_statement": reference(_none, "a statement: 404 outside the "
                                                  "viewer's scope, checked per persona in "
                                                  "test_commissions.py"),
    "performance:commission_action": {**reference(
        _none, "POST submit/approve/reject/recompute; commission.approve within scope, never "
        "one's own (test_commissions.py)", method="POST"), "slug": "approve"},
    "performance:commission_plans": meta("commission plans are company rules, not owned rows; "
                                         "needs commission.manage"),
    "performance:commission_plan_new": meta("the plan form; needs commission.manage"),
    "performance:commission_plan_edit": reference(_none, "the plan form of one plan; needs "
                                                  "commission.manage"),
    "mobile:commission_list": lst(mine=True),
    "mobile:commission_detail": reference(_none, "a rep's own statement; anyone else's is 404 "
                                          "(test_commissions.py checks every persona)"),
    "mobile:performance_mine": lst(mine=True),
    "mobile:performance_member": detail("employee"),
    "mobile:performance_team": meta("a manager's team (403 for a rep, whose scope is their own "
                                    "records): the members of the viewer's own department "
                                    "subtree; tests/performance/test_mobile.py checks it"),
}
PAGE_ROUTES.update(PERFORMANCE_ROUTES)

# The analysis layer: every report needs reports.view (reps get 403) and reads through the
# scope; the lists and drill-downs name customers, leads and opportunities, so a leak shows.
REPORTS_ROUTES: dict[str, Any] = {
    "reports:index": lst(needs="reports.view"),
    "reports:funnel": lst(variants=PLAIN, needs="reports.view"),
    "reports:funnel_records": lst(variants=({}, {"export": "csv"}), needs="reports.view"),
    "reports:forecast": lst(variants=PLAIN, needs="reports.view"),
    "reports:activity": lst(variants=({}, {"export": "csv"}, {"days": "1"},
                                      {"days": "1", "export": "csv"}), needs="reports.view"),
    "reports:channels": lst(variants=PLAIN, needs="reports.view"),
    "reports:channel_records": lst(variants=PLAIN, needs="reports.view"),
    "reports:customer_value": lst(variants=PLAIN, needs="reports.view"),
    "reports:customer_value_list": lst(variants=PLAIN, needs="reports.view"),
    "reports:scoring": lst(),
    "reports:scoring_retrain": meta("POST only, settings.manage; queues the retraining job"),
    "reports:dashboard": lst(),
    "reports:dashboard_role": tuple(
        {**meta("one role's dashboard: a role the viewer may not take is 403, a department "
                "outside the scope 404 (tests/reports/test_dashboards.py); the rep's is "
                "reports:dashboard for a rep"), "slug": role}
        for role in ("manager", "director", "finance", "executive")),
    "reports:schedule_list": lst(needs="reports.view"),
    "reports:schedule_action": {**reference(
        _none, "POST on one schedule: the viewer's own or, for an administrator, any "
        "(tests/reports/test_schedules.py)", method="POST"), "slug": "delete"},
}
PAGE_ROUTES.update(REPORTS_ROUTES)



def _walk(patterns: list[Any], namespace: str | None = None) -> list[tuple[str, Any]]:
    found = []
    for p in patterns:
        if isinstance(p, URLResolver):
            found += _walk(p.url_patterns, p.namespace or namespace)
        elif isinstance(p, URLPattern) and p.name:
            found.append((f"{namespace}:{p.name}", p))
    return found


def page_routes() -> dict[str, Any]:
    """Every named URL pattern of the page namespaces, as "namespace:name"."""
    return {name: p for name, p in _walk(get_resolver().url_patterns)
            if name.split(":")[0] in NAMESPACES}


def test_every_page_is_in_the_matrix() -> None:
    found = set(page_routes())
    missing = sorted(found - set(PAGE_ROUTES))
    stale = sorted(set(PAGE_ROUTES) - found)
    assert not missing, (
        "Pages missing from the data-scope matrix (add each to PAGE_ROUTES in "
        f"tests/scope/test_matrix_pages.py with its kind): {missing}")
    assert not stale, f"PAGE_ROUTES entries that match no URL pattern any more: {stale}"


def test_every_org_meta_and_public_page_says_why() -> None:
    for name, specs in PAGE_ROUTES.items():
        for spec in specs if isinstance(specs, tuple) else (specs,):
            if spec["kind"] in ("org", "meta", "public", "reference"):
                assert len(spec["why"]) > 10, name


# --- figures of the aggregate pages ------------------------------------------------------------
def _home_figures(world: World) -> Any:
    """The overview's sums are over the persona's scope exactly (amounts are distinct per
    owner, so a wrong sum names the owner that leaked into it)."""

    def check(persona: str, response: Any, params: dict[str, Any]) -> list[str]:
        ctx = response.context
        owners = [c for c in OWNERS if c in VISIBLE[persona]]
        total = world.expected_sum(persona)
        want = {
            "open opportunities": (len(owners), total),
            "signed this month": (len(owners), total),
            "collected this month": world.expected_sum(persona, Decimal("0.1")),
            "overdue": world.expected_sum(persona, Decimal("0.4")),
            "shared pool": len([c for c in POOLS if c in VISIBLE[persona]]),
            "open tickets": len(owners),
            "due follow-ups": len(owners),
        }
        got = {
            "open opportunities": (ctx["pipeline"]["count"], ctx["pipeline"]["value"]),
            "signed this month": (ctx["signed"]["count"], ctx["signed"]["value"]),
            "collected this month": ctx["collected"],
            "overdue": ctx["overdue"],
            "shared pool": ctx["pool_size"],
            "open tickets": ctx["tickets"]["open"],
            "due follow-ups": ctx["due_followups"],
        }
        return [f"{k}: {got[k]}, expected {want[k]} (owners {owners})"
                for k in want if got[k] != want[k]]

    return check


def _receivable_figures(world: World) -> Any:
    def check(persona: str, response: Any, params: dict[str, Any]) -> list[str]:
        if params.get("export"):
            return []
        summary = response.context["summary"]
        want = (world.expected_sum(persona), world.expected_sum(persona, Decimal("0.1")))
        got = (summary["total"], summary["collected"])
        return [] if got == want else [f"summary total/collected {got}, expected {want}"]

    return check


# The chart's head counts by hand: current employees in each department's subtree, among the
# people the persona may see (a rep sees only themselves).
HEAD_COUNTS: dict[str, dict[str, int]] = {
    "rep_a": {"team_a": 1},
    "rep_b": {"team_b": 1},
    "manager_a": {"team_a": 3},
    "director": {"east": 4, "team_a": 3},
    "finance": {"hq": 9, "east": 4, "team_a": 3, "north": 2, "team_b": 2, "finance_dept": 1,
                "ops_dept": 1},
}
HEAD_COUNTS["admin"] = HEAD_COUNTS["finance"]


def _chart_figures(world: World) -> Any:
    def check(persona: str, response: Any, params: dict[str, Any]) -> list[str]:
        got = {row["department"].pk: row["head_count"] for row in response.context["rows"]}
        want = {getattr(world.company, name).pk: n for name, n in HEAD_COUNTS[persona].items()}
        return [] if got == want else [f"departments and head counts {got}, expected {want}"]

    return check


def _roster_people(world: World) -> Any:
    """The roster page lists exactly the people the persona may see (by employee number,
    which only the rows show). The export's stream is read once, by the leak check; its rows
    are checked in tests/org."""
    from tests.scope.conftest import PEOPLE, VISIBLE_PEOPLE

    def check(persona: str, response: Any, params: dict[str, Any]) -> list[str]:
        if params.get("export"):
            return []
        body = _body_text(response)
        shown = {name for name in PEOPLE if world.persona(name).number in body}
        want = {name for name in PEOPLE if name in VISIBLE_PEOPLE[persona]}
        return [] if shown == want else [f"people shown {sorted(shown)}, expected {sorted(want)}"]

    return check


HOOKS = {"web:home": _home_figures, "pipeline:receivables": _receivable_figures,
         "org:chart": _chart_figures, "org:employee_list": _roster_people}


# --- the matrix ------------------------------------------------------------------------------
def _import_report_is_private(world: World, clients: dict[str, Any]) -> list[str]:
    """An import's report is readable by the person who ran it and by nobody else (not even
    an administrator): anyone else gets 404, report and error download alike."""
    from tests.conftest import user_of
    from weiying.pipeline.imports import ImportReport
    from weiying.pipeline.views.imports import save_report

    report = ImportReport(kind="leads", file_name="matrix.csv", rows=1, rejected=1)
    report.add_error(2, "phone", "matrix")
    token = save_report(report, user_of(world.persona("manager_a")))
    problems = []
    url = reverse("pipeline:import_result", args=[token])
    for persona in PERSONAS:
        for params in ({}, {"download": "errors"}):
            want = 200 if persona == "manager_a" else 404
            status = clients[persona].get(url, params).status_code
            if status != want:
                problems.append(f"{persona} GET {url} {params}: status {status}, expected {want}")
    return problems


def _cases() -> list[tuple[str, int]]:
    out = []
    for name, specs in sorted(PAGE_ROUTES.items()):
        count = len(specs) if isinstance(specs, tuple) else 1
        out += [(name, i) for i in range(count)]
    return out


@pytest.mark.parametrize(("name", "index"), _cases(),
                         ids=[f"{n}#{i}" for n, i in _cases()])
def test_page_keeps_to_the_scope(name: str, index: int, world: World,
                                 clients: dict[str, Any]) -> None:
    specs = PAGE_ROUTES[name]
    spec = specs[index] if isinstance(specs, tuple) else specs
    kind = spec["kind"]
    slug = spec.get("slug")

    def url_for(pk: Any) -> str:
        args = [] if pk is None else [pk]
        return reverse(name, args=[*args, slug] if slug else args)

    if kind in ("list", "form"):
        hook = HOOKS[name](world) if name in HOOKS else None
        problems = check_list(world, clients, url_for(None), spec, on_response=hook)
    elif kind == "detail":
        problems = check_detail(world, clients, url_for, spec)
    elif kind == "action":
        problems = check_action(world, clients, "POST", url_for, spec)
    elif kind == "create":
        problems = check_create(world, clients, "POST", url_for(None), spec)
    elif kind == "reference":
        problems = check_reference(world, clients, url_for, spec)
    elif kind == "import_result":
        problems = _import_report_is_private(world, clients)
    elif name == "web:logout":
        problems = []  # POST only; it signs the persona out
    else:
        problems = check_no_markers(world, clients, url_for(None))
    assert not problems, "\n".join([name, *problems])


def test_pages_are_not_vacuous_for_finance(world: World, clients: dict[str, Any]) -> None:
    """Finance sees everything: the customer list names every customer of the world."""
    body = _body_text(clients["finance"].get(reverse("customers:customer_list")))
    want = {f"MK{code}cust" for code, _c in world.records_of("customer")}
    assert want <= markers_in(body), sorted(want - markers_in(body))


def test_a_missing_record_is_a_404_page(world: World, clients: dict[str, Any]) -> None:
    """The baseline the action checks compare against: a missing id is a 404 on detail."""
    url = reverse("customers:customer_detail", args=[MISSING_ID])
    assert clients["admin"].get(url).status_code == 404
