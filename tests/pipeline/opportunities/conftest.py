from tests.pipeline.opportunities.factories import clock  # noqa: F401
