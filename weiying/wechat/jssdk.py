"""The WeCom JS-SDK: signatures for `wx.config` (over the corp's jsapi ticket) and
`wx.agentConfig` (over the app's agent ticket), each sha1 of
"jsapi_ticket=…&noncestr=…&timestamp=…&url=…" with the page's URL cut at its "#".

The SDK file itself is the one exception to "ship every asset" (DESIGN): inside WeCom the
JS bridge only answers Tencent's own script, so WECHAT["JSSDK_URL"] points at res.wx.qq.com.
In sandbox mode nothing may leave the machine, so a local stand-in with the same calls
(static/vendor/wecom-jssdk/jweixin-sandbox.js) is served instead.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.templatetags.static import static
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from weiying.wechat import client
from weiying.wechat import config as wechat_config

logger = logging.getLogger(__name__)

SANDBOX_SDK = "vendor/wecom-jssdk/jweixin-sandbox.js"


def signature(*, ticket: str, nonce: str, timestamp: int | str, url: str) -> str:
    """sha1 hex of the four fields in Tencent's order; `url` loses any fragment."""
    page = url.split("#", 1)[0]
    text = f"jsapi_ticket={ticket}&noncestr={nonce}&timestamp={timestamp}&url={page}"
    return hashlib.sha1(text.encode("utf-8")).hexdigest()  # noqa: S324 - Tencent's scheme


def sdk_url() -> str:
    """Where the page loads the JS-SDK from: Tencent, or the local stand-in in sandbox mode."""
    if settings.WECHAT["SANDBOX"]:
        return static(SANDBOX_SDK)
    return str(settings.WECHAT["JSSDK_URL"])


def _same_site(request: HttpRequest, url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    allowed = {request.get_host(), urlsplit(settings.WEIYING_BASE_URL).netloc}
    return parts.netloc in allowed


def config_for(url: str, *, conf: wechat_config.WeChatConfig | None = None,
               now: int | None = None) -> dict[str, Any]:
    """What the page passes to wx.config and wx.agentConfig for `url`."""
    conf = conf or wechat_config.current()
    page = url.split("#", 1)[0]
    with client.WeCom(conf) as wecom:
        corp_ticket = wecom.jsapi_ticket()
        agent_ticket = wecom.jsapi_ticket(agent=True)
    timestamp = int(now if now is not None else time.time())
    nonce = secrets.token_urlsafe(12)
    agent_nonce = secrets.token_urlsafe(12)
    return {
        "appId": conf.corp_id,
        "timestamp": timestamp,
        "nonceStr": nonce,
        "signature": signature(ticket=corp_ticket, nonce=nonce, timestamp=timestamp, url=page),
        "agentConfig": {
            "corpid": conf.corp_id,
            "agentid": conf.agent_id,
            "timestamp": timestamp,
            "nonceStr": agent_nonce,
            "signature": signature(ticket=agent_ticket, nonce=agent_nonce,
                                   timestamp=timestamp, url=page),
        },
        "sdkUrl": sdk_url(),
    }


@never_cache
@require_GET
def jssdk_config(request: HttpRequest) -> JsonResponse:
    """GET ?url=<the page's own URL>: the signatures for that page (signed-in people only)."""
    if not request.user.is_authenticated:
        return JsonResponse({"code": "unauthenticated",
                             "message": _("Sign in first, then reload the page.")}, status=401)
    url = request.GET.get("url", "").strip()
    if not url or len(url) > 2000 or not _same_site(request, url):
        return JsonResponse({"code": "invalid", "message": _(
            "Pass the address of a page of this site as ?url= (without the part after #).")},
            status=400)
    try:
        return JsonResponse(config_for(url))
    except client.NotConfigured:
        return JsonResponse({"code": "not_configured", "message": _(
            "WeCom is not set up on this installation; ask an administrator.")}, status=503)
    except client.WeChatError:
        logger.warning("JS-SDK ticket fetch failed", exc_info=True)
        return JsonResponse({"code": "wecom_unavailable", "message": _(
            "WeCom did not answer; try again in a moment.")}, status=502)
