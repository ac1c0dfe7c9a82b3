"""The checks the API and page matrices share: one function per route kind.

A route spec is a dict with a "kind":
    list    GET; `shows` = the marker kinds the list is about (for the non-vacuous check),
            `variants` = query strings to try (search, export, filters).
    detail  GET of one record named by the path (or by a query parameter `query`): 200 inside
            the persona's scope, 404 outside. The model "employee" / "department" names the
            org's people and departments (VISIBLE_PEOPLE / VISIBLE_DEPARTMENTS say who sees
            which); they work as action targets too.
    action  a write on one record (POST/PUT/PATCH/DELETE): outside the scope it is refused
            as if the record did not exist, and nothing changes.
    create  a write without a record in the path; `ref` = the model a body field points at:
            pointing it at a record outside the scope is refused and nothing is written.
    org / meta / public: no business rows; `why` says so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from tests.scope.conftest import (
    DEPARTMENTS,
    NON_VACUOUS,
    PEOPLE,
    PERSONAS,
    VISIBLE_DEPARTMENTS,
    VISIBLE_PEOPLE,
    World,
    leaks,
    markers_in,
    own_shown,
    snapshot,
    table_counts,
    unchanged,
)

MISSING_ID = 987654321


def lst(*shows: str, variants: Any = ({},), needs: str = "", mine: bool = False
        ) -> dict[str, Any]:
    """`needs`: a permission the route requires; personas without it get 403. `mine`: the
    page lists the caller's own records only (phone pages), so only rep_a, who owns records
    here, must see some."""
    return {"kind": "list", "shows": shows, "variants": variants, "needs": needs,
            "mine": mine}


def may(world: World, persona: str, permission: str) -> bool:
    from tests.conftest import user_of
    from weiying.core.permissions import has_perm

    return not permission or has_perm(user_of(world.persona(persona)), permission)


def detail(model: str, query: str = "", *, needs: str = "",
           ok: tuple[int, ...] = (200,)) -> dict[str, Any]:
    """`query`: the record is named by ?<query>=<id> instead of the path. `needs`: personas
    without this permission get 403 on records they may see. `ok`: the statuses that mean
    "shown" (an edit page of a signed contract redirects to the contract)."""
    return {"kind": "detail", "model": model, "query": query, "needs": needs, "ok": ok}


def action(model: str, body: Any = None, *, form: bool = False) -> dict[str, Any]:
    """`form`: send the body form-encoded (pages) instead of JSON (API)."""
    return {"kind": "action", "model": model, "body": body, "form": form}


def form(variants: Any = ({},), needs: str = "") -> dict[str, Any]:
    """A page with a form (GET): like a list with nothing of its own to show; the variants
    pre-fill it from records in and outside the scope."""
    return {"kind": "form", "shows": (), "variants": variants, "needs": needs}


def create(ref: str = "", body: Any = None, *, why: str = "",
           ok: tuple[int, ...] = (200, 201)) -> dict[str, Any]:
    """`ok`: what rep_a's control request with an own record must get (302 for pages)."""
    return {"kind": "create", "ref": ref, "body": body, "why": why, "ok": ok}


def org(why: str) -> dict[str, Any]:
    return {"kind": "org", "why": why}


def meta(why: str) -> dict[str, Any]:
    return {"kind": "meta", "why": why}


def public(why: str) -> dict[str, Any]:
    return {"kind": "public", "why": why}


def reference(target: Callable[[World], Any], why: str, *, method: str = "GET",
              body: Any = None) -> dict[str, Any]:
    """A page or operation on company-wide reference data (a product, a price list, a SKU):
    `target(world)` gives the id in the path. Nobody owns such rows, so there is no scope to
    keep; what is checked is that no business row outside the persona's scope appears."""
    return {"kind": "reference", "target": target, "why": why, "method": method, "body": body}


# --- placeholders in bodies and query strings -----------------------------------------------
def resolve(value: Any, world: World, persona: str, extra: dict[str, Any] | None = None) -> Any:
    """Fill "$name" placeholders: $me (the persona's employee id), $today, $stage (the second
    open stage), $product, $pool_customer (a customer everyone sees), $ref (the record a
    create points at) and $marker(code,kind)."""
    if callable(value):
        value = value(world, persona)
    if isinstance(value, dict):
        return {k: resolve(v, world, persona, extra) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, world, persona, extra) for v in value]
    if not isinstance(value, str) or not value.startswith("$"):
        return value
    from weiying.pipeline.models import Stage

    extra = extra or {}
    if value in extra:
        return extra[value]
    if value == "$me":
        return world.persona(persona).pk
    if value == "$today":
        return world.today.isoformat()
    if value == "$stage":
        stage = Stage.objects.filter(pipeline__is_default=True, kind="open").order_by("order")[1]
        return stage.pk
    if value == "$product":
        return world.product.pk
    if value == "$pool_customer":
        return world.records[("poolc", "cust")].pk
    raise KeyError(f"unknown placeholder {value}")


def fill_path(path: str, pk: Any) -> str:
    return re.sub(r"\{[a-z_]+\}|<[a-z]+:[a-z_]+>", str(pk), path, count=1)


def _body_text(response: Any) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode("utf-8", "replace")
    return response.content.decode("utf-8", "replace")


def _send(client: Any, method: str, url: str, body: Any, *, form: bool) -> Any:
    method = method.lower()
    if method == "get":
        return client.get(url, body or {})
    if form:
        return getattr(client, method)(url, body or {})
    return getattr(client, method)(url, json.dumps(body) if body is not None else "",
                                   content_type="application/json")


# --- the checks ------------------------------------------------------------------------------
def check_list(world: World, clients: dict[str, Any], url: str, spec: dict[str, Any],
               *, on_response: Callable[..., list[str]] | None = None) -> list[str]:
    """No foreign marker in any variant; own markers shown for the non-vacuous personas."""
    problems: list[str] = []
    variants = spec["variants"]
    for persona in PERSONAS:
        client = clients[persona]
        seen: set[str] = set()
        for raw in (variants(world, persona) if callable(variants) else variants):
            params = resolve(raw, world, persona)
            response = client.get(url, params)
            where = f"{persona} GET {url} {params or ''}"
            want = 200 if may(world, persona, spec.get("needs", "")) else 403
            if "export" in params and not may(world, persona, "export") and \
                    response.status_code == 403:
                want = 403  # exporting needs the export permission
            if response.status_code != want:
                problems.append(f"{where}: status {response.status_code}, expected {want}")
                continue
            body = _body_text(response)
            leaked = leaks(world, persona, body)
            if leaked:
                problems.append(f"{where}: LEAK of {sorted(leaked)}")
            seen |= own_shown(world, persona, body, spec["shows"])
            if on_response is not None:
                problems += [f"{where}: {p}" for p in on_response(persona, response, params)]
        must_show = ["rep_a"] if spec.get("mine") else NON_VACUOUS
        if spec["shows"] and persona in must_show and not seen and may(
                world, persona, spec.get("needs", "")):
            problems.append(f"{persona} GET {url}: none of the persona's own "
                            f"{'/'.join(spec['shows'])} markers shown (vacuous check)")
    return problems


def detail_targets(world: World, model: str) -> list[tuple[str, Any, Callable[[str], bool]]]:
    """(label, pk, visible-to(persona)) for every record of a model."""
    if model == "employee":
        return [(name, world.persona(name).pk,
                 lambda persona, name=name: name in VISIBLE_PEOPLE[persona]) for name in PEOPLE]
    if model == "department":
        return [(name, getattr(world.company, name).pk,
                 lambda persona, name=name: name in VISIBLE_DEPARTMENTS[persona])
                for name in DEPARTMENTS]
    return [(code, obj.pk, lambda persona, code=code: world.visible(persona, code))
            for code, obj in world.records_of(model)]


def check_detail(world: World, clients: dict[str, Any], url_for: Callable[[Any], str],
                 spec: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for persona in PERSONAS:
        client = clients[persona]
        allowed_to = may(world, persona, spec["needs"])
        for label, pk, visible in detail_targets(world, spec["model"]):
            if spec["query"]:
                url, params = url_for(None), {spec["query"]: pk}
            else:
                url, params = url_for(pk), {}
            response = client.get(url, params)
            status = response.status_code
            where = f"{persona} GET {url} {params or ''} ({spec['model']} of {label})"
            if visible(persona):
                want: tuple[int, ...] = spec["ok"] if allowed_to else (403,)
            else:
                want = (404,) if allowed_to else (403, 404)
            if status not in want:
                problems.append(f"{where}: status {status}, expected {' or '.join(map(str, want))}")
            body = _body_text(response)
            leaked = leaks(world, persona, body)
            if leaked:
                problems.append(f"{where}: LEAK of {sorted(leaked)}")
    return problems


def check_action(world: World, clients: dict[str, Any], method: str,
                 url_for: Callable[[Any], str], spec: dict[str, Any]) -> list[str]:
    """Outside the scope: 404 (or, where the route answers before it looks the record up, the
    very answer a missing id gets, never a success), and nothing written."""
    problems: list[str] = []
    model = spec["model"]
    for persona in PERSONAS:
        client = clients[persona]
        body = resolve(spec["body"], world, persona)
        missing_response = None
        for code, obj in world.outside(persona, model):
            url = url_for(obj.pk)
            where = f"{persona} {method} {url} ({model} of {code})"
            before = snapshot(obj)
            response = _send(client, method, url, body, form=spec["form"])
            status = response.status_code
            if status != 404:
                if missing_response is None:
                    missing_response = _send(client, method, url_for(MISSING_ID), body,
                                             form=spec["form"])
                same = (status == missing_response.status_code
                        and response.get("Location") == missing_response.get("Location"))
                if status < 300 or not same:
                    problems.append(
                        f"{where}: status {status} (a missing id gets "
                        f"{missing_response.status_code}), expected 404"
                    )
            leaked = leaks(world, persona, _body_text(response))
            if leaked:
                problems.append(f"{where}: LEAK of {sorted(leaked)} in the refusal")
            changed = unchanged(obj, before)
            if changed:
                problems.append(f"{where}: WROTE to a record outside the scope: {changed}")
    return problems


def check_create(world: World, clients: dict[str, Any], method: str, path: str,
                 spec: dict[str, Any]) -> list[str]:
    """A create pointing at a record outside the scope writes nothing. The same body pointing
    at rep_a's own record is accepted (so the refusal is about the scope, not the body)."""
    problems: list[str] = []
    ref = spec["ref"]
    if not ref:
        return problems
    own = world.records[("repa1", {"customer": "cust", "lead": "lead",
                                   "opportunity": "oppo", "contract": "ctrt"}[ref])]
    response = _send(clients["rep_a"], method, path,
                     resolve(spec["body"], world, "rep_a", {"$ref": own.pk}),
                     form=method == "POST" and not path.startswith("/api/"))
    if response.status_code not in spec["ok"]:
        problems.append(f"rep_a {method} {path} with own {ref}: status "
                        f"{response.status_code}, expected success "
                        f"({_body_text(response)[:300]})")
    for persona in ["rep_a", "rep_b", "manager_a", "director"]:
        client = clients[persona]
        for code, obj in world.outside(persona, ref):
            body = resolve(spec["body"], world, persona, {"$ref": obj.pk})
            before = table_counts()
            response = _send(client, method, path, body,
                             form=method == "POST" and not path.startswith("/api/"))
            where = f"{persona} {method} {path} with {ref} of {code}"
            status = response.status_code
            after = table_counts()
            grew = {k: (before[k], after[k]) for k in after if after[k] != before[k]}
            if grew:
                problems.append(f"{where}: WROTE rows pointing outside the scope: {grew}")
            if path.startswith("/api/") and status not in (400, 404, 422):
                problems.append(f"{where}: status {status}, expected a refusal (404)")
            leaked = leaks(world, persona, _body_text(response))
            if leaked:
                problems.append(f"{where}: LEAK of {sorted(leaked)}")
    return problems


def check_reference(world: World, clients: dict[str, Any], url_for: Callable[[Any], str],
                    spec: dict[str, Any]) -> list[str]:
    """Reference data: every persona's answer names no business row outside the persona's
    scope (a product page lists the visible contracts that hold its stock)."""
    problems = []
    url = url_for(spec["target"](world))
    for persona in PERSONAS:
        response = _send(clients[persona], spec["method"], url,
                         resolve(spec["body"], world, persona) or {},
                         form=spec["method"] == "POST" and "/api/" not in url)
        leaked = leaks(world, persona, _body_text(response))
        if leaked:
            problems.append(f"{persona} {spec['method']} {url}: LEAK of {sorted(leaked)}")
    return problems


def check_no_markers(world: World, clients: dict[str, Any], url: str) -> list[str]:
    """Org and meta reads: no business row at all."""
    problems = []
    for persona in PERSONAS:
        response = clients[persona].get(url)
        found = markers_in(_body_text(response))
        if found:
            problems.append(f"{persona} GET {url}: business rows {sorted(found)} in an org route")
    return problems
