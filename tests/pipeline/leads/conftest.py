from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache
from django.utils import translation

from tests.conftest import user_of
from weiying.pipeline.models import AssignmentRule


@pytest.fixture(autouse=True)
def english() -> Any:
    cache.clear()
    with translation.override("en"):
        yield


@pytest.fixture
def make_lead(company: Any) -> Any:
    """make_lead(owner=…, **fields) -> a lead captured by the system (no rules apply when an
    owner is given)."""
    from weiying.pipeline.services.leads import capture_lead

    counter = iter(range(100, 100000))

    def _make(owner: Any = None, **fields: Any) -> Any:
        fields.setdefault("name", "客户")
        fields.setdefault("phone", f"139{next(counter):08d}")
        return capture_lead(actor=None, owner=owner, **fields)

    return _make


@pytest.fixture
def rule(company: Any) -> Any:
    def _rule(kind: str, team: Any, priority: int = 100, **match: Any) -> AssignmentRule:
        return AssignmentRule.objects.create(name=f"{kind} {priority}", kind=kind, team=team,
                                             priority=priority, **match)

    return _rule


__all__ = ["user_of"]


@pytest.fixture
def login(login):
    """These tests read English messages: every client asks for English."""
    return lambda employee, language="en": login(employee, language=language)
