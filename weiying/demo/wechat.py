"""The demo company inside the WeChat sandbox: shared credentials, keys, and the world the
sandbox starts with (the WeCom directory and the customers who are WeCom contacts).

`prepare(data_dir, base_url)` writes the sandbox's settings file (made once, kept in the data
folder so a restart keeps the same keys), stores the same credentials in the app's WeChat
settings, and returns the environment the app's processes need to talk to the sandbox.
`world()` reads the demo database into the sandbox's seed format.
"""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path
from typing import Any

# The sandbox's base URL prefix for each Tencent host (see weiying/wechat/sandbox).
HOSTS = {"WECOM_API_BASE": "wecom", "WECOM_OAUTH_BASE": "wecom-open",
         "WECOM_QR_LOGIN_BASE": "wecom-login", "OA_API_BASE": "oa", "OA_QR_BASE": "oa-mp",
         "PAY_API_BASE": "pay"}
PUBLIC_KEY_ID = "PUB_KEY_ID_0114232134912410000000000000"


def _new_settings() -> dict[str, Any]:
    from weiying.wechat.crypto import generate_test_keypair

    platform_private, platform_public = generate_test_keypair()
    merchant_private, merchant_public = generate_test_keypair()

    def aes_key() -> str:
        return base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")

    return {
        "corp_id": "wwdemo" + secrets.token_hex(6), "agent_id": "1000002",
        "app_secret": secrets.token_urlsafe(24), "contact_secret": secrets.token_urlsafe(24),
        "callback_token": secrets.token_hex(8), "callback_aes_key": aes_key(),
        "oa_app_id": "wxdemo" + secrets.token_hex(5), "oa_secret": secrets.token_hex(16),
        "oa_token": secrets.token_hex(8), "oa_aes_key": aes_key(),
        "pay_mch_id": "1900000109", "pay_apiv3_key": secrets.token_hex(16),
        "pay_public_key_id": PUBLIC_KEY_ID,
        "pay_platform_private_key": platform_private.decode(),
        "pay_platform_public_key": platform_public.decode(),
        "pay_merchant_public_key": merchant_public.decode(),
        # Not a sandbox field: the app's half, kept in the same private file.
        "_merchant_private_key": merchant_private.decode(),
    }


def prepare(data_dir: Path, *, base_url: str, app_url: str) -> tuple[Path, dict[str, str]]:
    """(the sandbox settings file, the environment for the app's processes)."""
    from weiying.wechat import config

    path = data_dir / "sandbox.json"
    if path.exists():
        stored = json.loads(path.read_text(encoding="utf-8"))
    else:
        stored = _new_settings()
        path.write_text(json.dumps(stored, indent=1), encoding="utf-8")
        path.chmod(0o600)
    stored["pay_app_id"] = stored["oa_app_id"]
    stored["app_base_url"] = app_url
    stored["public_url"] = base_url
    sandbox_file = data_dir / "sandbox-config.json"
    sandbox_file.write_text(json.dumps({k: v for k, v in stored.items()
                                        if not k.startswith("_")}), encoding="utf-8")
    sandbox_file.chmod(0o600)

    config.save_settings(
        actor=None, corp_id=stored["corp_id"], agent_id=stored["agent_id"],
        app_secret=stored["app_secret"], contact_secret=stored["contact_secret"],
        callback_token=stored["callback_token"], callback_aes_key=stored["callback_aes_key"],
        oa_app_id=stored["oa_app_id"], oa_secret=stored["oa_secret"],
        oa_token=stored["oa_token"], oa_aes_key=stored["oa_aes_key"],
        pay_mch_id=stored["pay_mch_id"], pay_app_id=stored["oa_app_id"],
        pay_apiv3_key=stored["pay_apiv3_key"], pay_private_key=stored["_merchant_private_key"],
        pay_cert_serial="DEMO0000000000000001",
        pay_notify_url=f"{app_url}/wechat/pay/notify",
        pay_verify_keys={PUBLIC_KEY_ID: stored["pay_platform_public_key"]},
    )
    env = {variable: f"{base_url}/{prefix}" for variable, prefix in HOSTS.items()}
    env["WECHAT_SANDBOX"] = "1"
    env["WEIYING_BASE_URL"] = app_url
    return sandbox_file, env


def world() -> dict[str, Any]:
    """The sandbox seed: departments, active employees and WeCom customers of the demo."""
    from weiying.customers.models import WeChatIdentity
    from weiying.org.models import Department, Employee

    wecom_ids = dict(Department.objects.exclude(wecom_id="").values_list("pk", "wecom_id"))
    departments = [
        {"id": int(d.wecom_id), "name": d.name,
         "parentid": int(wecom_ids.get(d.parent_id, 0) or 0)}
        for d in Department.objects.exclude(wecom_id="").order_by("path")
    ]
    leaders = dict(Employee.objects.exclude(wecom_userid="").values_list("pk", "wecom_userid"))
    users = [
        {"userid": e.wecom_userid, "name": e.name, "department": [int(wecom_ids[e.department_id])],
         "main_department": int(wecom_ids[e.department_id]), "position": e.position,
         "direct_leader": [leaders[e.leader_id]] if e.leader_id in leaders else []}
        for e in Employee.objects.exclude(wecom_userid="").exclude(status="left")
        .filter(department_id__in=wecom_ids).order_by("pk")
    ]
    contacts = []
    rows = (WeChatIdentity.objects.filter(kind="wecom_external")
            .select_related("customer__owner").order_by("pk"))
    for identity in rows.iterator(chunk_size=2000):
        customer = identity.customer
        owner = customer.owner
        contact: dict[str, Any] = {"external_userid": identity.value, "name": customer.name[:32],
                                   "type": 1}
        if customer.kind == "company":
            contact["corp_name"] = customer.name[:64]
        if owner is not None and owner.wecom_userid:
            contact["follow_user"] = [{
                "userid": owner.wecom_userid, "remark": customer.name[:32],
                "createtime": int(customer.created_at.timestamp()),
            }]
        contacts.append(contact)
    return {"departments": departments, "users": users, "external_contacts": contacts}
