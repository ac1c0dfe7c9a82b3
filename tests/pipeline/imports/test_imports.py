import argparse
import io

import pytest
from openpyxl import Workbook

from tests.conftest import user_of
from weiying.core.errors import PermissionDenied, ValidationFailed
from weiying.core.models import AuditLog, DomainEvent
from weiying.customers.models import Customer
from weiying.pipeline import imports
from weiying.pipeline.imports import import_customers, import_file_cli, import_leads
from weiying.pipeline.models import AssignmentRule, Lead

pytestmark = pytest.mark.django_db


def _csv(tmp_path, text, encoding="utf-8", name="leads.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


GOOD = (
    "姓名,手机,公司,城市,来源,负责人工号,外部编号\n"
    "张三,13812345678,星辰科技,上海,展会,E030,ext-1\n"
    "李四,021-62345678,东方电器,上海,ads,,ext-2\n"
)


def test_all_valid_file_is_imported(company, tmp_path):
    report = import_leads(_csv(tmp_path, GOOD), actor=user_of(company.manager_a))
    assert (report.rows, report.valid, report.imported, report.rejected) == (2, 2, 2, 0)
    zhang = Lead.objects.get(name="张三")
    assert zhang.owner == company.rep_a and zhang.status == "assigned"
    assert zhang.source == "exhibition" and zhang.external_id == "ext-1"
    li = Lead.objects.get(name="李四")
    assert li.phone == "02162345678" and li.owner is None
    assert li.department == company.team_a and li.status == "new"
    assert AuditLog.objects.filter(action="lead.import").count() == 1
    event = DomainEvent.objects.get(name="lead.imported")
    assert event.data["count"] == 2
    assert (event.data["first_id"], event.data["last_id"]) == (report.first_id, report.last_id)


def test_file_with_errors_imports_nothing_and_reports_each_problem(company, tmp_path):
    text = GOOD + ",13900000000,,,,,\n王五,12345,,,电视,E999,\n"
    report = import_leads(_csv(tmp_path, text), actor=user_of(company.manager_a))
    assert report.imported == 0 and Lead.objects.count() == 0
    assert (report.rows, report.valid, report.rejected) == (4, 2, 2)
    assert [(e.row, e.column, e.message) for e in report.errors] == [
        (4, "姓名", "This is required."),
        (5, "手机", "Not a valid mobile or landline number."),
        (5, "来源", "Unknown source; use one of: form, api, import, wecom, oa, referral, ads, "
                   "exhibition, phone, other."),
        (5, "负责人工号", "No active employee with this number that you may assign to."),
    ]
    assert not AuditLog.objects.filter(action="lead.import").exists()
    assert report.errors_csv().splitlines()[1] == "4,姓名,This is required."


def test_valid_only_imports_the_rest(company, tmp_path):
    text = GOOD + "王五,12345,,,,,\n"
    report = import_leads(_csv(tmp_path, text), actor=user_of(company.manager_a),
                          valid_only=True)
    assert (report.imported, report.rejected) == (2, 1)
    assert set(Lead.objects.values_list("name", flat=True)) == {"张三", "李四"}
    assert [(e.row, e.column) for e in report.errors] == [(4, "手机")]


def test_duplicates_in_the_file_and_in_the_database(company, tmp_path, make_lead):
    make_lead(name="老客户", phone="13700000000")
    text = ("name,phone,external_id\n"
            "A,13812345678,x1\n"
            "B,13812345678,x2\n"
            "C,13900000000,x1\n"
            "D,13700000000,\n")
    report = import_leads(_csv(tmp_path, text), actor=user_of(company.admin))
    assert [(e.row, e.column, e.message) for e in report.errors] == [
        (3, "phone", "Duplicate of row 2 in this file."),
        (4, "external_id", "Duplicate of row 2 in this file."),
        (5, "phone", "A record with this phone number already exists."),
    ]
    assert report.imported == 0


def test_gb18030_csv_is_detected(company, tmp_path):
    path = _csv(tmp_path, GOOD, encoding="gb18030")
    report = import_leads(path, actor=user_of(company.manager_a))
    assert report.imported == 2
    assert Lead.objects.get(external_id="ext-1").company_name == "星辰科技"


def test_utf8_with_bom_and_english_headers(company, tmp_path):
    text = "\ufeffName,Phone,Company,WeChat\nAnn,,Acme,ann_wechat1\n"
    report = import_leads(_csv(tmp_path, text), actor=user_of(company.manager_a))
    assert report.imported == 1
    assert Lead.objects.get().wechat == "ann_wechat1"


def test_xlsx_with_numeric_phones(company, tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.append(["姓名", "手机", "公司"])
    sheet.append(["张三", 13812345678, "星辰"])
    sheet.append([None, None, None])
    sheet.append(["李四", "13912345678", None])
    path = tmp_path / "leads.xlsx"
    book.save(path)
    report = import_leads(path, actor=user_of(company.manager_a))
    assert (report.rows, report.imported) == (2, 2)
    assert set(Lead.objects.values_list("phone", flat=True)) == {"13812345678", "13912345678"}


def test_file_object_upload_works(company):
    upload = io.BytesIO(GOOD.encode("utf-8"))
    report = import_leads(upload, actor=user_of(company.manager_a), file_name="x.csv")
    assert report.imported == 2


def test_round_robin_rules_apply_in_turn_and_move_the_pointer(company, tmp_path):
    rule = AssignmentRule.objects.create(name="rr", kind="round_robin", team=company.team_a)
    text = "姓名,手机\n" + "".join(f"L{i},1381234560{i}\n" for i in range(3))
    import_leads(_csv(tmp_path, text), actor=user_of(company.manager_a))
    owners = list(Lead.objects.order_by("pk").values_list("owner_id", flat=True))
    assert owners == [company.rep_a.pk, company.rep_a2.pk, company.rep_a.pk]
    rule.refresh_from_db()
    assert rule.last_assigned_id == company.rep_a.pk


def test_batches_emit_one_event_each(company, tmp_path, monkeypatch):
    monkeypatch.setattr(imports, "BATCH", 2)
    text = "姓名,手机\n" + "".join(f"L{i},1381234560{i}\n" for i in range(5))
    report = import_leads(_csv(tmp_path, text), actor=user_of(company.manager_a))
    assert report.imported == 5
    counts = [e.data["count"] for e in DomainEvent.objects.filter(name="lead.imported")
              .order_by("pk")]
    assert counts == [2, 2, 1]


def test_file_without_name_column_is_refused(company, tmp_path):
    with pytest.raises(ValidationFailed) as exc:
        import_leads(_csv(tmp_path, "phone\n13812345678\n"), actor=user_of(company.admin))
    assert exc.value.code == "bad_file"


def test_import_needs_the_permission(company, tmp_path):
    with pytest.raises(PermissionDenied):
        import_leads(_csv(tmp_path, GOOD), actor=user_of(company.rep_a))


def test_customers_import_with_duplicates_by_name(company, tmp_path):
    text = ("客户名称,类型,手机,行业,等级,负责人工号\n"
            "上海星辰科技有限公司,公司,13812345678,软件,A,E030\n"
            "上海星辰科技,company,,软件,B,\n"
            "张伟,个人,13912345678,,c,\n")
    report = import_customers(_csv(tmp_path, text), actor=user_of(company.manager_a),
                              valid_only=True)
    assert [(e.row, e.column) for e in report.errors] == [(3, "客户名称")]
    assert report.imported == 2
    star = Customer.objects.get(phone="13812345678")
    assert star.owner == company.rep_a and star.level == "A" and not star.in_pool
    assert star.name_key == "上海星辰科技"
    person = Customer.objects.get(name="张伟")
    assert person.kind == "individual" and person.level == "C"
    assert person.in_pool and person.pool_department == company.team_a
    assert DomainEvent.objects.filter(name="customer.imported").count() == 1


def _args(kind, file, user, valid_only=False):
    return argparse.Namespace(kind=kind, file=str(file), as_user=user, valid_only=valid_only)


def test_cli_exit_codes_and_report_file(company, tmp_path, capsys):
    assert import_file_cli(_args("leads", _csv(tmp_path, GOOD), "e020")) == 0
    assert "imported: 2" in capsys.readouterr().out
    bad = _csv(tmp_path, "姓名,手机\n王五,123\n", name="bad.csv")
    assert import_file_cli(_args("leads", bad, "e020")) == 1
    assert (tmp_path / "bad.csv.errors.csv").exists()
    assert import_file_cli(_args("leads", bad, "nobody")) == 2
