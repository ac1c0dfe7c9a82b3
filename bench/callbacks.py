"""Callback acknowledgement under load: the real WeCom callback endpoint (verify, decrypt,
parse, store in the inbox, answer) against a bare endpoint that only verifies and decrypts,
both served by gunicorn the same way, in the same run, on this machine.

    uv run python -m bench.callbacks [--db sqlite|postgres] [--rate 200] [--seconds 20]

Two measurements per endpoint: an open-loop run at a fixed rate (latency p50/p99 of every
request, as Tencent's servers would see them: they do not slow down because we do), and a
closed-loop run with many connections (the sustained rate). Every request carries a
distinct, correctly signed event, so the inbox really stores each one. Workers are not
running: the endpoint's promise is to answer fast whatever the queue does.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/"

CORP_ID = "wwbench0000000001"
TOKEN = "benchToken"
AES_KEY = base64.b64encode(bytes(range(100, 132))).decode().rstrip("=")

BARE_APP = '''
"""The bare endpoint: verify the signature and decrypt, nothing else (no Django)."""
from urllib.parse import parse_qs
from weiying.wechat import crypto

BOX = crypto.CallbackCrypto({token!r}, {key!r}, {corp!r})


def app(environ, start_response):
    query = parse_qs(environ.get("QUERY_STRING", ""))
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    try:
        crypto.check_timestamp(query["timestamp"][0])
        BOX.decrypt(query["msg_signature"][0], query["timestamp"][0], query["nonce"][0],
                    crypto.envelope_encrypt(body))
    except (crypto.CryptoError, KeyError):
        start_response("403 Forbidden", [("Content-Length", "0")])
        return [b""]
    start_response("200 OK", [("Content-Length", "0"), ("Content-Type", "text/plain")])
    return [b""]
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(args: argparse.Namespace, data_dir: Path) -> dict[str, str]:
    env = {**os.environ, "WEIYING_DATA_DIR": str(data_dir), "LOG_LEVEL": "WARNING",
           "DJANGO_SETTINGS_MODULE": "weiying.conf.settings", "ALLOWED_HOSTS": "127.0.0.1",
           "WECOM_CORP_ID": CORP_ID, "WECOM_APP_SECRET": "bench",
           "WECOM_CALLBACK_TOKEN": TOKEN, "WECOM_CALLBACK_AES_KEY": AES_KEY,
           "PYTHONPATH": str(ROOT)}
    if args.db == "postgres":
        env["DATABASE_URL"] = args.pg_url.rstrip("/") + "/wy_bench_callbacks"
    else:
        env["DATABASE_URL"] = f"sqlite:///{data_dir / 'callbacks.sqlite3'}"
    return env


def _prepare_database(env: dict[str, str], args: argparse.Namespace) -> None:
    if args.db == "postgres":
        import psycopg

        with psycopg.connect(args.pg_url.rstrip("/") + "/postgres", autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS wy_bench_callbacks")
            conn.execute("CREATE DATABASE wy_bench_callbacks")
    subprocess.run([sys.executable, "-m", "weiying.cli", "migrate"], env=env, check=True,
                   cwd=ROOT, stdout=subprocess.DEVNULL)


def _serve(app: str, port: int, env: dict[str, str], workers: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", app, "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--threads", "4", "--worker-class", "gthread",
         "--log-level", "warning"],
        env=env, cwd=ROOT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{app} did not start on port {port}")


def _requests(n: int, offset: int) -> list[tuple[str, bytes]]:
    """n distinct signed add_external_contact events (distinct ExternalUserID)."""
    from weiying.wechat.crypto import CallbackCrypto, envelope_encrypt

    box = CallbackCrypto(TOKEN, AES_KEY, CORP_ID)
    ts = str(int(time.time()))
    out = []
    for i in range(n):
        xml = (f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName>"
               f"<![CDATA[sys]]></FromUserName><CreateTime>{ts}</CreateTime><MsgType>"
               "<![CDATA[event]]></MsgType><Event><![CDATA[change_external_contact]]></Event>"
               "<ChangeType><![CDATA[add_external_contact]]></ChangeType><UserID><![CDATA["
               f"rep{i % 2000}]]></UserID><ExternalUserID><![CDATA[wmBENCH{offset + i:09d}]]>"
               "</ExternalUserID><State><![CDATA[bench]]></State></xml>").encode()
        nonce = f"{offset + i:010d}"
        body = box.encrypted_envelope(xml, timestamp=ts, nonce=nonce)
        signature = box.msg_signature(ts, nonce, envelope_encrypt(body))
        out.append((f"?msg_signature={signature}&timestamp={ts}&nonce={nonce}", body))
    return out


async def _open_loop(url: str, requests: list[tuple[str, bytes]], rate: float
                     ) -> tuple[list[float], int, float]:
    """Send at a fixed rate regardless of answers; latency of each request in ms."""
    import httpx

    latencies: list[float] = []
    failures = 0
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:
        async def one(query: str, body: bytes) -> None:
            nonlocal failures
            started = time.perf_counter()
            try:
                response = await client.post(url + query, content=body)
                if response.status_code != 200:
                    failures += 1
            except httpx.HTTPError:
                failures += 1
            latencies.append((time.perf_counter() - started) * 1000)

        tasks = []
        begin = time.perf_counter()
        for i, (query, body) in enumerate(requests):
            delay = begin + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(query, body)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - begin
    return latencies, failures, len(requests) / elapsed


async def _closed_loop(url: str, requests: list[tuple[str, bytes]], connections: int
                       ) -> tuple[float, int]:
    """As fast as `connections` clients can go; answers per second."""
    import httpx

    queue = list(reversed(requests))
    failures = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:
        async def worker() -> None:
            nonlocal failures
            while queue:
                query, body = queue.pop()
                try:
                    response = await client.post(url + query, content=body)
                    failures += response.status_code != 200
                except httpx.HTTPError:
                    failures += 1

        begin = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - begin
    return len(requests) / elapsed, failures


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _stored(env: dict[str, str]) -> int:
    out = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); "
         "from weiying.wechat.models import InboxMessage; print(InboxMessage.objects.count())"],
        env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.callbacks",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", DEFAULT_PG))
    parser.add_argument("--rate", type=float, default=200.0, help="callbacks per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn processes")
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args(argv)

    rows: list[tuple[str, ...]] = []
    with tempfile.TemporaryDirectory(prefix="wy-bench-cb-") as tmp:
        data_dir = Path(tmp)
        env = _env(args, data_dir)
        _prepare_database(env, args)
        bare_file = data_dir / "bare_endpoint.py"
        bare_file.write_text(BARE_APP.format(token=TOKEN, key=AES_KEY, corp=CORP_ID))
        env_bare = {**env, "PYTHONPATH": f"{data_dir}{os.pathsep}{ROOT}"}
        n_open = int(args.rate * args.seconds)
        n_closed = max(2000, n_open // 2)
        results: dict[str, dict[str, Any]] = {}
        for label, app, app_env in (("bare verify+decrypt", "bare_endpoint:app", env_bare),
                                    ("Weiying callback (store in inbox)",
                                     "weiying.conf.wsgi:application", env)):
            port = _free_port()
            server = _serve(app, port, app_env, args.workers)
            url = f"http://127.0.0.1:{port}/wechat/callback/wecom"
            try:
                offset = 0 if label.startswith("bare") else 10_000_000
                warm = _requests(200, offset + 9_000_000)
                asyncio.run(_closed_loop(url, warm, 8))
                latencies, failures, achieved = asyncio.run(
                    _open_loop(url, _requests(n_open, offset), args.rate))
                sustained, closed_failures = asyncio.run(
                    _closed_loop(url, _requests(n_closed, offset + 5_000_000), args.connections))
            finally:
                server.terminate()
                server.wait(timeout=30)
            results[label] = {"p50": _p(latencies, 0.5), "p99": _p(latencies, 0.99),
                              "achieved": achieved, "failures": failures + closed_failures,
                              "sustained": sustained}
        stored = _stored(env)
        weiying = results["Weiying callback (store in inbox)"]
        answered = n_open + n_closed + 200 - weiying["failures"]
        bare = results["bare verify+decrypt"]
        for label, r in results.items():
            share = "" if r is bare else f"{r['sustained'] / bare['sustained']:.0%} of bare"
            rows.append((label, f"{args.rate:.0f}/s for {args.seconds:.0f} s "
                         f"(achieved {r['achieved']:.0f}/s)", f"{r['p50']:.1f}",
                         f"{r['p99']:.1f}", f"{r['sustained']:.0f}/s", share,
                         str(r["failures"])))
    load = os.getloadavg()[0]
    table = [
        f"# Callback acknowledgement · {args.db} · {time.strftime('%Y-%m-%d')}",
        "",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs; gunicorn {args.workers} "
        f"workers × 4 threads (gthread); load generator on the same machine; load average "
        f"{load:.1f} at the end",
        f"- inbox rows stored by the Weiying endpoint: {stored}; requests it answered 200: "
        f"{answered} (an answer is only given after the row is stored)",
        "",
        "| endpoint | open loop | p50 ms | p99 ms | sustained (closed loop, "
        f"{args.connections} connections) | share | failures |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *[f"| {' | '.join(r)} |" for r in rows],
    ]
    text = "\n".join(table) + "\n"
    print(text)
    out = HERE / "results" / f"{time.strftime('%Y-%m-%d')}-callbacks-{args.db}.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text, encoding="utf-8")
    if stored < answered:
        print(f"LOST: {answered - stored} callbacks answered but not stored", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
