"""The default sales pipeline, seeded by a data migration and restorable by `seed_pipeline`."""

from __future__ import annotations

from typing import Any

STAGES = [
    ("初步接洽", 10, "open"),
    ("需求确认", 25, "open"),
    ("方案报价", 50, "open"),
    ("商务谈判", 75, "open"),
    ("赢单", 100, "won"),
    ("输单", 0, "lost"),
]


def seed_pipeline(pipeline_model: Any, stage_model: Any) -> None:
    """Create the default pipeline when there is none (models passed in, so a migration can
    call it with its historical models)."""
    if pipeline_model.objects.exists():
        return
    pipeline = pipeline_model.objects.create(name="标准销售流程", is_default=True)
    for order, (name, probability, kind) in enumerate(STAGES, start=1):
        stage_model.objects.create(pipeline=pipeline, name=name, order=order,
                                   probability=probability, kind=kind)
