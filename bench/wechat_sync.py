"""Benchmark of the WeCom customer sync: seed the sandbox in process with N external contacts
over M reps, run `weiying.wechat.contacts.full_sync_contacts` into a fresh database, and
print a table: time, API calls (the sandbox's own counter), customers a second, and whether
the calls stay within WeCom's rate limits.

    uv run python -m bench.wechat_sync [--customers 100000 --reps 2000] [--db sqlite|postgres]

See bench/README.md ("WeCom customer sync").
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import run

HERE = Path(__file__).resolve().parent
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/"
GOAL_SECONDS = 600  # 100,000 customers over 2,000 reps in under 10 minutes
# WeCom's documented base limits, per company and per API: 10,000 calls a minute and
# 150,000 an hour (a call past them answers 45009).
LIMIT_PER_MINUTE = 10_000
LIMIT_PER_HOUR = 150_000
T0 = 1_700_000_000


def _configure(args: argparse.Namespace) -> str:
    data_dir = HERE / ".data" / "wechat_sync"
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ["WEIYING_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["DJANGO_SETTINGS_MODULE"] = "weiying.conf.settings"
    if args.db == "postgres":
        import psycopg

        base = args.pg_url.rstrip("/") + "/"
        name = "wy_bench_wechat_sync"
        with psycopg.connect(base + "postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        os.environ["DATABASE_URL"] = base + name
        return f"PostgreSQL ({name})"
    path = data_dir / "bench.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    os.environ["DATABASE_URL"] = f"sqlite:///{path}"
    return "SQLite (fresh file)"


# The corp tag library of the benchmark's company: what a tagged contact carries.
LIBRARY = [
    {"group_id": "etGRADE", "group_name": "等级", "tag": [
        {"id": "etA", "name": "重要"}, {"id": "etB", "name": "普通"}, {"id": "etC", "name": "潜在"}]},
    {"group_id": "etSOURCE", "group_name": "来源", "tag": [
        {"id": "etEXPO", "name": "展会"}, {"id": "etWEB", "name": "官网"}]},
]
LIBRARY_IDS = [t["id"] for g in LIBRARY for t in g["tag"]]


def _seed_sandbox(customers: int, reps: int, shared: float, tagged: float,
                  rng: random.Random) -> Any:
    from weiying.wechat.sandbox import SandboxConfig, SandboxState
    from weiying.wechat.sandbox.state import Department, ExternalContact, Follow, User

    state = SandboxState(SandboxConfig())
    with state.lock:
        state.add_corp_tags(LIBRARY)
        state.departments[1] = Department(1, "总部")
        for r in range(reps):
            userid = f"rep{r:05d}"
            state.users[userid] = User(userid, f"销售{r}")
        userids = list(state.users)
        for n in range(customers):
            ext = f"wmBENCH{n:08d}"
            company = n % 10 == 0
            state.contacts[ext] = ExternalContact(
                ext, f"客户{n}", type=2 if company else 1, unionid=f"oBENCH{n:08d}",
                corp_name=f"企业{n}" if company else "")
            owner = userids[n % reps]
            tags = ([{"tag_id": tag_id, "type": 1} for tag_id in rng.sample(LIBRARY_IDS, 2)]
                    if rng.random() < tagged else [])
            state.follows[(ext, owner)] = Follow(ext, owner, T0 + n, remark=f"备注{n}",
                                                 state="bench", tags=tags)
            if rng.random() < shared:
                other = userids[(n + 1 + rng.randrange(reps - 1)) % reps] if reps > 1 else owner
                state.follows.setdefault((ext, other), Follow(ext, other, T0 + customers + n))
    return state


def _company(reps: int) -> None:
    """Teams of 50 reps with WeCom accounts (set-up, not measured)."""
    from django.core.management import call_command

    from weiying.org import services as org
    from weiying.org.models import Employee
    from weiying.wechat import config

    call_command("migrate", interactive=False, verbosity=0)
    org.ensure_builtin_roles()
    hq = org.create_department(actor=None, name="总部", kind="hq", check=False)
    team = None
    for r in range(reps):
        if r % 50 == 0:
            team = org.create_department(actor=None, name=f"销售{r // 50 + 1}组", parent=hq,
                                         check=False)
        org.create_employee(actor=None, number=f"B{r:05d}", name=f"销售{r}", department=team,
                            check=False, wecom_userid=f"rep{r:05d}")
    assert Employee.objects.count() == reps
    config.save_settings(actor=None, corp_id="ww0a1b2c3d4e5f6789", app_secret="app-secret",
                         contact_secret="contact-secret")
    config.forget()


def _table(rows: list[tuple[str, str]], header: list[str]) -> str:
    width = max(len(k) for k, _v in rows)
    lines = [*header, "", f"| {'what'.ljust(width)} | figure |", f"|{'-' * (width + 2)}|---|"]
    lines += [f"| {k.ljust(width)} | {v} |" for k, v in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.wechat_sync",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=2_000)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", DEFAULT_PG),
                        help="server URL without a database name")
    parser.add_argument("--shared", type=float, default=0.1,
                        help="share of contacts a second rep follows too (default 0.1)")
    parser.add_argument("--tagged", type=float, default=0.3,
                        help="share of contacts with two tags of the corp tag library "
                             "(default 0.3; named from one get_corp_tag_list call)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.customers < 1 or args.reps < 1:
        parser.error("--customers and --reps must be at least 1")
    label = _configure(args)

    import django

    django.setup()
    import httpx

    from weiying.wechat import client
    from weiying.wechat.sandbox import create_app

    started = time.perf_counter()
    _company(args.reps)
    state = _seed_sandbox(args.customers, args.reps, args.shared, args.tagged,
                          random.Random(args.seed))
    from django.conf import settings

    settings.WECHAT = {**settings.WECHAT, "WECOM_API": "http://sandbox/wecom"}
    client.TRANSPORT = httpx.WSGITransport(app=create_app(state))
    setup = time.perf_counter() - started
    state.calls.clear()

    from weiying.customers.models import Customer
    from weiying.wechat.contacts import full_sync_contacts
    from weiying.wechat.models import CustomerFollow

    started = time.perf_counter()
    result = full_sync_contacts()
    seconds = time.perf_counter() - started

    calls = Counter({p: n for p, n in state.calls.items() if p.startswith("/wecom/")})
    total = sum(calls.values())
    minutes = max(seconds / 60, 1 / 60)
    busiest, busiest_n = calls.most_common(1)[0]
    per_minute = busiest_n / minutes  # sequential calls: the average rate is the peak rate
    # A run shorter than an hour may still not put more than the hourly cap through one API.
    within = per_minute <= LIMIT_PER_MINUTE and busiest_n <= LIMIT_PER_HOUR
    customers = Customer.objects.count()
    follows = CustomerFollow.objects.count()
    assert customers == result["customers_created"], result
    rows = [
        ("contacts in the sandbox / reps", f"{args.customers:,} / {args.reps:,}"),
        ("follows (a second rep on a share of contacts)", f"{len(state.follows):,}"),
        ("customers created / follows written", f"{customers:,} / {follows:,}"),
        ("full_sync_contacts time", f"{seconds:.1f} s"),
        ("customers a second", f"{customers / seconds:,.0f}"),
        ("API calls (sandbox counter)", f"{total:,}"),
        *[(f"  {path.removeprefix('/wecom/cgi-bin/')}", f"{n:,}")
          for path, n in sorted(calls.items())],
        ("API calls the sync counted", f"{result['api_calls']:,}"),
        ("busiest API, calls a minute", f"{busiest.removeprefix('/wecom/cgi-bin/')}: "
                                        f"{per_minute:,.0f}"),
        ("within WeCom's limits (10,000/min, 150,000/h per API)", "yes" if within else "NO"),
        (f"goal: under {GOAL_SECONDS // 60} minutes", "met" if seconds < GOAL_SECONDS
         else "MISSED"),
        ("set-up (company, sandbox; not measured)", f"{setup:.1f} s"),
    ]
    header = [f"# WeCom customer sync — {time.strftime('%Y-%m-%d')}", "",
              f"{label}; Python {platform.python_version()}, {os.cpu_count()} CPUs, load "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; shared {args.shared}, "
              f"tagged {args.tagged}, seed {args.seed}."]
    run.publish(_table(rows, header), f"{time.strftime('%Y-%m-%d')}-wechat_sync-{args.db}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
