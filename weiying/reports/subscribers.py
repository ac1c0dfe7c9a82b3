"""The analysis layer's event subscribers (found by weiying.core.events.autodiscover)."""

from weiying.reports import rollup  # noqa: F401  (the funnel roll-up's subscribers)
