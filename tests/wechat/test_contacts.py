import datetime as dt

import pytest
from django.utils import timezone

from tests.wechat.sync_world import drain_all, replay_last, sandbox, snapshot
from weiying.core.models import AuditLog
from weiying.customers import services as customers
from weiying.customers.models import Customer, OwnershipChange, WeChatIdentity
from weiying.org import services as org
from weiying.wechat import contacts
from weiying.wechat.contacts import full_sync_contacts
from weiying.wechat.models import CustomerFollow
from weiying.wechat.sandbox import simulate

pytestmark = pytest.mark.django_db
__all__ = ["sandbox"]

T0 = 1_760_000_000  # a createtime (2025-10-09)
VIP = {"group_name": "客户等级", "tag_name": "重要客户", "tag_id": "etVIP", "type": 1}
EXPO = {"group_name": "来源", "tag_name": "展会", "tag_id": "etEXPO", "type": 1}


@pytest.fixture
def reps(company, sandbox):
    """rep_a, rep_a2 and rep_b have WeCom accounts, in the sandbox's directory too."""
    for employee, userid in ((company.rep_a, "lilei"), (company.rep_a2, "zhaoli"),
                             (company.rep_b, "qianb")):
        org.set_wecom_userid(actor=None, employee=employee, wecom_userid=userid, check=False)
        employee.refresh_from_db()
    sandbox.seed({"departments": [{"id": 1, "name": "总部", "parentid": 0}], "users": [
        {"userid": "lilei", "name": "李销售"}, {"userid": "zhaoli", "name": "赵销售"},
        {"userid": "qianb", "name": "钱销售"}]})
    return company


def contact(n, *follows, **extra):
    return {"external_userid": f"wmEXT{n:04d}", "name": f"客户{n}",
            "unionid": f"oUNION{n:04d}", "follow_user": list(follows), **extra}


def follow(userid, at, **extra):
    return {"userid": userid, "createtime": at, **extra}


def test_a_full_sync_pages_over_more_than_100_contacts_a_rep(reps, sandbox):
    people = [contact(n, follow("lilei", T0 + n, remark=f"备注{n}", state="expo2026",
                                add_way=1)) for n in range(150)]
    # Two reps follow these; zhaoli added them first, so zhaoli owns them.
    people += [contact(n, follow("lilei", T0 + 500), follow("zhaoli", T0 + 100))
               for n in range(150, 160)]
    sandbox.seed({"external_contacts": people})

    result = full_sync_contacts()

    assert Customer.objects.filter(source="wecom").count() == 160
    assert result["customers_created"] == 160
    assert result["follows_created"] == 170
    # get_follow_user_list 1, corp tags 1, batch pages: 170 follows / 100 a page = 2.
    assert sandbox.calls["/wecom/cgi-bin/externalcontact/batch/get_by_user"] == 2
    first = Customer.objects.get(wechat_identities__value="wmEXT0007")
    assert (first.kind, first.name, first.owner, first.department) == (
        "individual", "客户7", reps.rep_a, reps.team_a)
    assert set(first.wechat_identities.values_list("kind", "value")) == {
        ("wecom_external", "wmEXT0007"), ("unionid", "oUNION0007")}
    f = CustomerFollow.objects.get(external_userid="wmEXT0007")
    assert (f.employee, f.relation, f.remark, f.state, f.add_way, f.added_at) == (
        reps.rep_a, "owner", "备注7", "expo2026", 1, dt.datetime.fromtimestamp(T0 + 7, dt.UTC))
    shared = Customer.objects.get(wechat_identities__value="wmEXT0155")
    assert shared.owner == reps.rep_a2
    assert list(shared.collaborators.all()) == [reps.rep_a]
    assert dict(CustomerFollow.objects.filter(customer=shared).values_list(
        "employee_id", "relation")) == {reps.rep_a2.pk: "owner", reps.rep_a.pk: "collaborator"}
    assert result["api_calls"] >= 3


def test_the_bulk_write_is_audited_once_per_batch(reps, sandbox):
    sandbox.seed({"external_contacts": [contact(n, follow("lilei", T0 + n))
                                        for n in range(30)]})

    full_sync_contacts(write_batch=10)

    assert AuditLog.objects.filter(action="customer.bulk_create").count() == 3
    assert AuditLog.objects.filter(action="wechat.follows_sync").count() == 3
    assert OwnershipChange.objects.filter(action="create").count() == 30


def test_tags_arrive_grouped_and_companies_keep_their_people(reps, sandbox):
    sandbox.seed({"external_contacts": [
        contact(1, follow("lilei", T0, tags=[VIP, EXPO])),
        contact(2, follow("qianb", T0), type=2, corp_name="星辰科技", position="采购经理"),
        contact(3, follow("qianb", T0 + 5), type=2, corp_name="星辰科技", position="总经理"),
    ]})

    full_sync_contacts()

    tagged = Customer.objects.get(wechat_identities__value="wmEXT0001")
    assert sorted(tagged.tags.values_list("group", "name")) == [
        ("客户等级", "重要客户"), ("来源", "展会")]
    company = Customer.objects.get(wechat_identities__value="wmEXT0002")
    assert (company.kind, company.name, company.owner) == ("company", "星辰科技", reps.rep_b)
    assert Customer.objects.get(wechat_identities__value="wmEXT0003") == company
    assert sorted(company.contacts.values_list("name", "title")) == [
        ("客户2", "采购经理"), ("客户3", "总经理")]


def test_a_known_customer_is_found_by_its_union_id_not_duplicated(reps, sandbox):
    known = customers.create_customer(actor=None, name="老客户", kind="individual",
                                      owner=reps.rep_b,
                                      identities=[("unionid", "oUNION0001")])
    sandbox.seed({"external_contacts": [contact(1, follow("lilei", T0))]})

    full_sync_contacts()

    assert Customer.objects.count() == 1
    known.refresh_from_db()
    assert known.owner == reps.rep_b  # the sync never takes a customer from its owner
    assert CustomerFollow.objects.get().relation == "collaborator"
    assert list(known.collaborators.all()) == [reps.rep_a]


def test_a_second_full_sync_changes_nothing(reps, sandbox):
    sandbox.seed({"external_contacts": [
        contact(n, follow("lilei", T0 + n, tags=[VIP]), follow("zhaoli", T0 + 900))
        for n in range(20)]})
    full_sync_contacts()
    before = snapshot()

    result = full_sync_contacts()

    assert snapshot() == before
    assert (result["customers_created"], result["follows_created"],
            result["follows_updated"]) == (0, 0, 0)


def test_a_tie_ended_while_no_callback_came_is_ended_by_the_next_sync(reps, sandbox):
    sandbox.seed({"external_contacts": [contact(1, follow("lilei", T0))]})
    full_sync_contacts()
    del sandbox.follows[("wmEXT0001", "lilei")]

    result = full_sync_contacts()

    f = CustomerFollow.objects.get()
    assert (result["follows_ended"], f.ended_by) == (1, "")
    assert f.retain_until == timezone.localdate() + dt.timedelta(days=180)


# --- tags through the corp tag list -----------------------------------------------------------
LIBRARY = [
    {"group_id": "etGRADE", "group_name": "客户等级", "tag": [
        {"id": "etVIP", "name": "重要客户"}, {"id": "etNORMAL", "name": "普通客户"}]},
    {"group_id": "etSOURCE", "group_name": "来源", "tag": [{"id": "etEXPO", "name": "展会"}]},
]
RULE = {"group_name": "规则组", "tag_name": "高意向", "tag_id": "etRULE", "type": 3}
TEA = {"group_name": "", "tag_name": "爱喝茶", "type": 2}


def test_a_full_sync_names_tags_from_one_read_of_the_corp_tag_list(reps, sandbox):
    sandbox.seed({"corp_tags": LIBRARY, "external_contacts": [
        contact(n, follow("lilei", T0 + n, tags=[{"tag_id": "etVIP"}, {"tag_id": "etEXPO"}]),
                follow("zhaoli", T0 + 900 + n, tags=[{"tag_id": "etNORMAL"}]))
        for n in range(120)]})
    sandbox.calls.clear()

    result = full_sync_contacts()

    assert sandbox.calls["/wecom/cgi-bin/externalcontact/get_corp_tag_list"] == 1
    assert sandbox.calls["/wecom/cgi-bin/externalcontact/get"] == 0
    assert result["detail_reads"] == 0
    customer = Customer.objects.get(wechat_identities__value="wmEXT0042")
    assert sorted(customer.tags.values_list("group", "name")) == [
        ("客户等级", "普通客户"), ("客户等级", "重要客户"), ("来源", "展会")]
    f = CustomerFollow.objects.get(external_userid="wmEXT0042", employee=reps.rep_a)
    assert f.tags == [{"id": "etVIP", "name": "重要客户", "group": "客户等级"},
                      {"id": "etEXPO", "name": "展会", "group": "来源"}]


def test_only_a_contact_with_a_tag_the_list_does_not_know_is_read_again(reps, sandbox):
    sandbox.seed({"corp_tags": LIBRARY, "external_contacts": [
        contact(1, follow("lilei", T0, tags=[{"tag_id": "etVIP"}, RULE, TEA])),
        contact(2, follow("lilei", T0 + 1, tags=[{"tag_id": "etVIP"}, TEA])),
        contact(3, follow("lilei", T0 + 2))]})
    sandbox.calls.clear()

    result = full_sync_contacts()

    assert sandbox.calls["/wecom/cgi-bin/externalcontact/get"] == 1
    assert result["detail_reads"] == 1
    ruled = Customer.objects.get(wechat_identities__value="wmEXT0001")
    assert sorted(ruled.tags.values_list("group", "name")) == [
        ("", "爱喝茶"), ("客户等级", "重要客户"), ("规则组", "高意向")]
    # batch/get_by_user has no id for a personal tag, so the first sync cannot see it
    plain = Customer.objects.get(wechat_identities__value="wmEXT0002")
    assert list(plain.tags.values_list("name", flat=True)) == ["重要客户"]


def test_personal_tags_from_a_callback_survive_the_next_full_sync(reps, sandbox):
    sandbox.seed({"corp_tags": LIBRARY, "external_contacts": [
        contact(1, follow("lilei", T0, tags=[{"tag_id": "etVIP"}]))]})
    full_sync_contacts()
    simulate.edit_contact(sandbox, external_userid="wmEXT0001", userid="lilei",
                          tags=[{"tag_id": "etVIP"}, TEA])
    drain_all()
    customer = Customer.objects.get()
    assert sorted(customer.tags.values_list("name", flat=True)) == ["爱喝茶", "重要客户"]
    before = snapshot()

    result = full_sync_contacts()

    assert snapshot() == before
    assert result["follows_updated"] == 0
    # a corp tag taken off in WeCom still goes; the personal one stays
    sandbox.follows[("wmEXT0001", "lilei")].tags = [TEA]
    full_sync_contacts()
    assert list(customer.tags.values_list("name", flat=True)) == ["爱喝茶"]
    assert CustomerFollow.objects.get().tags == [{"id": "", "name": "爱喝茶", "group": ""}]


def test_a_refused_tag_list_stops_the_sync_before_anything_is_written(reps, sandbox):
    from weiying.wechat import client

    sandbox.seed({"external_contacts": [contact(1, follow("lilei", T0, tags=[VIP]))]})
    sandbox.faults.arm("rate_limit", path="/wecom/cgi-bin/externalcontact/get_corp_tag_list")

    with pytest.raises(client.RateLimited):
        full_sync_contacts()

    assert Customer.objects.count() == CustomerFollow.objects.count() == 0
    assert sandbox.calls["/wecom/cgi-bin/externalcontact/batch/get_by_user"] == 0


# --- callbacks --------------------------------------------------------------------------------
@pytest.fixture
def arrivals(monkeypatch):
    from weiying.wechat import channels

    seen = []

    def record_arrival(**kwargs):
        seen.append(kwargs)

    monkeypatch.setattr(channels, "record_arrival", record_arrival)
    return seen


def test_an_added_contact_becomes_a_customer_owned_by_the_rep(reps, sandbox, arrivals):
    simulate.add_contact(sandbox, userid="lilei", name="王女士", external_userid="wmNEW1",
                         unionid="oNEWUNION1", state_value="expo2026")
    drain_all()

    customer = Customer.objects.get(wechat_identities__value="wmNEW1")
    assert (customer.name, customer.kind, customer.owner, customer.source) == (
        "王女士", "individual", reps.rep_a, "wecom")
    assert WeChatIdentity.objects.filter(customer=customer, kind="unionid").exists()
    assert CustomerFollow.objects.get(customer=customer).state == "expo2026"
    assert [(a["state"], a["external_id"], a["employee"], a["customer"]) for a in arrivals] == [
        ("expo2026", "wmNEW1", reps.rep_a, customer)]
    assert AuditLog.objects.filter(action="customer.create", object_id=str(customer.pk)).exists()

    before = snapshot()
    replay_last()
    replay_last()
    assert snapshot() == before


def test_an_add_without_a_state_records_no_arrival(reps, sandbox, arrivals):
    simulate.add_contact(sandbox, userid="lilei", name="无渠道", external_userid="wmNEW2")
    drain_all()

    assert Customer.objects.filter(wechat_identities__value="wmNEW2").exists()
    assert arrivals == []


def test_a_second_rep_adding_the_customer_becomes_a_collaborator(reps, sandbox, arrivals):
    simulate.add_contact(sandbox, userid="lilei", name="王女士", external_userid="wmNEW1")
    simulate.add_contact(sandbox, userid="zhaoli", external_userid="wmNEW1")
    drain_all()

    customer = Customer.objects.get()
    assert customer.owner == reps.rep_a
    assert list(customer.collaborators.all()) == [reps.rep_a2]
    before = snapshot()
    replay_last()
    assert snapshot() == before


def test_an_edit_refreshes_the_remark_and_the_tags(reps, sandbox):
    sandbox.seed({"external_contacts": [contact(1, follow("lilei", T0, tags=[VIP]))]})
    full_sync_contacts()
    customer = Customer.objects.get()
    customers.set_tags(actor=None, customer=customer, names=["重要客户", "CRM里加的"])

    simulate.edit_contact(sandbox, external_userid="wmEXT0001", userid="lilei",
                          remark="王总", tags=[EXPO])
    drain_all()

    f = CustomerFollow.objects.get()
    assert (f.remark, [t["name"] for t in f.tags]) == ("王总", ["展会"])
    assert sorted(customer.tags.values_list("name", flat=True)) == ["CRM里加的", "展会"]
    before = snapshot()
    replay_last()
    replay_last()
    assert snapshot() == before


def test_the_customer_removing_the_owner_hands_the_customer_to_the_longest_follower(
        reps, sandbox):
    sandbox.seed({"external_contacts": [contact(1, follow("lilei", T0),
                                                follow("qianb", T0 + 10),
                                                follow("zhaoli", T0 + 20))]})
    full_sync_contacts()
    customer = Customer.objects.get()
    assert customer.owner == reps.rep_a

    simulate.remove_contact(sandbox, external_userid="wmEXT0001", userid="lilei",
                            by="customer")
    drain_all()

    ended = CustomerFollow.objects.get(employee=reps.rep_a)
    assert ended.ended_by == "by_customer"
    assert ended.retain_until == timezone.localdate(ended.ended_at) + dt.timedelta(days=180)
    customer.refresh_from_db()
    assert customer.owner == reps.rep_b  # followed since T0 + 10, before zhaoli
    assert CustomerFollow.objects.get(employee=reps.rep_b).relation == "owner"
    assert list(customer.collaborators.all()) == [reps.rep_a2]
    change = OwnershipChange.objects.filter(customer=customer, action="assign").get()
    assert (change.from_owner, change.to_owner) == (reps.rep_a, reps.rep_b)
    assert AuditLog.objects.filter(action="customer.assign", object_id=str(customer.pk),
                                   actor__isnull=True).exists()
    before = snapshot()
    replay_last()
    replay_last()
    assert snapshot() == before


def test_the_rep_removing_the_last_tie_keeps_the_owner_and_marks_the_customer(
        reps, sandbox, settings):
    settings.WEIYING = {**settings.WEIYING, "WECHAT_RETENTION_DAYS": 30}
    sandbox.seed({"external_contacts": [contact(1, follow("lilei", T0))]})
    full_sync_contacts()

    simulate.remove_contact(sandbox, external_userid="wmEXT0001", userid="lilei",
                            by="employee")
    drain_all()

    ended = CustomerFollow.objects.get()
    assert ended.ended_by == "by_employee"
    assert ended.retain_until == timezone.localdate(ended.ended_at) + dt.timedelta(days=30)
    customer = Customer.objects.get()
    assert customer.owner == reps.rep_a
    assert list(customer.tags.values_list("name", flat=True)) == [contacts.no_contact_tag()]
    assert contacts.no_contact_tag() == "企微无人跟进"
    before = snapshot()
    replay_last()
    assert snapshot() == before

    # The rep adds the customer back: the tie resumes and the mark goes.
    simulate.add_contact(sandbox, userid="lilei", external_userid="wmEXT0001")
    drain_all()
    ended.refresh_from_db()
    assert (ended.ended_at, ended.ended_by, ended.retain_until) == (None, "", None)
    assert list(customer.tags.values_list("name", flat=True)) == []


def test_a_collaborator_removed_stops_collaborating(reps, sandbox):
    sandbox.seed({"external_contacts": [contact(1, follow("lilei", T0),
                                                follow("zhaoli", T0 + 10))]})
    full_sync_contacts()

    simulate.remove_contact(sandbox, external_userid="wmEXT0001", userid="zhaoli",
                            by="employee")
    drain_all()

    customer = Customer.objects.get()
    assert (customer.owner, list(customer.collaborators.all())) == (reps.rep_a, [])
