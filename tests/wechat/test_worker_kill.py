"""A worker killed with SIGKILL in the middle of its work loses nothing: after a restart
every stored message ends done (or dead-lettered), each with exactly one business effect."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from tests.wechat.conftest import CORP_ID, wecom_xml
from weiying.core.models import AuditLog
from weiying.wechat import inbox
from weiying.wechat.models import InboxMessage

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


def _database_url() -> str:
    conf = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{conf['NAME']}"
    user = conf.get("USER") or "postgres"
    return f"postgres://{user}@{conf.get('HOST') or '127.0.0.1'}:{conf.get('PORT') or 5432}/" \
           f"{conf['NAME']}"


def _worker(*args: str, lease: int) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": _database_url(), "WECHAT_INBOX_LEASE_SECONDS": str(lease),
           "DJANGO_SETTINGS_MODULE": "weiying.conf.settings", "LOG_LEVEL": "WARNING",
           "SLOW_SECONDS": "0.3"}
    return subprocess.Popen([sys.executable, "-m", "tests.wechat.slow_worker", *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_sigkill_mid_processing_loses_nothing(wechat):
    for i in range(12):
        message = {**dict(ToUserName=CORP_ID, FromUserName="zhangsan", CreateTime="1700000000",
                          MsgType="text", Content=f"第{i}条", AgentID="1000002"),
                   "MsgId": str(9000 + i)}
        inbox.receive("wecom", wecom_xml(**message), message)
    # The test process must not process them itself (immediate tasks ran after commit):
    InboxMessage.objects.update(status="pending", attempts=0, handler="", handled_at=None)
    AuditLog.objects.filter(action="test.effect").delete()

    worker = _worker(lease=2)
    deadline = time.monotonic() + 60
    while InboxMessage.objects.filter(status="done").count() < 3:
        if time.monotonic() > deadline or worker.poll() is not None:
            worker.kill()
            pytest.fail("the worker did not work: " + worker.communicate()[0].decode()[-3000:])
        time.sleep(0.05)
    # Kill it while it holds a row (a handler sleeps 0.3 s inside its transaction).
    while not InboxMessage.objects.filter(status="processing").exists():
        time.sleep(0.01)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)

    stuck = InboxMessage.objects.filter(status="processing").count()
    assert stuck == 1
    assert InboxMessage.objects.filter(status="done").count() < 12

    # Restart after the lease ran out: the sweeper returns the stuck row, the rest is drained.
    time.sleep(2.2)
    restarted = _worker("--once", lease=2)
    output = restarted.communicate(timeout=120)[0].decode()
    assert restarted.returncode == 0, output

    statuses = list(InboxMessage.objects.values_list("status", flat=True))
    assert statuses == ["done"] * 12
    effects = sorted(AuditLog.objects.filter(action="test.effect")
                     .values_list("object_id", flat=True))
    assert effects == [str(9000 + i) for i in range(12)]
