from types import SimpleNamespace

from django.template import engines

TEMPLATE = engines["django"].from_string("{% load web_options %}{% select_options items chosen %}")


def test_options_from_pairs_mark_the_chosen_value_given_as_text():
    html = TEMPLATE.render({"items": [(1, "甲"), (12, "乙")], "chosen": "12"})

    assert html == '<option value="1">甲</option><option value="12" selected>乙</option>'


def test_options_from_instances_escape_their_names():
    people = [SimpleNamespace(pk=7, name='<b>"王"</b>')]

    html = TEMPLATE.render({"items": people, "chosen": 7})

    assert html == ('<option value="7" selected>&lt;b&gt;&quot;王&quot;&lt;/b&gt;</option>')


def test_nothing_chosen_marks_nothing():
    assert "selected" not in TEMPLATE.render({"items": [(1, "a")], "chosen": None})
