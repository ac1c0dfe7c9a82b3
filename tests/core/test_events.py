import pytest
from django.db import transaction

from weiying.core import events
from weiying.core.models import DomainEvent, EventHandling

pytestmark = pytest.mark.django_db(transaction=True)

seen: list[int] = []


@pytest.fixture
def subscriber():
    seen.clear()

    def on_ticket_opened(event):
        seen.append(event.pk)

    events._SUBSCRIBERS["ticket.opened"].append(on_ticket_opened)
    yield on_ticket_opened
    events._SUBSCRIBERS["ticket.opened"].remove(on_ticket_opened)


@pytest.fixture
def failing():
    def on_ticket_closed(event):
        raise RuntimeError("subscriber broke")

    events._SUBSCRIBERS["ticket.closed"].append(on_ticket_closed)
    yield on_ticket_closed
    events._SUBSCRIBERS["ticket.closed"].remove(on_ticket_closed)


def subject(company_like):
    return company_like


def test_event_is_dispatched_after_commit_and_only_once(subscriber, django_user_model):
    user = django_user_model.objects.create_user("u1", password="x" * 10)
    with transaction.atomic():
        event = events.emit("ticket.opened", user, actor=user, number="GD1")
        assert seen == []  # nothing runs before commit
    assert seen == [event.pk]
    assert DomainEvent.objects.get(pk=event.pk).dispatched_at is not None

    events.replay(DomainEvent.objects.all())
    assert seen == [event.pk]  # a replay skips what was handled


def test_rolled_back_change_leaves_no_event(subscriber, django_user_model):
    user = django_user_model.objects.create_user("u2", password="x" * 10)
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        events.emit("ticket.opened", user)
        raise ZeroDivisionError
    assert DomainEvent.objects.count() == 0
    assert seen == []


def test_failed_subscriber_is_recorded_and_retried_by_replay(failing, django_user_model):
    user = django_user_model.objects.create_user("u3", password="x" * 10)
    with transaction.atomic():
        event = events.emit("ticket.closed", user)
    handling = EventHandling.objects.get(event=event)
    assert handling.status == "failed"
    assert "subscriber broke" in handling.error
    assert DomainEvent.objects.get(pk=event.pk).dispatched_at is None

    events.replay()
    assert EventHandling.objects.get(event=event).attempts >= 2


def test_unknown_event_names_are_a_bug():
    with pytest.raises(ValueError):
        events.emit("lead.teleported", None)
