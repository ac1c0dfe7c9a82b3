"""The data-scope matrix: one small world of marked records, the personas who look at it, and
what each persona may see.

Every record's name, title, number or note carries a marker `MK<owner><kind>` (five letters
for the owner, four for the kind, so no marker is a prefix of another). A response leaks when
its body holds a marker outside the persona's allowed set.

    owner codes   repa1 (rep_a)   repa2 (rep_a2)   repb1 (rep_b)   mgrb1 (manager_b)
                  poole / pooln / poolc: pool customers of the east branch, the north branch
                  and the whole company; depta / deptb: leads nobody owns yet, waiting in
                  上海一组 / 北京一组.
    kinds         cust cont lead oppo foll quot ctrt rcpt tick, and payo for WeChat Pay orders,
                  chan for channel codes (渠道活码), dlvo for delivery orders (交付单)
                  (their pages show the contract's and the customer's markers)

The world is built once per test module (inside a transaction rolled back at the end of the
module); each test runs in a savepoint inside it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from tests.conftest import PASSWORD, _person, user_of

PERSONAS = ["rep_a", "rep_b", "manager_a", "director", "finance", "admin"]
# Personas for whom a list must show some of their own markers (the check is not vacuous).
NON_VACUOUS = ["rep_a", "manager_a"]

OWNERS = {"repa1": "rep_a", "repa2": "rep_a2", "repb1": "rep_b", "mgrb1": "manager_b"}
POOLS = {"poole": "east", "pooln": "north", "poolc": None}
DEPT_LEADS = {"depta": "team_a", "deptb": "team_b"}
KINDS = ["cust", "cont", "lead", "oppo", "foll", "quot", "ctrt", "rcpt", "tick", "dlvo"]
ALL_CODES = [*OWNERS, *POOLS, *DEPT_LEADS]

# Expected visibility, from weiying/core/permissions.py BUILTIN_ROLES: rep = self,
# manager/director = subtree of their department, finance/admin = all; pools are seen by
# everyone inside the pool's department (the company pool by everyone).
VISIBLE: dict[str, set[str]] = {
    "rep_a": {"repa1", "poole", "poolc"},
    "rep_b": {"repb1", "pooln", "poolc"},
    "manager_a": {"repa1", "repa2", "poole", "poolc", "depta"},
    "director": {"repa1", "repa2", "poole", "poolc", "depta"},
    "finance": set(ALL_CODES),
    "admin": set(ALL_CODES),
}
# Employees each persona may see (org API), by persona attribute name.
VISIBLE_PEOPLE: dict[str, set[str]] = {
    "rep_a": {"rep_a"},
    "rep_b": {"rep_b"},
    "manager_a": {"manager_a", "rep_a", "rep_a2"},
    "director": {"director", "manager_a", "rep_a", "rep_a2"},
    "finance": {"rep_a", "rep_a2", "rep_b", "manager_b", "manager_a", "director"},
    "admin": {"rep_a", "rep_a2", "rep_b", "manager_b", "manager_a", "director"},
}
PEOPLE = ["rep_a", "rep_a2", "rep_b", "manager_b"]
# Departments each persona may see (weiying.org.selectors.visible_departments): all for the
# all-scope roles, the own department's subtree for managers and directors, the own department
# for reps.
DEPARTMENTS = ["hq", "east", "team_a", "north", "team_b"]
VISIBLE_DEPARTMENTS: dict[str, set[str]] = {
    "rep_a": {"team_a"},
    "rep_b": {"team_b"},
    "manager_a": {"team_a"},
    "director": {"east", "team_a"},
    "finance": set(DEPARTMENTS),
    "admin": set(DEPARTMENTS),
}

# Distinct amounts so that any sum names the owners it was taken over.
AMOUNT = {"repa1": Decimal("1000.00"), "repa2": Decimal("20000.00"),
          "repb1": Decimal("300000.00"), "mgrb1": Decimal("4000000.00")}

MARKER_RE = re.compile(
    r"MK[a-z0-9]{5}(?:cust|cont|lead|oppo|foll|quot|ctrt|rcpt|tick|chan|dlvo)")

# Which record kind each model is, and the model name used in the route tables.
MODEL_KIND = {"payorder": "payo", "channel": "chan", "deliveryorder": "dlvo",
              "customer": "cust", "lead": "lead", "opportunity": "oppo", "followup": "foll",
              "quote": "quot", "contract": "ctrt", "ticket": "tick"}


def marker(code: str, kind: str) -> str:
    return f"MK{code}{kind}"


def markers_in(body: str) -> set[str]:
    return set(MARKER_RE.findall(body))


@dataclass
class World:
    company: SimpleNamespace
    records: dict[tuple[str, str], Any] = field(default_factory=dict)
    product: Any = None
    today: dt.date | None = None
    clients: dict[str, Any] = field(default_factory=dict)

    def persona(self, name: str) -> Any:
        return getattr(self.company, name)

    def allowed(self, persona: str) -> set[str]:
        return {m for (code, kind), obj in self.records.items() if code in VISIBLE[persona]
                for m in [marker(code, kind)]}

    def all_markers(self) -> set[str]:
        return {marker(code, kind) for code, kind in self.records}

    def records_of(self, model: str) -> list[tuple[str, Any]]:
        """(owner code, object) for every record of a model kind."""
        kind = MODEL_KIND[model]
        return [(code, obj) for (code, k), obj in sorted(self.records.items(),
                                                         key=lambda kv: kv[0]) if k == kind]

    def visible(self, persona: str, code: str) -> bool:
        return code in VISIBLE[persona]

    def outside(self, persona: str, model: str) -> list[tuple[str, Any]]:
        if model == "employee":
            return [(n, self.persona(n)) for n in PEOPLE if n not in VISIBLE_PEOPLE[persona]]
        if model == "department":
            return [(n, getattr(self.company, n)) for n in DEPARTMENTS
                    if n not in VISIBLE_DEPARTMENTS[persona]]
        return [(c, o) for c, o in self.records_of(model) if not self.visible(persona, c)]

    def inside(self, persona: str, model: str) -> list[tuple[str, Any]]:
        return [(c, o) for c, o in self.records_of(model) if self.visible(persona, c)]

    def expected_sum(self, persona: str, ratio: Decimal = Decimal(1)) -> Decimal:
        return sum((AMOUNT[c] * ratio for c in OWNERS if c in VISIBLE[persona]), Decimal(0))


def build_company() -> SimpleNamespace:
    """The same company as tests/conftest.py `company` (that fixture is per test; the matrix
    needs it once per module)."""
    from weiying.org import services as org

    hq = org.create_department(actor=None, name="总部", kind="hq", check=False)
    east = org.create_department(actor=None, name="华东分公司", parent=hq, kind="branch",
                                 city="上海", region="华东", check=False)
    team_a = org.create_department(actor=None, name="上海一组", parent=east, kind="team",
                                   city="上海", region="华东", check=False)
    north = org.create_department(actor=None, name="华北分公司", parent=hq, kind="branch",
                                  city="北京", region="华北", check=False)
    team_b = org.create_department(actor=None, name="北京一组", parent=north, kind="team",
                                   city="北京", region="华北", check=False)
    finance_dept = org.create_department(actor=None, name="财务部", parent=hq, kind="other",
                                         check=False)
    ops_dept = org.create_department(actor=None, name="运营部", parent=hq, kind="other",
                                     check=False)
    admin = _person("E001", "管理员", hq, "admin")
    director = _person("E010", "周总监", east, "director")
    manager_a = _person("E020", "王经理", team_a, "manager", leader=director)
    rep_a = _person("E030", "李销售", team_a, "rep", leader=manager_a)
    rep_a2 = _person("E031", "赵销售", team_a, "rep", leader=manager_a)
    manager_b = _person("E040", "孙经理", team_b, "manager")
    rep_b = _person("E050", "钱销售", team_b, "rep", leader=manager_b)
    finance = _person("E060", "陈会计", finance_dept, "finance")
    operations = _person("E070", "吴运营", ops_dept, "operations")
    return SimpleNamespace(
        hq=hq, east=east, team_a=team_a, north=north, team_b=team_b,
        finance_dept=finance_dept, ops_dept=ops_dept,
        admin=admin, director=director, manager_a=manager_a, rep_a=rep_a, rep_a2=rep_a2,
        manager_b=manager_b, rep_b=rep_b, finance=finance, operations=operations,
    )


def _add_transfers(rec: dict[tuple[str, str], Any]) -> None:
    """A failed departure transfer (离职继承) of each owned customer to its owner: the
    transfers page shows the customer's marker to whoever may see the successor's rows."""
    from weiying.wechat.models import Transfer

    for (code, kind), customer in list(rec.items()):
        if kind == "cust" and customer.owner_id:
            Transfer.objects.create(
                from_employee=customer.owner, to_employee=customer.owner, customer=customer,
                external_userid=f"wmMX{code}", status="failed", error="customer_refused")


def build_world() -> World:
    from weiying.catalog import delivery_services
    from weiying.catalog.models import DeliveryOrder, Product
    from weiying.customers import services as customers
    from weiying.pipeline.models import Quote
    from weiying.pipeline.services import contracts, followups, leads, opportunities, quotes
    from weiying.pipeline.services import tickets as ticket_services
    from weiying.wechat.models import Channel, PayOrder

    company = build_company()
    today = timezone.localdate()
    now = timezone.now()
    world = World(company=company, today=today)
    world.product = Product.objects.create(
        code="MX-1", name="矩阵测试产品", category="软件", list_price=Decimal("1000.00"),
        vat_rate=Decimal("0.13"), lifecycle_days=10,
    )
    phones = iter(f"1390000{n:04d}" for n in range(1, 100))
    rec = world.records

    def customer_with_contact(code: str, owner: Any, pool_department: Any = None) -> Any:
        customer = customers.create_customer(
            actor=None, name=marker(code, "cust"), owner=owner, phone=next(phones),
            pool_department=pool_department, note=marker(code, "cust"),
        )
        rec[(code, "cust")] = customer
        rec[(code, "cont")] = customers.add_contact(
            actor=None, customer=customer, name=marker(code, "cont"), phone=next(phones))
        return customer

    for code, attr in OWNERS.items():
        owner = getattr(company, attr)
        user = user_of(owner)
        amount = AMOUNT[code]
        customer = customer_with_contact(code, owner)
        rec[(code, "lead")] = leads.capture_lead(
            actor=None, name=marker(code, "lead"), phone=next(phones), owner=owner,
            company_name=marker(code, "lead"), note=marker(code, "lead"))
        rec[(code, "oppo")] = opportunities.create_opportunity(
            actor=None, customer=customer, name=marker(code, "oppo"), amount=amount,
            expected_close=today)
        rec[(code, "foll")] = followups.log_followup(
            actor=user, kind="call", note=marker(code, "foll"), customer=customer,
            at=now - dt.timedelta(hours=2), next_at=now - dt.timedelta(hours=1))
        line = {"product": world.product, "quantity": Decimal(1), "unit_price": amount,
                "description": marker(code, "quot")}
        quote = quotes.create_quote(actor=None, customer=customer, lines=[line])
        Quote.objects.filter(pk=quote.pk).update(number=marker(code, "quot"))
        quote.refresh_from_db()
        rec[(code, "quot")] = quote
        contract = contracts.create_contract(
            actor=None, customer=customer, title=marker(code, "ctrt"),
            lines=[{**line, "description": marker(code, "ctrt")}], note=marker(code, "ctrt"))
        contracts.submit_contract(actor=None, contract=contract)
        contracts.sign_contract(actor=None, contract=contract, signed_on=today)
        half = amount / 2
        contracts.plan_instalments(actor=None, contract=contract, plan=[
            (today - dt.timedelta(days=5), half), (today + dt.timedelta(days=30), half)])
        rec[(code, "rcpt")] = contracts.record_receipt(
            actor=None, contract=contract, amount=amount / 10, received_on=today,
            method="bank", reference=marker(code, "rcpt"))
        contract.refresh_from_db()
        rec[(code, "ctrt")] = contract
        # Half the contract's one unit on a planned delivery order (the other half is left for
        # the create checks); its external id is its pk, so by-external routes take the pk.
        order = delivery_services.create_delivery_order(
            actor=None, contract=contract, note=marker(code, "dlvo"),
            lines=[{"contract_line": contract.lines.get().pk, "quantity": "0.5"}])
        DeliveryOrder.objects.filter(pk=order.pk).update(number=marker(code, "dlvo"),
                                                         external_id=str(order.pk))
        rec[(code, "dlvo")] = order
        rec[(code, "tick")] = ticket_services.open_ticket(
            actor=user, customer=customer, title=marker(code, "tick"),
            description=marker(code, "tick"), contract=contract)
        rec[(code, "payo")] = PayOrder.objects.create(
            contract=contract, instalment=contract.instalments.order_by("seq").first(),
            out_trade_no=f"WYMX{code}", amount=amount / 2, description=marker(code, "ctrt"),
            code_url=f"weixin://wxpay/bizpayurl?pr=MX{code}",
            expires_at=now + dt.timedelta(hours=2))
        # Official Account codes: their picture is drawn here, so the image route answers
        # without reaching Tencent (a WeCom code's picture is fetched from WeCom).
        rec[(code, "chan")] = Channel.objects.create(
            kind=Channel.Kind.OA, name=marker(code, "chan"), state=f"mx-{code}", owner=owner,
            department=owner.department, config_id=f"mx{code}",
            qr_url=f"https://sandbox.test/qr/mx{code}")

    for code, dept in POOLS.items():
        customer_with_contact(code, None, getattr(company, dept) if dept else None)
    for code, dept in DEPT_LEADS.items():
        rec[(code, "lead")] = leads.capture_lead(
            actor=None, name=marker(code, "lead"), phone=next(phones),
            department=getattr(company, dept), note=marker(code, "lead"))

    _add_transfers(rec)
    for obj in rec.values():
        obj.refresh_from_db()
    _check_world(world)
    return world


def _check_world(world: World) -> None:
    """The world is what the tables say; a failure here is a broken fixture, not a leak."""
    c = world.company
    for code in POOLS:
        customer = world.records[(code, "cust")]
        assert customer.in_pool and customer.owner_id is None, code
    for code, dept in DEPT_LEADS.items():
        lead = world.records[(code, "lead")]
        assert lead.owner_id is None and lead.department_id == getattr(c, dept).pk, code
    for code, attr in OWNERS.items():
        assert world.records[(code, "ctrt")].status == "signed"
        assert world.records[(code, "ctrt")].total == AMOUNT[code]
        assert world.records[(code, "tick")].owner_id == getattr(c, attr).pk


@pytest.fixture(scope="module")
def world(django_db_setup: Any, django_db_blocker: Any) -> Any:
    """The marked world, built once per module and rolled back after it."""
    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            built = build_world()
            for name in PERSONAS:
                # Signed in once per module: building a Client loads the middleware stack.
                client = Client()
                assert client.login(username=built.persona(name).number.lower(),
                                    password=PASSWORD)
                built.clients[name] = client
            yield built
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


@pytest.fixture
def clients(world: Any, db: Any) -> dict[str, Any]:
    """The signed-in test client of each persona, with no flash message left over from an
    earlier test (a message could name a record and be mistaken for a leak of this one)."""
    for client in world.clients.values():
        client.cookies.pop("messages", None)
    return world.clients


def leaks(world: World, persona: str, body: str) -> set[str]:
    return markers_in(body) - world.allowed(persona)


def own_shown(world: World, persona: str, body: str, kinds: tuple[str, ...]) -> set[str]:
    return {m for m in markers_in(body) & world.allowed(persona) if m[-4:] in kinds}


def row_state(obj: Any) -> dict[str, Any]:
    """A record's current field values (re-read), for 'the record is unchanged'."""
    from django.forms.models import model_to_dict

    fresh = type(obj).objects.get(pk=obj.pk)
    data = model_to_dict(fresh)
    for name in ("updated_at",):
        if hasattr(fresh, name):
            data[name] = getattr(fresh, name)
    return {k: (list(v) if isinstance(v, list | tuple | set) else v) for k, v in data.items()}


def table_counts() -> dict[str, int]:
    """Row counts of every business table plus the audit trail and the event outbox."""
    from weiying.catalog.models import DeliveryLine, DeliveryOrder
    from weiying.core.models import AuditLog, DomainEvent
    from weiying.customers.models import (
        Consent,
        Contact,
        Customer,
        CustomerMerge,
        OwnershipChange,
        WeChatIdentity,
    )
    from weiying.pipeline.models import (
        Contract,
        ContractLine,
        FollowUp,
        Instalment,
        Lead,
        Opportunity,
        Quote,
        Receipt,
        StageChange,
        Ticket,
    )
    from weiying.wechat.models import Channel, ChannelArrival, PayOrder

    models = [AuditLog, DomainEvent, Customer, Contact, Consent, WeChatIdentity,
              OwnershipChange, CustomerMerge, Lead, Opportunity, StageChange, FollowUp, Quote,
              Contract, ContractLine, Instalment, Receipt, Ticket, Customer.tags.through,
              PayOrder, Channel, ChannelArrival, DeliveryOrder, DeliveryLine]
    names = [m.__name__ if m is not Customer.tags.through else "Customer.tags" for m in models]
    sql = "SELECT " + ", ".join(
        f"(SELECT COUNT(*) FROM {connection.ops.quote_name(m._meta.db_table)})" for m in models)
    with connection.cursor() as cursor:  # one round trip for every table
        cursor.execute(sql)
        row = cursor.fetchone()
    return dict(zip(names, row, strict=True))


def snapshot(obj: Any) -> tuple[dict[str, Any], dict[str, int]]:
    return row_state(obj), table_counts()


def unchanged(obj: Any, before: tuple[dict[str, Any], dict[str, int]]) -> str:
    """'' when the record and every table are as before, else what changed."""
    row, counts = snapshot(obj)
    problems = []
    changed = {k for k in row if row[k] != before[0].get(k)}
    if changed:
        problems.append(f"fields changed: {sorted(changed)}")
    moved = {k: (before[1][k], counts[k]) for k in counts if counts[k] != before[1][k]}
    if moved:
        problems.append(f"rows added/removed: {moved}")
    return "; ".join(problems)
