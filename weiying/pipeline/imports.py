"""File import of leads and customers: CSV (UTF-8, UTF-8 with BOM, GB18030) and .xlsx.

The file is streamed twice and never held in memory:

1. Validate every row: required fields, formats, source values, owner numbers, duplicates
   inside the file (kept in an on-disk scratch table, so memory stays flat however long the
   file) and against the database (one query per 2,000 rows). Nothing is written.
2. Unless rows failed and the importer did not ask for "valid rows only", insert the valid
   rows with bulk_create in batches of 2,000, all in one transaction (never half-applied),
   routing unowned leads by the assignment rules with a precomputed round-robin. One audit
   row per import, one event per batch ("lead.imported" / "customer.imported").
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
import io
import logging
import os
import re
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from weiying.core import audit, events
from weiying.core.errors import Conflict, ValidationFailed
from weiying.core.masking import normalise_phone
from weiying.core.permissions import employee_of, require
from weiying.core.scope import visible_employees
from weiying.customers.choices import CustomerKind, Level, Source
from weiying.org.choices import EmployeeStatus
from weiying.pipeline.choices import LeadStatus
from weiying.pipeline.services.leads import (
    eligible_reps,
    is_valid_phone,
    next_in_turn,
    rule_matches,
)

logger = logging.getLogger(__name__)

BATCH = 2000
# Errors kept for the report; beyond this they are counted but not listed.
MAX_LISTED_ERRORS = 20000
SAMPLE_BYTES = 1 << 20

# Header aliases per field, in priority order (the first one present in the file wins).
LEAD_HEADERS: dict[str, tuple[str, ...]] = {
    "name": ("姓名", "name", "联系人", "contact"),
    "phone": ("手机", "phone", "手机号", "手机号码", "电话", "mobile"),
    "company_name": ("公司", "company", "公司名称", "company_name"),
    "wechat": ("微信", "wechat", "微信号"),
    "email": ("邮箱", "email", "电子邮箱"),
    "city": ("城市", "city"),
    "region": ("区域", "region", "地区"),
    "source": ("来源", "source"),
    "channel": ("渠道", "channel"),
    "interest": ("意向", "interest"),
    "note": ("备注", "note"),
    "owner_number": ("负责人工号", "owner_number", "owner"),
    "external_id": ("外部编号", "external_id"),
}
CUSTOMER_HEADERS: dict[str, tuple[str, ...]] = {
    "name": ("客户名称", "name", "customer", "姓名"),
    "kind": ("类型", "kind"),
    "phone": ("手机", "phone", "手机号", "手机号码", "电话", "mobile"),
    "email": ("邮箱", "email", "电子邮箱"),
    "industry": ("行业", "industry"),
    "level": ("等级", "level"),
    "city": ("城市", "city"),
    "region": ("区域", "region", "地区"),
    "source": ("来源", "source"),
    "channel": ("渠道", "channel"),
    "note": ("备注", "note"),
    "owner_number": ("负责人工号", "owner_number", "owner"),
}
_LIMITS = {"name": 64, "company_name": 128, "wechat": 64, "email": 254, "city": 64,
           "region": 64, "channel": 64, "interest": 255, "external_id": 64, "industry": 64}
_SOURCE_ALIASES = {
    "网页表单": "form", "表单": "form", "官网": "form", "接口": "api", "文件导入": "import",
    "导入": "import", "企业微信": "wecom", "企微": "wecom", "公众号": "oa", "转介绍": "referral",
    "推荐": "referral", "广告": "ads", "展会": "exhibition", "来电": "phone",
    "电话": "phone", "其他": "other", "其它": "other",
}
_KIND_ALIASES = {"公司": "company", "企业": "company", "个人": "individual"}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_HEADER_JUNK = re.compile(r"[\s*＊:：]+")


@dataclass
class RowError:
    row: int
    column: str
    message: str


@dataclass
class ImportReport:
    """What an import did. `rows` counts data rows (blank rows are skipped)."""

    kind: str
    file_name: str = ""
    valid_only: bool = False
    rows: int = 0
    valid: int = 0
    imported: int = 0
    rejected: int = 0
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    first_id: int | None = None
    last_id: int | None = None
    seconds: float = 0.0
    import_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def ok(self) -> bool:
        return self.rejected == 0

    @property
    def errors_truncated(self) -> bool:
        return self.error_count > len(self.errors)

    def add_error(self, row: int, column: str, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_LISTED_ERRORS:
            self.errors.append(RowError(row, column, message))

    def errors_csv(self) -> str:
        """The error report as CSV text (row, column, problem), in the current language."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([_("Row"), _("Column"), _("Problem")])
        for err in self.errors:
            writer.writerow([err.row, err.column, err.message])
        return out.getvalue()

    def as_dict(self, *, max_errors: int | None = None) -> dict[str, Any]:
        errors = self.errors if max_errors is None else self.errors[:max_errors]
        return {
            "import_id": self.import_id, "kind": self.kind, "file_name": self.file_name,
            "valid_only": self.valid_only, "rows": self.rows, "valid": self.valid,
            "imported": self.imported, "rejected": self.rejected,
            "error_count": self.error_count, "first_id": self.first_id,
            "last_id": self.last_id, "seconds": round(self.seconds, 3),
            "errors": [{"row": e.row, "column": e.column, "message": e.message}
                       for e in errors],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImportReport:
        report = cls(kind=data["kind"])
        for key in ("file_name", "valid_only", "rows", "valid", "imported", "rejected",
                    "error_count", "first_id", "last_id", "seconds", "import_id"):
            setattr(report, key, data.get(key, getattr(report, key)))
        report.errors = [RowError(e["row"], e["column"], e["message"])
                         for e in data.get("errors", [])]
        return report


# --- Reading files ---------------------------------------------------------------------------
def _bad_file(message: str) -> ValidationFailed:
    return ValidationFailed(message, code="bad_file", field="file")


@contextlib.contextmanager
def _binary(source: Any) -> Iterator[IO[bytes]]:
    """The file as a binary stream at its start; a path is opened and closed here, a file
    object the caller gave is rewound and left open."""
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as fh:
            yield fh
        return
    fh = getattr(source, "file", source)  # Django's UploadedFile wraps the real file
    fh.seek(0)
    yield fh


def _detect_encoding(sample: bytes) -> str:
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        # final=False: a multi-byte character cut at the end of the sample is not an error.
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8"


def _csv_rows(fh: IO[bytes]) -> Iterator[list[str]]:
    encoding = _detect_encoding(fh.read(SAMPLE_BYTES))
    fh.seek(0)
    text = io.TextIOWrapper(fh, encoding=encoding, newline="")  # type: ignore[arg-type]
    try:
        # A tab-separated export (Excel's "Unicode text") has tabs and no commas in its header.
        first_line = text.readline()
        text.seek(0)
        delimiter = "\t" if "\t" in first_line and "," not in first_line else ","
        try:
            for row in csv.reader(text, delimiter=delimiter):
                yield [cell.strip() for cell in row]
        except UnicodeDecodeError:
            raise _bad_file(
                _("The file is neither UTF-8 nor GB18030 text; save it as CSV (UTF-8) or .xlsx.")
            ) from None
        except csv.Error as exc:
            raise _bad_file(_("The CSV file is damaged: %(problem)s") % {"problem": exc}) from None
    finally:
        text.detach()  # leave the caller's file open


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # phone numbers typed into Excel arrive as floats
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def _xlsx_rows(fh: IO[bytes]) -> Iterator[list[str]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(fh, read_only=True, data_only=True)
    except Exception:
        raise _bad_file(_("The Excel file cannot be read; save it again as .xlsx.")) from None
    try:
        sheet = workbook.worksheets[0]
        for row in sheet.iter_rows(values_only=True):
            yield [_cell(v) for v in row]
    finally:
        workbook.close()


def read_rows(source: Any) -> Iterator[list[str]]:
    """Every row of the file (header first) as stripped strings, streamed."""
    with _binary(source) as fh:
        head = fh.read(4)
        fh.seek(0)
        if head.startswith(b"PK\x03\x04"):
            yield from _xlsx_rows(fh)
        else:
            yield from _csv_rows(fh)


def _map_header(header: list[str], spec: dict[str, tuple[str, ...]]) -> dict[str, int]:
    normalised = [_HEADER_JUNK.sub("", h).lower() for h in header]
    mapping: dict[str, int] = {}
    for name, aliases in spec.items():
        for alias in aliases:
            if alias in normalised:
                mapping[name] = normalised.index(alias)
                break
    return mapping


# --- Validation ------------------------------------------------------------------------------
class _Scratch:
    """Keys seen so far in the file (phone, external id, name) and rejected rows, kept in a
    throw-away SQLite file so a million rows cost disk, not memory."""

    def __init__(self) -> None:
        fd, self.path = tempfile.mkstemp(prefix="weiying-import-", suffix=".sqlite3")
        os.close(fd)
        self.db = sqlite3.connect(self.path)
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute("CREATE TABLE seen (k TEXT PRIMARY KEY, r INTEGER) WITHOUT ROWID")
        self.db.execute("CREATE TABLE bad (r INTEGER PRIMARY KEY)")

    def first_rows(self, keys: list[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for i in range(0, len(keys), 900):
            chunk = keys[i : i + 900]
            marks = ",".join("?" * len(chunk))
            found.update(self.db.execute(f"SELECT k, r FROM seen WHERE k IN ({marks})", chunk))
        return found

    def remember(self, pairs: list[tuple[str, int]], bad_rows: list[int]) -> None:
        self.db.executemany("INSERT OR IGNORE INTO seen VALUES (?, ?)", pairs)
        self.db.executemany("INSERT OR IGNORE INTO bad VALUES (?)", [(r,) for r in bad_rows])

    def bad_between(self, low: int, high: int) -> set[int]:
        return {r for (r,) in self.db.execute("SELECT r FROM bad WHERE r BETWEEN ? AND ?",
                                              (low, high))}

    def close(self) -> None:
        self.db.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)


class _Owners:
    """Owner numbers → (employee id, department id), looked up once per number among the
    employees the importer may see."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor
        self.known: dict[str, tuple[int, int] | None] = {}

    def load(self, numbers: set[str]) -> None:
        missing = [n for n in numbers if n not in self.known]
        if not missing:
            return
        qs = visible_employees(self.actor) if self.actor is not None else None
        if qs is None:
            from weiying.org.models import Employee

            qs = Employee.objects.all()
        for i in range(0, len(missing), 900):
            chunk = missing[i : i + 900]
            for number in chunk:
                self.known[number] = None
            rows = qs.filter(number__in=chunk).exclude(status=EmployeeStatus.LEFT)
            for number, pk, dept in rows.values_list("number", "pk", "department_id"):
                self.known[number] = (pk, dept)

    def get(self, number: str) -> tuple[int, int] | None:
        return self.known.get(number)


class _Kind:
    """What differs between importing leads and customers."""

    name: str
    headers: dict[str, tuple[str, ...]]
    event: str
    action: str

    def __init__(self, actor: Any) -> None:
        self.actor = actor
        self.owners = _Owners(actor)
        self.columns: dict[str, str] = {}  # field -> the header as written in the file
        me = employee_of(actor) if actor is not None else None
        self.home_department_id = me.department_id if me is not None else None
        self.msg = {
            "required": _("This is required."),
            "too_long": _("Too long (%(limit)s characters at most)."),
            "phone": _("Not a valid mobile or landline number."),
            "contact": _("Enter a phone number or a WeChat id."),
            "email": _("Not an email address."),
            "source": _("Unknown source; use one of: %(choices)s.")
            % {"choices": ", ".join(Source.values)},
            "owner": _("No active employee with this number that you may assign to."),
            "dup_file": _("Duplicate of row %(row)s in this file."),
            "dup_db_phone": _("A record with this phone number already exists."),
            "dup_db_external": _("A lead with this external id already exists."),
            "dup_db_name": _("A customer with this name already exists."),
            "kind": _("Unknown type; use company (公司) or individual (个人)."),
            "level": _("Unknown level; use A, B or C."),
        }

    # Subclasses: clean(values) -> (cleaned, [(field, message)]); keys(cleaned) -> [(kind,
    # field, value)]; existing(kind, values) -> set of values already in the database;
    # build(cleaned, now, assign) -> model instance; model.

    def text(self, values: dict[str, str], name: str, problems: list[tuple[str, str]]) -> str:
        value = values.get(name, "")
        limit = _LIMITS.get(name)
        if limit and len(value) > limit:
            problems.append((name, self.msg["too_long"] % {"limit": limit}))
        return value

    def source(self, values: dict[str, str], problems: list[tuple[str, str]]) -> str:
        raw = values.get("source", "")
        if not raw:
            return Source.IMPORT
        code = raw.lower()
        if code in Source.values:
            return code
        code = _SOURCE_ALIASES.get(raw, "")
        if not code:
            problems.append(("source", self.msg["source"]))
        return code

    def phone(self, values: dict[str, str], problems: list[tuple[str, str]]) -> str:
        raw = values.get("phone", "")
        if not raw:
            return ""
        digits = normalise_phone(raw)
        if not is_valid_phone(digits):
            problems.append(("phone", self.msg["phone"]))
            return ""
        return digits

    def email(self, values: dict[str, str], problems: list[tuple[str, str]]) -> str:
        email = self.text(values, "email", problems)
        if email and not _EMAIL.match(email):
            problems.append(("email", self.msg["email"]))
        return email

    def owner(self, values: dict[str, str], problems: list[tuple[str, str]]) -> Any:
        number = values.get("owner_number", "")
        if not number:
            return None
        found = self.owners.get(number)
        if found is None:
            problems.append(("owner_number", self.msg["owner"]))
        return found


class _LeadKind(_Kind):
    name = "leads"
    headers = LEAD_HEADERS
    event = "lead.imported"
    action = "lead.import"

    def __init__(self, actor: Any) -> None:
        super().__init__(actor)
        from weiying.pipeline.models import AssignmentRule, Lead

        self.model = Lead
        self.rule_model = AssignmentRule
        self.rules: list[list[Any]] = []

    def clean(self, values: dict[str, str]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        problems: list[tuple[str, str]] = []
        name = self.text(values, "name", problems)
        if not name:
            problems.append(("name", self.msg["required"]))
        phone = self.phone(values, problems)
        wechat = self.text(values, "wechat", problems)
        if not values.get("phone") and not wechat:
            problems.append(("phone", self.msg["contact"]))
        cleaned = {
            "name": name, "phone": phone, "wechat": wechat,
            "email": self.email(values, problems),
            "company_name": self.text(values, "company_name", problems),
            "city": self.text(values, "city", problems),
            "region": self.text(values, "region", problems),
            "source": self.source(values, problems),
            "channel": self.text(values, "channel", problems),
            "interest": self.text(values, "interest", problems),
            "note": values.get("note", ""),
            "owner": self.owner(values, problems),
            "external_id": self.text(values, "external_id", problems) or None,
        }
        return cleaned, problems

    def keys(self, cleaned: dict[str, Any]) -> list[tuple[str, str, str]]:
        keys = []
        if cleaned["phone"]:
            keys.append(("p", "phone", cleaned["phone"]))
        if cleaned["external_id"]:
            keys.append(("x", "external_id", cleaned["external_id"]))
        return keys

    def existing(self, kind: str, values: list[str]) -> set[str]:
        column = {"p": "phone", "x": "external_id"}[kind]
        found: set[str] = set()
        for i in range(0, len(values), 900):
            found.update(self.model.objects.filter(**{f"{column}__in": values[i : i + 900]})
                         .values_list(column, flat=True))
        return found

    def duplicate_message(self, kind: str) -> str:
        return self.msg["dup_db_external"] if kind == "x" else self.msg["dup_db_phone"]

    def prepare(self) -> None:
        """Lock the rules for the import and precompute each one's reps and turn."""
        for rule in self.rule_model.objects.select_for_update().filter(is_active=True).order_by(
            "priority", "pk"
        ):
            reps = eligible_reps(rule.team_id)
            if reps:
                self.rules.append([rule, reps, rule.last_assigned_id, False])

    def route(self, cleaned: dict[str, Any]) -> tuple[int, int] | None:
        for entry in self.rules:
            rule, reps, last_id, _moved = entry
            if rule_matches(rule, region=cleaned["region"], source=cleaned["source"]):
                chosen = next_in_turn([r for r, _d in reps], last_id)
                entry[2] = chosen
                entry[3] = True
                return next(r for r in reps if r[0] == chosen)
        return None

    def finish(self) -> None:
        for rule, _reps, last_id, moved in self.rules:
            if moved:
                self.rule_model.objects.filter(pk=rule.pk).update(last_assigned_id=last_id)

    def build(self, cleaned: dict[str, Any], now: dt.datetime) -> Any:
        owner = cleaned.pop("owner") or self.route(cleaned)
        if owner is not None:
            return self.model(**cleaned, owner_id=owner[0], department_id=owner[1],
                              status=LeadStatus.ASSIGNED, assigned_at=now,
                              created_at=now, last_activity_at=now)
        return self.model(**cleaned, department_id=self.home_department_id,
                          status=LeadStatus.NEW, created_at=now, last_activity_at=now)


class _CustomerKind(_Kind):
    name = "customers"
    headers = CUSTOMER_HEADERS
    event = "customer.imported"
    action = "customer.import"

    def __init__(self, actor: Any) -> None:
        super().__init__(actor)
        from weiying.customers.models import Customer
        from weiying.customers.naming import name_key

        self.model = Customer
        self.name_key = name_key

    def clean(self, values: dict[str, str]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        problems: list[tuple[str, str]] = []
        name = values.get("name", "")
        if len(name) > 128:
            problems.append(("name", self.msg["too_long"] % {"limit": 128}))
        if not name:
            problems.append(("name", self.msg["required"]))
        raw_kind = values.get("kind", "")
        kind = raw_kind.lower() if raw_kind.lower() in CustomerKind.values else (
            _KIND_ALIASES.get(raw_kind, "") if raw_kind else CustomerKind.COMPANY
        )
        if not kind:
            problems.append(("kind", self.msg["kind"]))
        level = values.get("level", "").upper() or Level.B
        if level not in Level.values:
            problems.append(("level", self.msg["level"]))
        cleaned = {
            "name": name, "name_key": self.name_key(name), "kind": kind,
            "phone": self.phone(values, problems),
            "email": self.email(values, problems),
            "industry": self.text(values, "industry", problems),
            "level": level,
            "city": self.text(values, "city", problems),
            "region": self.text(values, "region", problems),
            "source": self.source(values, problems),
            "channel": self.text(values, "channel", problems),
            "note": values.get("note", ""),
            "owner": self.owner(values, problems),
        }
        return cleaned, problems

    def keys(self, cleaned: dict[str, Any]) -> list[tuple[str, str, str]]:
        keys = []
        if cleaned["phone"]:
            keys.append(("p", "phone", cleaned["phone"]))
        if cleaned["kind"] == CustomerKind.COMPANY and cleaned["name_key"]:
            keys.append(("n", "name", cleaned["name_key"]))
        return keys

    def existing(self, kind: str, values: list[str]) -> set[str]:
        column = {"p": "phone", "n": "name_key"}[kind]
        found: set[str] = set()
        base = self.model.objects.filter(merged_into__isnull=True)
        for i in range(0, len(values), 900):
            found.update(base.filter(**{f"{column}__in": values[i : i + 900]})
                         .values_list(column, flat=True))
        return found

    def duplicate_message(self, kind: str) -> str:
        return self.msg["dup_db_name"] if kind == "n" else self.msg["dup_db_phone"]

    def prepare(self) -> None:
        return None

    def finish(self) -> None:
        return None

    def build(self, cleaned: dict[str, Any], now: dt.datetime) -> Any:
        owner = cleaned.pop("owner")
        if owner is not None:
            return self.model(**cleaned, owner_id=owner[0], department_id=owner[1],
                              owned_since=now, last_activity_at=now)
        # Nobody named: the customer waits in the importer's department's shared pool.
        return self.model(**cleaned, in_pool=True, pool_department_id=self.home_department_id,
                          department_id=self.home_department_id, released_at=now,
                          last_activity_at=now)


def _records(source: Any, kind: _Kind) -> Iterator[tuple[int, dict[str, str]]]:
    """(row number as a spreadsheet shows it, {field: text}) for every non-blank data row."""
    rows = read_rows(source)
    header = next(rows, None)
    if header is None or not any(header):
        raise _bad_file(_("The file is empty; the first row must hold the column names."))
    mapping = _map_header(header, kind.headers)
    if "name" not in mapping:
        raise _bad_file(
            _("The file has no name column; name the column %(names)s.")
            % {"names": " / ".join(kind.headers["name"][:2])}
        )
    kind.columns = {name: header[i] for name, i in mapping.items()}
    items = list(mapping.items())
    for number, cells in enumerate(rows, start=2):
        if not any(cells):
            continue
        width = len(cells)
        yield number, {name: (cells[i] if i < width else "") for name, i in items}


def _batches(records: Iterator[Any]) -> Iterator[list[Any]]:
    size = BATCH
    batch: list[Any] = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _validate(source: Any, kind: _Kind, report: ImportReport, scratch: _Scratch) -> None:
    """Pass 1: every row checked, errors into the report, nothing written."""
    for batch in _batches(_records(source, kind)):
        kind.owners.load({v["owner_number"] for _n, v in batch if v.get("owner_number")})
        cleaned_rows = []
        for number, values in batch:
            cleaned, problems = kind.clean(values)
            cleaned_rows.append((number, kind.keys(cleaned), problems))

        # Duplicates: earlier in the file (scratch table, then this batch), then the database.
        all_keys = sorted({f"{k}:{v}" for _n, keys, _p in cleaned_rows for k, _f, v in keys})
        seen = scratch.first_rows(all_keys)
        in_db: dict[str, set[str]] = {}
        for prefix in {k for _n, keys, _p in cleaned_rows for k, _f, _v in keys}:
            values_of_kind = sorted({v for _n, keys, _p in cleaned_rows
                                     for k, _f, v in keys if k == prefix})
            in_db[prefix] = kind.existing(prefix, values_of_kind)
        new_keys: list[tuple[str, int]] = []
        bad_rows: list[int] = []
        for number, keys, problems in cleaned_rows:
            for prefix, column, value in keys:
                key = f"{prefix}:{value}"
                first = seen.get(key)
                if first is not None:
                    problems.append((column, kind.msg["dup_file"] % {"row": first}))
                    continue
                seen[key] = number
                new_keys.append((key, number))
                if value in in_db[prefix]:
                    problems.append((column, kind.duplicate_message(prefix)))
            report.rows += 1
            if problems:
                report.rejected += 1
                bad_rows.append(number)
                for column, message in problems:
                    report.add_error(number, kind.columns.get(column, column), message)
            else:
                report.valid += 1
        scratch.remember(new_keys, bad_rows)


def _insert(source: Any, kind: _Kind, report: ImportReport, scratch: _Scratch) -> None:
    """Pass 2: the valid rows, in batches, in one transaction."""
    actor = kind.actor
    with transaction.atomic():
        kind.prepare()
        for batch in _batches(_records(source, kind)):
            bad = scratch.bad_between(batch[0][0], batch[-1][0]) if report.rejected else set()
            now = timezone.now()
            objects = []
            for number, values in batch:
                if number in bad:
                    continue
                cleaned, _problems = kind.clean(values)
                objects.append(kind.build(cleaned, now))
            if not objects:
                continue
            try:
                kind.model.objects.bulk_create(objects, batch_size=BATCH)
            except IntegrityError:
                raise Conflict(
                    _("Someone added some of these records while the file was being checked; "
                      "import the file again."),
                    code="import_conflict",
                ) from None
            ids = [obj.pk for obj in objects if obj.pk is not None]
            low, high = (min(ids), max(ids)) if ids else (None, None)
            report.imported += len(objects)
            report.first_id = low if report.first_id is None else report.first_id
            report.last_id = high if high is not None else report.last_id
            events.emit(kind.event, objects[0], actor=actor, import_id=report.import_id,
                        first_id=low, last_id=high, count=len(objects))
        kind.finish()
        audit.record(
            actor, kind.action, object_type=kind.model._meta.label_lower,
            object_id=report.import_id,
            after={"file": report.file_name, "rows": report.rows, "imported": report.imported,
                   "rejected": report.rejected, "first_id": report.first_id,
                   "last_id": report.last_id, "valid_only": report.valid_only},
        )


def _run(
    kind_class: type[_Kind], source: Any, *, actor: Any, valid_only: bool,
    file_name: str = "",
) -> ImportReport:
    if actor is not None:
        require(actor, "import")
    kind = kind_class(actor)
    if not file_name:
        file_name = Path(str(getattr(source, "name", source))).name
    report = ImportReport(kind=kind.name, file_name=file_name, valid_only=valid_only)
    started = time.monotonic()
    scratch = _Scratch()
    try:
        _validate(source, kind, report, scratch)
        if report.valid and (report.rejected == 0 or valid_only):
            _insert(source, kind, report, scratch)
    finally:
        scratch.close()
    report.seconds = time.monotonic() - started
    logger.info(
        "import done",
        extra={"import_id": report.import_id, "kind": kind.name, "rows": report.rows,
               "imported": report.imported, "rejected": report.rejected,
               "ms": int(report.seconds * 1000)},
    )
    return report


def import_leads(path_or_file: Any, *, actor: Any, valid_only: bool = False,
                 file_name: str = "") -> ImportReport:
    """Import leads from a CSV or .xlsx file (a path or an open binary file).

    A file with any bad row imports nothing unless `valid_only`; file-level problems (empty,
    unreadable, no name column) raise ValidationFailed "bad_file".
    """
    return _run(_LeadKind, path_or_file, actor=actor, valid_only=valid_only,
                file_name=file_name)


def import_customers(path_or_file: Any, *, actor: Any, valid_only: bool = False,
                     file_name: str = "") -> ImportReport:
    """Import customers; same rules as `import_leads`. Customers without an owner number go
    to the importer's department's shared pool."""
    return _run(_CustomerKind, path_or_file, actor=actor, valid_only=valid_only,
                file_name=file_name)


IMPORTERS: dict[str, Callable[..., ImportReport]] = {
    "leads": import_leads, "customers": import_customers,
}


# --- Command line ----------------------------------------------------------------------------
def import_file_cli(args: Any) -> int:
    """`weiying import leads|customers FILE --as-user LOGIN [--valid-only]`: 0 when every row
    was imported, 1 when rows were rejected (the report is written next to the file), 2 when
    the command itself is wrong."""
    import sys

    from django.contrib.auth import get_user_model

    from weiying.core.context import acting_from
    from weiying.core.errors import DomainError

    user = get_user_model().objects.filter(username=args.as_user, is_active=True).first()
    if user is None:
        sys.stderr.write(f"weiying import: no active login {args.as_user!r}\n")
        return 2
    if not os.path.isfile(args.file):
        sys.stderr.write(f"weiying import: no such file {args.file!r}\n")
        return 2
    try:
        with acting_from(None, "cli"):
            report = IMPORTERS[args.kind](args.file, actor=user, valid_only=args.valid_only)
    except DomainError as exc:
        sys.stderr.write(f"weiying import: {exc.message}\n")
        return 1
    sys.stdout.write(f"rows: {report.rows}  valid: {report.valid}  imported: {report.imported}  "
                     f"rejected: {report.rejected}  ({report.seconds:.1f}s)\n")
    if report.rejected:
        errors_path = f"{args.file}.errors.csv"
        with open(errors_path, "w", encoding="utf-8-sig", newline="") as out:
            out.write(report.errors_csv())
        if not report.imported:
            sys.stdout.write("nothing was imported; fix the rows listed in the report, or pass "
                             "--valid-only to import the valid rows\n")
        sys.stdout.write(f"error report: {errors_path}\n")
        return 1
    return 0
