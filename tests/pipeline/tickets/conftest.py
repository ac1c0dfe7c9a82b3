from collections.abc import Iterator

import pytest
from django.utils import translation


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    """Messages are asserted on their English msgids, whatever the translations say."""
    with translation.override("en"):
        yield
