import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from weiying.pipeline.models import Lead

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path


def test_upload_page_needs_the_import_permission(company, login):
    assert login(company.rep_a).get(reverse("pipeline:import_upload")).status_code == 403
    assert login(company.manager_a).get(reverse("pipeline:import_upload")).status_code == 200


def test_upload_shows_result_and_error_csv_to_the_importer_only(company, login):
    client = login(company.manager_a)
    data = "姓名,手机\n张三,13812345678\n李四,123\n".encode("gb18030")
    res = client.post(reverse("pipeline:import_upload"),
                      {"kind": "leads", "file": SimpleUploadedFile("l.csv", data)})
    assert res.status_code == 302
    assert Lead.objects.count() == 0
    page = client.get(res.url)
    assert page.status_code == 200
    assert page.context["report"].rejected == 1
    csv = client.get(res.url, {"download": "errors"})
    assert csv["Content-Type"].startswith("text/csv")
    assert "3,手机,Not a valid mobile or landline number." in csv.content.decode("utf-8-sig")
    assert login(company.director).get(res.url).status_code == 404


def test_upload_without_a_name_column_shows_the_problem(company, login):
    res = login(company.manager_a).post(
        reverse("pipeline:import_upload"),
        {"kind": "leads", "file": SimpleUploadedFile("l.csv", b"phone\n13812345678\n")},
    )
    assert res.status_code == 400 and "no name column" in res.content.decode()
