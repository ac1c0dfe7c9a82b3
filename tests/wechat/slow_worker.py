"""A worker process for the kill test: drains the inbox with a slow handler for WeCom text
messages whose effect is one audit row per message id. Run as `python -m
tests.wechat.slow_worker` with DATABASE_URL pointing at the test database."""

import os
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "weiying.conf.settings")

import django  # noqa: E402

django.setup()

from weiying.core.models import AuditLog  # noqa: E402
from weiying.wechat import inbox  # noqa: E402


@inbox.handles("wecom", "msg:text")
def slow_text(row, message):
    time.sleep(float(os.environ.get("SLOW_SECONDS", "0.3")))
    if not AuditLog.objects.filter(action="test.effect", object_id=message["MsgId"]).exists():
        AuditLog.objects.create(action="test.effect", object_id=message["MsgId"])


if __name__ == "__main__":
    once = "--once" in sys.argv
    while True:
        inbox.sweep()
        done = inbox.drain(limit=50)
        sys.stdout.write(f"drained {done}\n")
        sys.stdout.flush()
        if once and not inbox.due_ids(1):
            break
        time.sleep(0.05)
