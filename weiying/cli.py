"""The `weiying` command: serve, run the worker, migrate, create the demo, import files, and
serve the WeChat sandbox."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "weiying.conf.settings")
    from weiying.conf.env import ConfigError

    try:
        import django

        django.setup()
    except ConfigError as exc:
        print(f"weiying: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_migrate(args: argparse.Namespace) -> int:
    _setup()
    from django.core.management import call_command

    from weiying.org.services import ensure_builtin_roles

    call_command("migrate", interactive=False, verbosity=args.verbosity)
    ensure_builtin_roles()
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    _setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("check", deploy=args.deploy)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    from django.conf import settings

    print(f"database: {connection.vendor} ok")
    print(f"queue: {settings.HUEY['huey_class']}")
    return 0


def cmd_createadmin(args: argparse.Namespace) -> int:
    _setup()
    from django.contrib.auth import get_user_model

    User = get_user_model()
    user, created = User.objects.get_or_create(
        username=args.username, defaults={"is_staff": True, "is_superuser": True}
    )
    user.is_staff = user.is_superuser = True
    user.set_password(args.password)
    user.save()
    print(("created" if created else "updated") + f" administrator {args.username}")
    return 0


def _serve_processes(host: str, port: int, workers: int, with_worker: bool,
                     *, extra_env: dict[str, str] | None = None,
                     also: Sequence[subprocess.Popen] = ()) -> int:
    """Run gunicorn and the task worker side by side (and `also`, e.g. the sandbox) until
    one of them stops or we are stopped."""
    env = {**os.environ, **(extra_env or {})}
    env.setdefault("DJANGO_SETTINGS_MODULE", "weiying.conf.settings")
    procs = [
        *also,
        subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "weiying.conf.wsgi:application",
             "--bind", f"{host}:{port}", "--workers", str(workers), "--threads", "4",
             "--worker-class", "gthread", "--timeout", "60", "--access-logfile", "-"],
            env=env,
        )
    ]
    if with_worker:
        procs.append(subprocess.Popen([sys.executable, "-m", "weiying.cli", "worker"], env=env))

    def stop(*_args: object) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while all(proc.poll() is None for proc in procs):
            time.sleep(0.5)
    finally:
        stop()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
    return max((proc.returncode or 0) for proc in procs)


def cmd_serve(args: argparse.Namespace) -> int:
    _setup()
    return _serve_processes(args.host, args.port, args.workers, not args.no_worker)


def cmd_worker(args: argparse.Namespace) -> int:
    _setup()
    from django.core.management import call_command

    call_command("run_huey", workers=args.workers)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    _setup()
    from django.core.management import call_command

    from weiying.demo.generate import generate, is_generated
    from weiying.org.services import ensure_builtin_roles

    call_command("migrate", interactive=False, verbosity=0)
    ensure_builtin_roles()
    if args.fresh or not is_generated():
        from django.conf import settings

        (settings.DATA_DIR / BOOKS_OPENED).unlink(missing_ok=True)
        started = time.monotonic()
        print(f"Generating the '{args.size}' demo company (seed {args.seed})…", flush=True)
        report = generate(size=args.size, seed=args.seed, fresh=args.fresh)
        print(f"  done in {time.monotonic() - started:.1f}s: {report}", flush=True)
    from weiying.demo.generate import demo_logins

    print("\nDemo logins (password for all: weiying123):")
    for role, username, name in demo_logins():
        print(f"  {role:<12} {username:<16} {name}")
    if args.no_serve:
        return 0
    app_url = f"http://{args.host}:{args.port}"
    sandbox: list[subprocess.Popen] = []
    extra_env: dict[str, str] = {}
    if not args.no_sandbox:
        started_sandbox, extra_env = _demo_sandbox(args, app_url)
        sandbox.append(started_sandbox)
    books = _open_books_in_background()
    print(f"\nServing {app_url}/ (Ctrl+C to stop)\n", flush=True)
    try:
        return _serve_processes(args.host, args.port, args.workers, True, extra_env=extra_env,
                                also=sandbox)
    finally:
        if books is not None and books.poll() is None:
            books.terminate()


def _wait_for_port(host: str, port: int, seconds: float) -> bool:
    import socket

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def _demo_sandbox(args: argparse.Namespace, app_url: str) -> tuple[subprocess.Popen, dict]:
    """Start the WeChat sandbox beside the demo, with the demo's credentials and its world."""
    import httpx
    from django.conf import settings

    from weiying.demo import wechat as demo_wechat

    port = args.sandbox_port
    base = f"http://{args.host}:{port}"
    config_file, extra_env = demo_wechat.prepare(settings.DATA_DIR, base_url=base,
                                                 app_url=app_url)
    env = {**os.environ, "WEIYING_SANDBOX_CONFIG": str(config_file),
           "WEIYING_SANDBOX_APP_URL": app_url, "WEIYING_SANDBOX_PUBLIC_URL": base}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "weiying.wechat.sandbox.app:create_app()",
         "--bind", f"{args.host}:{port}", "--workers", "1", "--threads", "8",
         "--worker-class", "gthread", "--timeout", "120", "--log-level", "warning"],
        env=env,
    )
    if not _wait_for_port(args.host, port, 30):
        proc.kill()
        raise SystemExit(f"weiying: the WeChat sandbox did not start on port {port}; "
                         "pick another with --sandbox-port, or run with --no-sandbox")
    world = demo_wechat.world()
    answer = httpx.post(f"{base}/sandbox/api/seed", json={**world, "mode": "replace"},
                        timeout=120)
    answer.raise_for_status()
    counts = answer.json().get("counts", {})
    print(f"WeChat sandbox: {base}/sandbox/ — simulated phones and WeCom inboxes "
          f"({counts.get('users', 0)} employees, {counts.get('external_contacts', 0)} WeCom customers)",
          flush=True)
    return proc, extra_env


def cmd_import(args: argparse.Namespace) -> int:
    _setup()
    from weiying.pipeline.imports import import_file_cli

    return import_file_cli(args)


def cmd_open_books(args: argparse.Namespace) -> int:
    _setup()
    from django.conf import settings

    from weiying.core.errors import DomainError
    from weiying.finance.backfill import backfill

    try:
        result = backfill(close_months=not args.no_close,
                          progress=None if args.quiet else print)
    except DomainError as exc:
        print(exc.message, file=sys.stderr)
        return 1
    (settings.DATA_DIR / BOOKS_OPENED).write_text(time.strftime("%Y-%m-%d %H:%M:%S\n"))
    # The books carry the recognised revenue and margins of the performance figures.
    from weiying.performance import facts

    facts.rebuild(families=["finance"])
    print(f"Finance books opened: {result.contracts} contracts, {result.receipts} receipts, "
          f"{result.acceptances} acceptances, {result.cancellations} cancellations, "
          f"{result.spends} marketing spends, "
          f"{result.months_closed} months closed", flush=True)
    return 0


BOOKS_OPENED = "finance-books-opened"


def cmd_rebuild_facts(args: argparse.Namespace) -> int:
    _setup()
    from weiying.performance import facts
    from weiying.reports import rollup

    result = facts.rebuild()
    print(f"Performance facts rebuilt in {result['seconds']} s: " + ", ".join(
        f"{k} {v[0]} rows" for k, v in result.items() if isinstance(v, tuple)), flush=True)
    print(f"Funnel roll-up rebuilt: {rollup.rebuild()}", flush=True)
    return 0


def _open_books_in_background() -> subprocess.Popen | None:
    """The demo's history was generated without events: replay it through the finance layer
    beside the server, once (a marker in the data dir says it finished; an interrupted run
    resumes where it stopped)."""
    from django.conf import settings

    if (settings.DATA_DIR / BOOKS_OPENED).exists():
        return None
    print("Opening the finance books from the demo's history in the background (a few "
          "minutes; the finance pages fill in as it goes).", flush=True)
    # Then the predictive scores, which learn from the same history (a minute or so).
    return subprocess.Popen(
        [sys.executable, "-c", "from weiying.cli import main; "
         "raise SystemExit(main(['open-books', '--quiet']) or main(['train-scores']))"],
    )


def cmd_train_scores(args: argparse.Namespace) -> int:
    _setup()
    from weiying.reports.scoring import train_all

    for model in train_all():
        if model.is_trained:
            print(f"{model.kind}: held-out ROC AUC {model.auc:.3f} on {model.test_rows} rows "
                  f"(fitted on {model.train_rows}; base rate {model.base_rate:.1%}), "
                  f"{model.scores.count()} scored", flush=True)
        else:
            print(f"{model.kind}: not trained ({model.refusal}, {model.labelled} labelled "
                  "rows); no score is shown", flush=True)
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    """The WeChat sandbox: a separate Flask app (no Django), one gunicorn process because
    its world lives in memory, eight threads."""
    from weiying.wechat.sandbox.state import SandboxConfig

    env = dict(os.environ)
    if args.config:
        path = os.path.abspath(args.config)
        try:
            with open(path, encoding="utf-8") as fh:
                SandboxConfig().update(json.load(fh))
        except (OSError, ValueError) as exc:
            print(f"weiying: sandbox config {args.config}: {exc}", file=sys.stderr)
            return 2
        except (KeyError, TypeError) as exc:
            print(f"weiying: sandbox config {args.config}: bad setting {exc}", file=sys.stderr)
            return 2
        env["WEIYING_SANDBOX_CONFIG"] = path
    base = f"http://{args.host}:{args.port}"
    env["WEIYING_SANDBOX_APP_URL"] = args.app_url
    env.setdefault("WEIYING_SANDBOX_PUBLIC_URL", base)
    print(f"WeChat sandbox on {base}/sandbox/ (callbacks go to {args.app_url})")
    print("Point the app at it:")
    for variable, prefix in (("WECOM_API_BASE", "wecom"), ("WECOM_OAUTH_BASE", "wecom-open"),
                             ("WECOM_QR_LOGIN_BASE", "wecom-login"), ("OA_API_BASE", "oa"),
                             ("OA_QR_BASE", "oa-mp"), ("PAY_API_BASE", "pay")):
        print(f"  {variable}={base}/{prefix}")
    print(f"WeChat Pay platform keys to trust: {base}/sandbox/api/pay/keys\n", flush=True)
    command = [sys.executable, "-m", "gunicorn", "weiying.wechat.sandbox.app:create_app()",
               "--bind", f"{args.host}:{args.port}", "--workers", "1", "--threads", "8",
               "--worker-class", "gthread", "--timeout", "120", "--access-logfile", "-"]
    try:
        return subprocess.call(command, env=env)
    except KeyboardInterrupt:
        return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="weiying", description="Weiying (微营) marketing management: run and manage it."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="create the database, generate the demo company and serve it",
                       description="Migrate, generate the demo company (once), print the demo "
                       "logins and serve it with the task worker.")
    p.add_argument("--size", choices=["small", "demo", "xl"], default="demo")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--fresh", action="store_true", help="delete and regenerate the demo data")
    p.add_argument("--no-serve", action="store_true", help="generate and print logins only")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--sandbox-port", type=int, default=8001,
                   help="port of the WeChat sandbox started beside the demo")
    p.add_argument("--no-sandbox", action="store_true",
                   help="do not start the WeChat sandbox (WeChat features stay unconfigured)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("serve", help="serve the app with gunicorn plus the task worker",
                       description="Production HTTP server (gunicorn) and the task worker.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--no-worker", action="store_true",
                   help="web processes only (run `weiying worker` elsewhere)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("worker", help="run the background task worker (Huey)",
                       description="Run queued and periodic tasks: event dispatch, pool "
                       "recycling, reminders.")
    p.add_argument("--workers", type=int, default=2)
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("migrate", help="create or update the database tables",
                       description="Apply migrations and seed the built-in roles.")
    p.add_argument("--verbosity", type=int, default=1)
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("createadmin", help="create or reset an administrator login",
                       description="Create (or reset the password of) a superuser.")
    p.add_argument("username")
    p.add_argument("password")
    p.set_defaults(func=cmd_createadmin)

    p = sub.add_parser("import", help="import leads or customers from a CSV or Excel file",
                       description="Stream a CSV or .xlsx file of leads or customers, validate "
                       "every row, and import it; a file with errors imports nothing unless "
                       "--valid-only is given. Writes an error report next to the file.")
    p.add_argument("kind", choices=["leads", "customers"])
    p.add_argument("file")
    p.add_argument("--as-user", required=True, help="login name of the person importing")
    p.add_argument("--valid-only", action="store_true",
                   help="import the valid rows and report the rest")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("sandbox", help="serve the WeChat sandbox (a local stand-in for Tencent)",
                       description="Serve the WeChat sandbox: WeCom, the Official Account and "
                       "WeChat Pay on one port (/wecom, /wecom-open, /wecom-login, /oa, "
                       "/oa-mp, /pay), with simulated customer phones and employee inboxes "
                       "at /sandbox/ and a control API at /sandbox/api. It posts encrypted "
                       "callbacks and signed Pay notifications to the app, with Tencent's "
                       "retries. State is in memory and lost on exit.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8001)
    p.add_argument("--app-url", default="http://127.0.0.1:8000",
                   help="where the app listens: callbacks go to /wechat/callback/… there")
    p.add_argument("--config", metavar="FILE.json",
                   help="sandbox settings (credentials, keys, retry schedules) as JSON")
    p.set_defaults(func=cmd_sandbox)

    p = sub.add_parser("open-books",
                       help="open the finance books from the contracts, receipts and acceptances "
                            "already recorded (once, on books with no postings)",
                       description="Replay the history day by day through the finance layer's "
                                   "postings and close each month that has ended.")
    p.add_argument("--no-close", action="store_true", help="post only; close no month")
    p.add_argument("--quiet", action="store_true", help="print only the summary")
    p.set_defaults(func=cmd_open_books)

    p = sub.add_parser("rebuild-facts",
                       help="rebuild the roll-ups (daily facts, department months, the funnel)",
                       description="Rewrite every daily fact, department month and funnel "
                                   "roll-up row from the records, as the nightly job does.")
    p.set_defaults(func=cmd_rebuild_facts)

    p = sub.add_parser("train-scores", help="retrain the predictive scores now",
                       description="Retrain the lead win probability and repurchase propensity "
                       "models from the history, print their held-out accuracy and rescore "
                       "(the worker does this every week, and rescores every night).")
    p.set_defaults(func=cmd_train_scores)

    p = sub.add_parser("check", help="check the configuration and the database connection",
                       description="Validate settings, run Django's checks and connect.")
    p.add_argument("--deploy", action="store_true", help="also run deployment checks")
    p.set_defaults(func=cmd_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
