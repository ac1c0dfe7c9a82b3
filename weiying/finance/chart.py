"""The default chart of accounts, after the standard Chinese chart (企业会计准则科目表).

Each automatic voucher finds its accounts by role, so a company may renumber or rename them
(or add sub-accounts of its own) without touching code."""

from __future__ import annotations

from weiying.finance.models import Account, AccountKind

# (code, name, kind, role). Account names are the company's data, like department names: the
# defaults are the standard Chinese names, which is what a Chinese ledger expects to import.
DEFAULT_CHART: list[tuple[str, str, str, str | None]] = [
    ("1001", "库存现金", AccountKind.ASSET, "cash"),
    ("1002", "银行存款", AccountKind.ASSET, "bank"),
    ("1122", "应收账款", AccountKind.ASSET, "receivable"),
    ("1405", "库存商品", AccountKind.ASSET, "inventory"),
    ("2204", "合同负债", AccountKind.LIABILITY, "contract_liability"),
    ("222101", "应交税费—应交增值税(销项税额)", AccountKind.LIABILITY, "output_vat"),
    ("222102", "应交税费—待转销项税额", AccountKind.LIABILITY, "pending_vat"),
    ("2241", "其他应付款", AccountKind.LIABILITY, "refund_payable"),
    ("4103", "本年利润", AccountKind.EQUITY, "profit"),
    ("5401", "合同履约成本", AccountKind.COST, "fulfilment_cost"),
    ("6001", "主营业务收入", AccountKind.REVENUE, "revenue"),
    ("6401", "主营业务成本", AccountKind.EXPENSE, "cogs"),
    ("6601", "销售费用", AccountKind.EXPENSE, "selling_expense"),
]

ROLES = frozenset(role for *_rest, role in DEFAULT_CHART if role)


def ensure_default_chart() -> int:
    """Create the default accounts that are missing (by code and by role). Returns how many
    were created; never changes an account the company has edited."""
    created = 0
    have_codes = set(Account.objects.values_list("code", flat=True))
    have_roles = set(Account.objects.exclude(role=None).values_list("role", flat=True))
    for code, name, kind, role in DEFAULT_CHART:
        if code in have_codes or (role and role in have_roles):
            continue
        Account.objects.create(code=code, name=name, kind=kind, role=role)
        created += 1
    return created


_BY_ROLE: dict[str, int] = {}


def account_id(role: str) -> int:
    """The id of the account that plays `role` (cached per process; the chart's roles do not
    move once booked against)."""
    if role not in _BY_ROLE:
        account = Account.objects.filter(role=role).only("pk").first()
        if account is None:
            ensure_default_chart()
            account = Account.objects.get(role=role)
        _BY_ROLE[role] = account.pk
    return _BY_ROLE[role]


def forget_cache() -> None:
    _BY_ROLE.clear()
