import pytest
from django.urls import reverse
from django.utils import translation

from tests.conftest import user_of
from weiying.core.errors import PermissionDenied, ValidationFailed
from weiying.core.models import AuditLog
from weiying.pipeline.models import Pipeline
from weiying.pipeline.services.opportunities import (
    add_stage,
    create_pipeline,
    set_default_pipeline,
    update_stage,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


def _default():
    return Pipeline.objects.get(is_default=True)


def _names(pipeline):
    return list(pipeline.stages.order_by("order").values_list("name", "kind"))


def test_create_pipeline_has_one_won_and_one_lost_stage(company):
    pipeline = create_pipeline(actor=user_of(company.admin), name="渠道销售",
                               stages=[("报备", 10), ("签约谈判", 60)])

    assert _names(pipeline) == [("报备", "open"), ("签约谈判", "open"), ("Won", "won"),
                                ("Lost", "lost")]
    assert list(pipeline.stages.order_by("order").values_list("order", flat=True)) == [1, 2, 3, 4]
    assert AuditLog.objects.filter(action="pipeline.create").count() == 1


def test_pipeline_name_must_be_unique(company):
    with pytest.raises(ValidationFailed) as exc:
        create_pipeline(actor=user_of(company.admin), name="标准销售流程")

    assert str(exc.value.message) == "A pipeline with this name already exists."


def test_new_default_pipeline_replaces_the_old_default(company):
    old = _default()
    new = create_pipeline(actor=user_of(company.admin), name="新流程")

    set_default_pipeline(actor=user_of(company.admin), pipeline=new)

    assert list(Pipeline.objects.filter(is_default=True)) == [new]
    old.refresh_from_db()
    assert old.is_default is False


def test_added_open_stage_goes_before_won_and_lost(company):
    add_stage(actor=user_of(company.admin), pipeline=_default(), name="合同审批",
              probability=90)

    assert _names(_default())[-3:] == [("合同审批", "open"), ("赢单", "won"), ("输单", "lost")]


def test_added_stage_at_a_position(company):
    add_stage(actor=user_of(company.admin), pipeline=_default(), name="样品测试",
              probability=40, position=3)

    assert [n for n, _k in _names(_default())][:4] == ["初步接洽", "需求确认", "样品测试", "方案报价"]


@pytest.mark.parametrize("probability", [101, -1, "abc", None])
def test_probability_must_be_0_to_100(company, probability):
    with pytest.raises(ValidationFailed) as exc:
        add_stage(actor=user_of(company.admin), pipeline=_default(), name="X",
                  probability=probability)

    assert exc.value.field == "probability"
    assert str(exc.value.message) == "The win probability must be a whole number from 0 to 100."


def test_a_second_won_stage_is_refused(company):
    with pytest.raises(ValidationFailed) as exc:
        add_stage(actor=user_of(company.admin), pipeline=_default(), name="大赢",
                  probability=100, kind="won")

    assert str(exc.value.message) == (
        "A pipeline has exactly one won and one lost stage; edit those instead.")


def test_update_stage_probability_and_position(company):
    stage = _default().stages.get(name="商务谈判")

    update_stage(actor=user_of(company.admin), stage=stage, probability=80, position=1)

    stage.refresh_from_db()
    assert (stage.probability, stage.order) == (80, 1)
    assert [n for n, _k in _names(_default())] == [
        "商务谈判", "初步接洽", "需求确认", "方案报价", "赢单", "输单"]


def test_won_stage_cannot_move_among_open_stages(company):
    won = _default().stages.get(kind="won")

    with pytest.raises(ValidationFailed) as exc:
        update_stage(actor=user_of(company.admin), stage=won, position=1)

    assert exc.value.field == "position"


def test_duplicate_stage_name_is_refused(company):
    stage = _default().stages.get(name="商务谈判")

    with pytest.raises(ValidationFailed) as exc:
        update_stage(actor=user_of(company.admin), stage=stage, name="方案报价")

    assert exc.value.field == "name"


def test_rep_may_not_manage_pipelines(company, login):
    with pytest.raises(PermissionDenied):
        add_stage(actor=user_of(company.rep_a), pipeline=_default(), name="X", probability=1)

    response = login(company.rep_a).get(reverse("pipeline:pipeline_settings"))

    assert response.status_code == 403


def test_settings_page_adds_a_stage(company, login):
    client = login(company.admin)

    response = client.post(reverse("pipeline:pipeline_settings"), {
        "action": "add_stage", "pipeline": _default().pk, "name": "合同审批",
        "probability": "90",
    })

    assert response.status_code == 302
    assert _default().stages.filter(name="合同审批", probability=90).exists()
    page = client.get(reverse("pipeline:pipeline_settings"))
    assert page.status_code == 200
    assert "合同审批" in page.content.decode()


def test_settings_page_shows_refusal(company, login):
    client = login(company.admin)

    response = client.post(reverse("pipeline:pipeline_settings"), {
        "action": "add_stage", "pipeline": _default().pk, "name": "X", "probability": "150",
    }, follow=True, HTTP_ACCEPT_LANGUAGE="en")

    assert "The win probability must be a whole number from 0 to 100." in (
        response.content.decode())
    assert not _default().stages.filter(name="X").exists()
