import datetime as dt

import pytest
from django.utils import timezone

from weiying.core.errors import ValidationFailed
from weiying.core.pagination import keyset_page
from weiying.pipeline.models import Lead

pytestmark = pytest.mark.django_db


def test_keyset_pages_walk_every_row_once_with_ties():
    base = timezone.now()
    for i in range(23):
        # many rows share a timestamp so the id tiebreak matters
        Lead.objects.create(name=f"L{i}", phone="13900000000", created_at=base,
                            last_activity_at=base - dt.timedelta(minutes=i // 5))
    seen, cursor = [], None
    while True:
        page = keyset_page(Lead.objects.all(), ["-last_activity_at", "-id"], cursor=cursor,
                           size=4)
        seen += [lead.pk for lead in page.items]
        cursor = page.next_cursor
        if not cursor:
            break
    expected = list(Lead.objects.order_by("-last_activity_at", "-id").values_list("pk", flat=True))
    assert seen == expected


def test_a_damaged_cursor_is_a_clear_error():
    with pytest.raises(ValidationFailed) as err:
        keyset_page(Lead.objects.all(), ["-id"], cursor="%%%not-base64")
    assert err.value.field == "cursor"
