"""The sandbox's world: one company's WeCom directory and customers, its Official Account
followers and its WeChat Pay orders, all in memory behind one lock.

Everything that reads or writes the world takes `state.lock` (re-entrant). Nothing posts a
callback while holding it: callers mutate under the lock, build the delivery, release the
lock, then hand the delivery to `state.deliverer` — the app may well call the sandbox back
while it handles the callback.

Time is `state.now()`: the base clock `state.clock()` (Unix seconds, `time.time` unless a
test puts its own there) plus however far the sandbox clock has been moved
(`state.advance(seconds)`, or `POST /sandbox/api/clock {"advance_seconds": …}`). Token and
ticket lifetimes, OAuth codes, QR codes, order expiry, message rate windows, departure
transfers and the retry schedule of background deliveries all run on it. Moving it moves
Tencent's clock, not the app's: the timestamps the sandbox signs move too, and an app that
checks them (WeCom callbacks, Pay notifications: five minutes) refuses what is stamped
further ahead than that, so a test that moves the clock far moves the app's time with it.
`state.sleep` is what sync-mode retries and slow faults wait with.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import os
import random
import secrets
import string
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from weiying.wechat.sandbox.faults import Faults

# Tencent's WeChat Pay retry schedule after a failed notification (seconds between tries):
# 15s/15s/30s/3m/10m/20m/30m/30m/30m/60m/3h/3h/3h/6h/6h, about 24 hours in all.
PAY_RETRY_SECONDS = [15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800,
                     10800, 21600, 21600]

FOLLOW_PAGE = 500  # externalcontact/get pages follow_user past this many

# WeChat Pay trade states (交易状态) with the trade_state_desc a query answers.
TRADE_STATE_DESC = {
    "SUCCESS": "支付成功", "REFUND": "转入退款", "NOTPAY": "订单未支付", "CLOSED": "订单已关闭",
    "REVOKED": "已撤销", "USERPAYING": "用户支付中", "PAYERROR": "支付失败",
}
OPEN_STATES = frozenset({"NOTPAY", "USERPAYING", "PAYERROR"})  # can still be paid or closed
PAID_STATES = frozenset({"SUCCESS", "REFUND"})  # the customer paid (REFUND: refunded since)


def _aes_key(start: int) -> str:
    return base64.b64encode(bytes(range(start, start + 32))).decode().rstrip("=")


@dataclass
class SandboxConfig:
    """The app's credentials as the sandbox knows them, and how the sandbox behaves.

    The defaults match the made-up credentials of the app's own tests, so an app configured
    for tests talks to a default sandbox unchanged. Empty platform keys are generated on
    first use; `GET /sandbox/api/pay/keys` hands out the public halves.
    """

    corp_id: str = "ww0a1b2c3d4e5f6789"
    agent_id: str = "1000002"
    app_secret: str = field(default="app-secret", repr=False)
    contact_secret: str = field(default="contact-secret", repr=False)
    callback_token: str = field(default="weiyingToken", repr=False)
    callback_aes_key: str = field(default=_aes_key(0), repr=False)
    oa_app_id: str = "wx1234567890abcdef"
    oa_secret: str = field(default="oa-secret", repr=False)
    oa_token: str = field(default="weiyingOA", repr=False)
    oa_aes_key: str = field(default=_aes_key(32), repr=False)
    oa_original_id: str = "gh_0a1b2c3d4e5f"
    pay_mch_id: str = "1900000109"
    pay_app_id: str = "wx1234567890abcdef"
    pay_apiv3_key: str = field(default="0123456789abcdefghijklmnopqrstuv", repr=False)
    # The merchant's public key verifies the app's signed Pay requests; empty: not checked.
    pay_merchant_public_key: str = field(default="", repr=False)
    # The WeChat Pay public key (id PUB_KEY_ID_…) that signs answers and notifications.
    pay_public_key_id: str = "PUB_KEY_ID_0114232134912410000000000000"
    pay_platform_private_key: str = field(default="", repr=False)
    pay_platform_public_key: str = field(default="", repr=False)
    # Optionally a platform certificate as well (both active: the migration week).
    pay_certificate_serial: str = ""
    pay_certificate_private_key: str = field(default="", repr=False)
    pay_certificate: str = field(default="", repr=False)
    pay_sign_with: str = "public_key"  # or "certificate"
    # Where callbacks go.
    app_base_url: str = "http://127.0.0.1:8000"
    wecom_callback_path: str = "/wechat/callback/wecom"
    wecom_contacts_callback_path: str = "/wechat/callback/wecom-contacts"
    oa_callback_path: str = "/wechat/callback/oa"
    # The sandbox's own address for QR links; empty: the address a request came in on.
    public_url: str = ""
    # Delivery: "thread" (a background worker, like Tencent) or "sync" (in the caller).
    delivery_mode: str = "thread"
    callback_timeout: float = 5.0
    wecom_retry_seconds: list[float] = field(default_factory=lambda: [5.0, 5.0])
    oa_retry_seconds: list[float] = field(default_factory=lambda: [5.0, 5.0])
    pay_retry_seconds: list[float] = field(default_factory=lambda: list(PAY_RETRY_SECONDS))
    # Limits and lifetimes.
    token_ttl: int = 7200
    oauth_code_ttl: int = 300
    message_per_minute: int = 30
    message_per_hour: int = 1000
    # Departure transfers: seconds until a transfer settles, and the share that fails.
    transfer_seconds: float = 0.0
    transfer_fail_share: float = 0.0
    transfer_fail_reason: str = "customer_refused"
    # Directory events with ids only (WeCom's rule for callbacks set up since Aug 2022).
    directory_events_ids_only: bool = False
    seed: int = 7

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}

    def update(self, values: dict[str, Any]) -> list[str]:
        """Set the given fields; unknown names raise KeyError, wrong types TypeError."""
        unknown = set(values) - self.field_names()
        if unknown:
            raise KeyError(", ".join(sorted(unknown)))
        choices = {"delivery_mode": ("thread", "sync"),
                   "pay_sign_with": ("public_key", "certificate")}
        for name, allowed in choices.items():
            if name in values and values[name] not in allowed:
                raise TypeError(f"{name} is one of {', '.join(allowed)}")
        changed = []
        for name, value in values.items():
            current = getattr(self, name)
            if isinstance(current, bool):
                if not isinstance(value, bool):
                    raise TypeError(f"{name} must be true or false")
            elif isinstance(current, int | float):
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise TypeError(f"{name} must be a number")
                value = type(current)(value)
            elif isinstance(current, list):
                if not isinstance(value, list) or not all(
                    isinstance(v, int | float) and not isinstance(v, bool) for v in value
                ):
                    raise TypeError(f"{name} must be a list of numbers")
                value = [float(v) for v in value]
            elif not isinstance(value, str):
                raise TypeError(f"{name} must be a string")
            setattr(self, name, value)
            changed.append(name)
        return changed

    def public_view(self) -> dict[str, Any]:
        """Every field but the private keys (the sandbox's secrets are made up anyway)."""
        hidden = {"pay_platform_private_key", "pay_certificate_private_key"}
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in hidden}

    @classmethod
    def from_env(cls) -> SandboxConfig:
        """WEIYING_SANDBOX_CONFIG (a JSON file of fields), then WEIYING_SANDBOX_APP_URL and
        WEIYING_SANDBOX_PUBLIC_URL on top."""
        config = cls()
        path = os.environ.get("WEIYING_SANDBOX_CONFIG", "")
        if path:
            with open(path, encoding="utf-8") as fh:
                config.update(json.load(fh))
        if os.environ.get("WEIYING_SANDBOX_APP_URL"):
            config.app_base_url = os.environ["WEIYING_SANDBOX_APP_URL"]
        if os.environ.get("WEIYING_SANDBOX_PUBLIC_URL"):
            config.public_url = os.environ["WEIYING_SANDBOX_PUBLIC_URL"]
        return config


# --- The world's records ----------------------------------------------------------------


@dataclass
class Department:
    id: int
    name: str
    parentid: int = 0
    order: int = 0
    name_en: str = ""
    department_leader: list[str] = field(default_factory=list)

    def api(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "name": self.name, "parentid": self.parentid,
                                "order": self.order,
                                "department_leader": list(self.department_leader)}
        if self.name_en:
            data["name_en"] = self.name_en
        return data


@dataclass
class User:
    userid: str
    name: str
    department: list[int] = field(default_factory=lambda: [1])
    order: list[int] = field(default_factory=list)
    position: str = ""
    is_leader_in_dept: list[int] = field(default_factory=list)
    direct_leader: list[str] = field(default_factory=list)
    main_department: int = 0
    status: int = 1  # 1 active, 2 disabled, 4 not activated, 5 left
    alias: str = ""
    contact_enabled: bool = True  # configured for customer contact (客户联系)

    def __post_init__(self) -> None:
        self.normalise()

    def normalise(self) -> None:
        n = len(self.department)
        self.order = (list(self.order) + [0] * n)[:n]
        self.is_leader_in_dept = (list(self.is_leader_in_dept) + [0] * n)[:n]
        if self.department and self.main_department not in self.department:
            self.main_department = self.department[0]

    def api(self) -> dict[str, Any]:
        # Since June 2022 new apps get no mobile, email, avatar, gender or address.
        return {
            "userid": self.userid, "name": self.name, "department": list(self.department),
            "order": list(self.order), "position": self.position,
            "is_leader_in_dept": list(self.is_leader_in_dept),
            "direct_leader": list(self.direct_leader),
            "main_department": self.main_department, "status": self.status,
            "alias": self.alias, "enable": 1 if self.status in (1, 4) else 0,
        }


@dataclass
class ExternalContact:
    external_userid: str
    name: str
    type: int = 1  # 1 a WeChat user, 2 a WeCom user
    gender: int = 0
    unionid: str = ""
    avatar: str = ""
    corp_name: str = ""
    position: str = ""

    def api(self) -> dict[str, Any]:
        data: dict[str, Any] = {"external_userid": self.external_userid, "name": self.name,
                                "type": self.type, "gender": self.gender,
                                "avatar": self.avatar}
        if self.unionid:
            data["unionid"] = self.unionid
        if self.type == 2:
            data.update(corp_name=self.corp_name, position=self.position)
        return data


@dataclass
class Follow:
    """One employee's side of a customer relationship (a `follow_user` entry)."""

    external_userid: str
    userid: str
    createtime: int
    remark: str = ""
    description: str = ""
    state: str = ""
    add_way: int = 1  # 1 scanned a QR code
    oper_userid: str = ""
    remark_corp_name: str = ""
    remark_mobiles: list[str] = field(default_factory=list)
    # As seeded or edited: {"tag_id", "group_name", "tag_name", "type"}; type 1 (the
    # default) names a corp tag by tag_id, type 2 is the rep's personal tag (no id).
    tags: list[dict[str, Any]] = field(default_factory=list)

    def api(self, tags: list[dict[str, Any]]) -> dict[str, Any]:
        """The externalcontact/get shape, with `tags` as the library names them."""
        data: dict[str, Any] = {
            "userid": self.userid, "remark": self.remark, "description": self.description,
            "createtime": self.createtime, "tags": tags,
            "remark_corp_name": self.remark_corp_name,
            "remark_mobiles": list(self.remark_mobiles),
            "oper_userid": self.oper_userid or self.external_userid, "add_way": self.add_way,
        }
        if self.state:
            data["state"] = self.state
        return data

    def follow_info(self, tags: list[dict[str, Any]]) -> dict[str, Any]:
        """The batch/get_by_user shape: the ids of the tags that have one instead of tag
        objects, so a personal tag (type 2, no id) does not appear at all."""
        data = self.api([])
        data.pop("tags")
        data["tag_id"] = [t["tag_id"] for t in tags if t.get("tag_id")]
        return data


@dataclass
class CorpTag:
    """A tag of the company's customer tag library (企业客户标签)."""

    id: str
    name: str
    group_id: str
    create_time: int = 0
    order: int = 0
    deleted: bool = False

    def api(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "create_time": self.create_time,
                "order": self.order, "deleted": self.deleted}


@dataclass
class CorpTagGroup:
    group_id: str
    group_name: str
    create_time: int = 0
    order: int = 0
    deleted: bool = False
    tag_ids: list[str] = field(default_factory=list)


@dataclass
class ContactWay:
    config_id: str
    type: int
    scene: int
    state: str = ""
    user: list[str] = field(default_factory=list)
    party: list[int] = field(default_factory=list)
    style: int = 1
    remark: str = ""
    skip_verify: bool = True
    is_temp: bool = False
    expires_in: int = 0
    created: float = 0.0
    scans: int = 0

    def api(self, qr_code: str) -> dict[str, Any]:
        data: dict[str, Any] = {
            "config_id": self.config_id, "type": self.type, "scene": self.scene,
            "style": self.style, "remark": self.remark, "skip_verify": self.skip_verify,
            "state": self.state, "user": list(self.user), "party": list(self.party),
            "is_temp": self.is_temp,
        }
        if self.scene == 2:
            data["qr_code"] = qr_code
        if self.is_temp:
            data["expires_in"] = self.expires_in
        return data


@dataclass
class Message:
    """An app message as one employee would see it (one row per recipient)."""

    msgid: str
    userid: str
    msgtype: str
    content: dict[str, Any]
    agentid: str
    time: float
    dropped: bool = False
    reason: str = ""

    def view(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Token:
    value: str
    kind: str  # wecom_app, wecom_contact, oa
    expires_at: float


@dataclass
class OAuthCode:
    value: str
    created: float
    userid: str = ""
    openid: str = ""
    external_userid: str = ""
    used: bool = False


@dataclass
class Transfer:
    kind: str  # resigned or onjob
    handover_userid: str
    takeover_userid: str
    external_userid: str
    created: float
    settle_at: float
    status: int = 2  # 1 done, 2 waiting, 3 customer refused, 4 takeover member full
    takeover_time: int = 0


@dataclass
class Follower:
    openid: str
    unionid: str = ""
    subscribed: bool = False
    subscribe_time: int = 0
    subscribe_scene: str = ""
    qr_scene_str: str = ""

    def api(self) -> dict[str, Any]:
        if not self.subscribed:
            data: dict[str, Any] = {"subscribe": 0, "openid": self.openid}
        else:
            data = {
                "subscribe": 1, "openid": self.openid, "language": "zh_CN",
                "subscribe_time": self.subscribe_time, "remark": "", "groupid": 0,
                "tagid_list": [], "subscribe_scene": self.subscribe_scene or "ADD_SCENE_OTHERS",
                "qr_scene": 0, "qr_scene_str": self.qr_scene_str,
            }
        if self.unionid:
            data["unionid"] = self.unionid
        return data


@dataclass
class QrTicket:
    ticket: str
    action_name: str
    scene: str
    created: float
    expire_seconds: int = 0  # 0: permanent

    @property
    def permanent(self) -> bool:
        return self.action_name.startswith("QR_LIMIT")


@dataclass
class Order:
    out_trade_no: str
    appid: str
    mchid: str
    description: str
    total: int  # fen
    notify_url: str
    created: float
    currency: str = "CNY"
    time_expire: str = ""
    expires_at: float = 0.0  # 0: no expiry given
    attach: str = ""
    code: str = ""  # the `pr` of code_url
    trade_state: str = "NOTPAY"
    trade_state_desc: str = ""  # empty: TRADE_STATE_DESC's
    transaction_id: str = ""
    success_time: str = ""
    payer_openid: str = ""
    refunds: list[Refund] = field(default_factory=list)

    @property
    def code_url(self) -> str:
        return f"weixin://wxpay/bizpayurl?pr={self.code}"

    @property
    def refunded(self) -> int:
        return sum(r.refund for r in self.refunds)

    def set_state(self, trade_state: str, desc: str = "") -> None:
        self.trade_state = trade_state
        self.trade_state_desc = desc


@dataclass
class Refund:
    """A refund of a paid order, as its REFUND.SUCCESS notification describes it."""

    out_refund_no: str
    refund_id: str
    refund: int  # fen
    created: float
    success_time: str = ""
    refund_status: str = "SUCCESS"
    user_received_account: str = "支付用户零钱"


@dataclass
class Persona:
    """A simulated customer's phone: one WeChat user, seen by WeCom and the OA."""

    id: str
    name: str
    unionid: str
    openid: str
    external_userid: str


# --- Identifiers -----------------------------------------------------------------------

_ALNUM = string.ascii_letters + string.digits


def random_id(prefix: str, length: int, alphabet: str = _ALNUM + "-_") -> str:
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length - len(prefix)))


def new_external_userid() -> str:
    return random_id("wm", 32)


def new_openid() -> str:
    return random_id("o", 28)


def new_unionid() -> str:
    return random_id("o", 28)


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"sbx:{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int | None:
    """The offset a cursor stands for; None for a cursor the sandbox did not issue."""
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    prefix, _sep, number = text.partition(":")
    if prefix != "sbx" or not number.isdigit():
        return None
    return int(number)


# --- The follows, indexed ------------------------------------------------------------------

FollowKey = tuple[str, str]  # (external_userid, userid)


class Follows(MutableMapping[FollowKey, Follow]):
    """Every follow by (external_userid, userid), indexed by rep and by contact.

    A mapping like the dict it replaces, so every write (seed, simulated adds and removals,
    transfers, renames, a test's `del state.follows[key]`) keeps the two indexes (dicts of
    sets) right; the follows of one rep or one contact then cost what they hold, not a scan
    of the world. `version` counts the writes, for caches of derived lists.
    """

    def __init__(self) -> None:
        self._rows: dict[FollowKey, Follow] = {}
        self._by_user: dict[str, set[str]] = {}
        self._by_contact: dict[str, set[str]] = {}
        self.version = 0

    def __getitem__(self, key: FollowKey) -> Follow:
        return self._rows[key]

    def __setitem__(self, key: FollowKey, follow: Follow) -> None:
        external_userid, userid = key
        if (follow.external_userid, follow.userid) != key:
            raise KeyError(f"follow {follow.external_userid}/{follow.userid} under key {key}")
        self._rows[key] = follow
        self._by_user.setdefault(userid, set()).add(external_userid)
        self._by_contact.setdefault(external_userid, set()).add(userid)
        self.version += 1

    def __delitem__(self, key: FollowKey) -> None:
        del self._rows[key]
        external_userid, userid = key
        for index, outer, inner in ((self._by_user, userid, external_userid),
                                    (self._by_contact, external_userid, userid)):
            members = index[outer]
            members.discard(inner)
            if not members:
                del index[outer]
        self.version += 1

    def __contains__(self, key: object) -> bool:
        return key in self._rows

    def __iter__(self) -> Iterator[FollowKey]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, key: FollowKey, default: Any = None) -> Any:  # type: ignore[override]
        return self._rows.get(key, default)

    def values(self) -> Any:
        return self._rows.values()

    def items(self) -> Any:
        return self._rows.items()

    def clear(self) -> None:
        self._rows.clear()
        self._by_user.clear()
        self._by_contact.clear()
        self.version += 1

    def of_user(self, userid: str) -> list[Follow]:
        """The rep's follows, oldest first (WeCom's order)."""
        return sorted((self._rows[(ext, userid)] for ext in self._by_user.get(userid, ())),
                      key=lambda f: (f.createtime, f.external_userid))

    def of_contact(self, external_userid: str) -> list[Follow]:
        """The contact's followers, oldest first."""
        return sorted((self._rows[(external_userid, u)]
                       for u in self._by_contact.get(external_userid, ())),
                      key=lambda f: (f.createtime, f.userid))

    def has_contact(self, external_userid: str) -> bool:
        return external_userid in self._by_contact


# --- The state ---------------------------------------------------------------------------


class SandboxState:
    """The in-memory world. See the module docstring for the locking rule."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        from weiying.wechat.sandbox.delivery import Deliverer, http_deliver

        self.config = config or SandboxConfig()
        self.lock = threading.RLock()
        self.clock: Callable[[], float] = time.time
        self.clock_offset = 0.0  # seconds the sandbox clock has been moved forward
        self.sleep: Callable[[float], None] = time.sleep
        self.faults = Faults()
        self.random = random.Random(self.config.seed)
        self.deliver: Callable[[str, bytes, dict[str, str]], int] = http_deliver(self)
        self.deliverer = Deliverer(self)
        self._keys_lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Empty the world (config, faults and platform keys stay)."""
        with self.lock:
            self.departments: dict[int, Department] = {}
            self.users: dict[str, User] = {}
            self.departed: dict[str, float] = {}  # userid -> when they left
            self.contacts: dict[str, ExternalContact] = {}
            self.follows = Follows()
            self._batch_rows: dict[tuple[str, ...], tuple[int, list[FollowKey]]] = {}
            self.corp_tag_groups: dict[str, CorpTagGroup] = {}
            self.corp_tags: dict[str, CorpTag] = {}
            self.contact_ways: dict[str, ContactWay] = {}
            self.messages: list[Message] = []
            self.tokens: dict[str, Token] = {}
            self.current_tokens: dict[str, str] = {}
            self.codes: dict[str, OAuthCode] = {}
            self.tickets: dict[str, tuple[str, float]] = {}
            self.transfers: list[Transfer] = []
            self.welcome_codes: dict[str, float] = {}
            self.followers: dict[str, Follower] = {}
            self.qr_tickets: dict[str, QrTicket] = {}
            self.oa_messages: list[dict[str, Any]] = []
            self.orders: dict[str, Order] = {}
            self.personas: dict[str, Persona] = {}
            self.calls: Counter[str] = Counter()
            self.deliveries: deque[Any] = deque(maxlen=2000)
            self._msg_seq = 0

    def now(self) -> float:
        return self.clock() + self.clock_offset

    def now_int(self) -> int:
        return int(self.now())

    def advance(self, seconds: float) -> float:
        """Move the sandbox clock forward; deliveries that fall due run. The new now."""
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise ValueError("the clock moves forward by a number of seconds, 0 or more")
        with self.lock:
            self.clock_offset += float(seconds)
        self.deliverer.wake()
        return self.now()

    def rewind(self) -> None:
        """The sandbox clock back to the base clock (a control reset)."""
        with self.lock:
            self.clock_offset = 0.0
        self.deliverer.wake()

    # Calls ----------------------------------------------------------------------------

    def count_call(self, path: str) -> None:
        with self.lock:
            self.calls[path] += 1

    # Tokens ---------------------------------------------------------------------------

    def issue_token(self, kind: str, *, force: bool = False) -> Token:
        """The kind's token while it is valid (as Tencent returns), else a new one."""
        with self.lock:
            now = self.now()
            current = self.tokens.get(self.current_tokens.get(kind, ""))
            if current is not None and current.expires_at > now and not force:
                return current
            token = Token(random_id("SBX", 96, _ALNUM), kind, now + self.config.token_ttl)
            self.tokens[token.value] = token
            self.current_tokens[kind] = token.value
            return token

    def token_status(self, value: str, kinds: Iterable[str]) -> str:
        """"ok", "missing", "invalid" or "expired" for an access_token on a call."""
        if not value:
            return "missing"
        with self.lock:
            token = self.tokens.get(value)
            if token is None or token.kind not in set(kinds):
                return "invalid"
            if token.expires_at <= self.now():
                return "expired"
            return "ok"

    def expire_tokens(self) -> None:
        with self.lock:
            for token in self.tokens.values():
                token.expires_at = min(token.expires_at, self.now())

    def ticket(self, kind: str) -> tuple[str, int]:
        with self.lock:
            now = self.now()
            value, expires_at = self.tickets.get(kind, ("", 0.0))
            if not value or expires_at <= now:
                value, expires_at = random_id("sbxT", 86, _ALNUM), now + 7200
                self.tickets[kind] = (value, expires_at)
            return value, int(expires_at - now)

    # OAuth ----------------------------------------------------------------------------

    def new_code(self, *, userid: str = "", openid: str = "", external_userid: str = "") -> str:
        with self.lock:
            code = OAuthCode(random_id("", 43, _ALNUM), self.now(), userid=userid,
                             openid=openid, external_userid=external_userid)
            self.codes[code.value] = code
            return code.value

    def use_code(self, value: str) -> OAuthCode | None:
        """The code's identity, once; None for an unknown, used or expired code."""
        with self.lock:
            code = self.codes.get(value)
            if code is None or code.used:
                return None
            code.used = True
            if self.now() - code.created > self.config.oauth_code_ttl:
                return None
            return code

    # Directory ------------------------------------------------------------------------

    def active_users(self) -> list[User]:
        return [u for u in self.users.values() if u.status != 5]

    def department_subtree(self, root: int) -> list[Department]:
        children: dict[int, list[int]] = {}
        for dept in self.departments.values():
            children.setdefault(dept.parentid, []).append(dept.id)
        wanted, todo = {root}, [root]
        while todo:
            for child in children.get(todo.pop(), ()):
                if child not in wanted:
                    wanted.add(child)
                    todo.append(child)
        return [d for d in sorted(self.departments.values(), key=lambda d: d.id)
                if d.id in wanted]

    def follows_of_user(self, userid: str) -> list[Follow]:
        return self.follows.of_user(userid)

    def follows_of_contact(self, external_userid: str) -> list[Follow]:
        return self.follows.of_contact(external_userid)

    def follow_keys_of_users(self, userids: Iterable[str]) -> list[FollowKey]:
        """(external_userid, userid) of the reps' follows in batch/get_by_user's order: rep
        by rep, oldest first. Kept while the follows do not change, so paging a cursor
        through one rep group costs a page, not the group's every follow again."""
        key = tuple(dict.fromkeys(userids))
        version = self.follows.version
        cached = self._batch_rows.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
        rows = [(f.external_userid, f.userid) for userid in key
                for f in self.follows.of_user(userid) if f.external_userid in self.contacts]
        if len(self._batch_rows) >= 16:
            self._batch_rows.clear()
        self._batch_rows[key] = (version, rows)
        return rows

    # Tags -----------------------------------------------------------------------------

    def follow_tags(self, follow: Follow) -> list[dict[str, Any]]:
        """A follow's tags as WeCom shows them: a corp tag with the library's current name
        and group (gone once deleted there), a personal tag without an id. A tag id the
        library does not hold (a rule-group tag, type 3, say) keeps the names it came with."""
        out: list[dict[str, Any]] = []
        for raw in follow.tags:
            kind = raw.get("type", 1)
            tag_id = str(raw.get("tag_id") or "")
            if kind == 2 or not tag_id:
                out.append({"group_name": str(raw.get("group_name") or ""),
                            "tag_name": str(raw.get("tag_name") or ""), "type": 2})
                continue
            tag = self.corp_tags.get(tag_id)
            if tag is None:
                out.append({"group_name": str(raw.get("group_name") or ""),
                            "tag_name": str(raw.get("tag_name") or ""), "type": kind,
                            "tag_id": tag_id})
                continue
            group = self.corp_tag_groups.get(tag.group_id)
            if tag.deleted or group is None or group.deleted:
                continue
            out.append({"group_name": group.group_name, "tag_name": tag.name, "type": 1,
                        "tag_id": tag_id})
        return out

    def follow_api(self, follow: Follow, *, batch: bool = False) -> dict[str, Any]:
        """externalcontact/get's follow_user entry, or batch/get_by_user's follow_info."""
        tags = self.follow_tags(follow)
        return follow.follow_info(tags) if batch else follow.api(tags)

    def add_corp_tags(self, groups: Iterable[dict[str, Any]]) -> None:
        """Groups with their tags into the library (get_corp_tag_list's shape: `tag` or
        `tags` a list of {id?, name, order?, create_time?, deleted?}). Ids not given are
        made up; a group or tag id that exists is updated."""
        now = self.now_int()
        for item in groups:
            tags = item.get("tag", item.get("tags", []))
            if not isinstance(tags, list):
                raise TypeError("a tag group's tag is a list")
            group_id = str(item.get("group_id") or random_id("et", 32, _ALNUM))
            group = self.corp_tag_groups.get(group_id)
            if group is None:
                group = CorpTagGroup(group_id, str(item["group_name"]),
                                     int(item.get("create_time", now)),
                                     int(item.get("order", 0)), bool(item.get("deleted", False)))
                self.corp_tag_groups[group_id] = group
            else:
                for name in ("group_name", "create_time", "order", "deleted"):
                    if name in item:
                        setattr(group, name, type(getattr(group, name))(item[name]))
            for raw in tags:
                tag_id = str(raw.get("id") or random_id("et", 32, _ALNUM))
                tag = CorpTag(tag_id, str(raw["name"]), group_id,
                              int(raw.get("create_time", now)), int(raw.get("order", 0)),
                              bool(raw.get("deleted", False)))
                old = self.corp_tags.get(tag_id)
                if old is not None and old.group_id != group_id:
                    self.corp_tag_groups[old.group_id].tag_ids.remove(tag_id)
                self.corp_tags[tag_id] = tag
                if tag_id not in group.tag_ids:
                    group.tag_ids.append(tag_id)

    def corp_tag_list(self, tag_ids: list[str], group_ids: list[str]) -> list[dict[str, Any]]:
        """get_corp_tag_list: every live group with its live tags; with `group_id` those
        groups and all their tags, with `tag_id` (ignored beside `group_id`) those tags in
        their groups. Only a filtered read shows what was deleted (`deleted: true`).
        Larger `order` first, as WeCom sorts."""

        def ranked(items: Iterable[Any]) -> list[Any]:
            return sorted(items, key=lambda x: (-x.order, x.create_time))

        if group_ids:
            wanted_groups = [self.corp_tag_groups[g] for g in dict.fromkeys(group_ids)
                             if g in self.corp_tag_groups]
            picked = {g.group_id: [self.corp_tags[t] for t in g.tag_ids]
                      for g in wanted_groups}
        elif tag_ids:
            picked = {}
            for tag_id in dict.fromkeys(tag_ids):
                tag = self.corp_tags.get(tag_id)
                if tag is not None:
                    picked.setdefault(tag.group_id, []).append(tag)
        else:
            picked = {g.group_id: [self.corp_tags[t] for t in g.tag_ids
                                   if not self.corp_tags[t].deleted]
                      for g in self.corp_tag_groups.values() if not g.deleted}
            picked = {g: tags for g, tags in picked.items() if tags}
        return [{"group_id": g.group_id, "group_name": g.group_name,
                 "create_time": g.create_time, "order": g.order, "deleted": g.deleted,
                 "tag": [t.api() for t in ranked(picked[g.group_id])]}
                for g in ranked(self.corp_tag_groups[g] for g in picked)]

    # Seeding --------------------------------------------------------------------------

    def seed(self, data: dict[str, Any], *, mode: str = "merge") -> dict[str, int]:
        """Load departments, users, the corp tag library (`corp_tags`: groups with their
        tags), external contacts (with follow_user), contact ways, OA followers and
        personas. `mode="replace"` empties the world first."""
        with self.lock:
            if mode == "replace":
                self.reset()
            self.add_corp_tags(data.get("corp_tags", []))
            for item in data.get("departments", []):
                dept = Department(**_only(Department, item))
                self.departments[dept.id] = dept
            if data.get("users") and not self.departments:
                self.departments[1] = Department(1, "总部")
            for item in data.get("users", []):
                user = User(**_only(User, item))
                self.users[user.userid] = user
            now = self.now_int()
            for item in data.get("external_contacts", []):
                follows = item.get("follow_user", [])
                values = _only(ExternalContact, item)
                values.setdefault("external_userid", new_external_userid())
                contact = ExternalContact(**values)
                self.contacts[contact.external_userid] = contact
                for f in follows:
                    values = _only(Follow, f)
                    values.setdefault("createtime", now)
                    follow = Follow(external_userid=contact.external_userid,
                                    **{k: v for k, v in values.items()
                                       if k != "external_userid"})
                    self.follows[(contact.external_userid, follow.userid)] = follow
            for item in data.get("contact_ways", []):
                values = _only(ContactWay, item)
                values.setdefault("config_id", secrets.token_hex(16))
                values.setdefault("created", self.now())
                way = ContactWay(**values)
                self.contact_ways[way.config_id] = way
            for item in data.get("oa_followers", []):
                follower = Follower(**_only(Follower, item))
                self.followers[follower.openid] = follower
            for item in data.get("personas", []):
                self.add_persona(item["name"], unionid=item.get("unionid", ""),
                                 openid=item.get("openid", ""),
                                 external_userid=item.get("external_userid", ""),
                                 persona_id=item.get("id", ""))
            return self.counts()

    def add_persona(self, name: str, *, unionid: str = "", openid: str = "",
                    external_userid: str = "", persona_id: str = "") -> Persona:
        """A customer persona; ids not given are found from the world or made up."""
        with self.lock:
            existing = self.find_persona(unionid=unionid, openid=openid,
                                         external_userid=external_userid)
            if existing is not None:
                return existing
            unionid = unionid or new_unionid()
            if not external_userid:
                external_userid = next(
                    (c.external_userid for c in self.contacts.values() if c.unionid == unionid),
                    new_external_userid())
            if not openid:
                openid = next((f.openid for f in self.followers.values()
                               if f.unionid == unionid), new_openid())
            persona = Persona(persona_id or secrets.token_hex(4), name, unionid, openid,
                              external_userid)
            self.personas[persona.id] = persona
            return persona

    def find_persona(self, *, unionid: str = "", openid: str = "",
                     external_userid: str = "") -> Persona | None:
        with self.lock:
            for persona in self.personas.values():
                if ((unionid and persona.unionid == unionid)
                        or (openid and persona.openid == openid)
                        or (external_userid and persona.external_userid == external_userid)):
                    return persona
            return None

    # WeChat Pay orders -----------------------------------------------------------------

    def order(self, out_trade_no: str) -> Order | None:
        """The order as it stands now: one still open past its time_expire is CLOSED."""
        with self.lock:
            order = self.orders.get(out_trade_no)
            if order is not None:
                self._expire(order)
            return order

    def open_orders(self) -> list[Order]:
        with self.lock:
            for order in self.orders.values():
                self._expire(order)
            return [o for o in self.orders.values() if o.trade_state in OPEN_STATES]

    def _expire(self, order: Order) -> None:
        if (order.trade_state in OPEN_STATES and order.expires_at
                and self.now() > order.expires_at):
            order.set_state("CLOSED")

    # Messages -------------------------------------------------------------------------

    def next_msgid(self) -> str:
        with self.lock:
            self._msg_seq += 1
            return f"sbx{self._msg_seq:06d}{secrets.token_hex(8)}"

    def accepts_message(self, userid: str) -> tuple[bool, str]:
        """Whether WeCom would deliver one more message to this member now.

        Past 30 a minute or 1,000 an hour (rolling windows over delivered messages) WeCom
        accepts the send and drops the message without a word; so does the sandbox.
        """
        now = self.now()
        minute = hour = 0
        for message in reversed(self.messages):
            if now - message.time >= 3600:
                break
            if message.userid != userid or message.dropped:
                continue
            hour += 1
            if now - message.time < 60:
                minute += 1
        if minute >= self.config.message_per_minute:
            return False, "per_minute_limit"
        if hour >= self.config.message_per_hour:
            return False, "per_hour_limit"
        return True, ""

    # Views ----------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        with self.lock:
            return {
                "departments": len(self.departments), "users": len(self.users),
                "external_contacts": len(self.contacts), "follows": len(self.follows),
                "corp_tags": sum(1 for t in self.corp_tags.values() if not t.deleted),
                "contact_ways": len(self.contact_ways), "messages": len(self.messages),
                "messages_dropped": sum(1 for m in self.messages if m.dropped),
                "tokens": len(self.tokens), "transfers": len(self.transfers),
                "oa_followers": sum(1 for f in self.followers.values() if f.subscribed),
                "oa_qr_tickets": len(self.qr_tickets), "orders": len(self.orders),
                "orders_paid": sum(1 for o in self.orders.values()
                                   if o.trade_state in PAID_STATES),
                "personas": len(self.personas), "deliveries": len(self.deliveries),
                "calls": sum(self.calls.values()),
            }

    # Platform keys (WeChat Pay) -------------------------------------------------------

    def platform_key(self, which: str) -> tuple[str, bytes, bytes]:
        """(serial, private PEM, public or certificate PEM) of the public key or the
        platform certificate; generated on first use when the config has none."""
        from weiying.wechat import crypto

        with self._keys_lock:
            c = self.config
            if which == "certificate":
                if not c.pay_certificate_serial:
                    raise LookupError("no platform certificate is configured")
                if not c.pay_certificate_private_key:
                    c.pay_certificate_private_key = crypto.generate_test_keypair()[0].decode()
                if not c.pay_certificate:
                    c.pay_certificate = crypto.self_signed_certificate(
                        c.pay_certificate_private_key.encode(),
                        serial_hex=c.pay_certificate_serial).decode()
                return (c.pay_certificate_serial, c.pay_certificate_private_key.encode(),
                        c.pay_certificate.encode())
            if not c.pay_platform_private_key:
                private, public = crypto.generate_test_keypair()
                c.pay_platform_private_key = private.decode()
                c.pay_platform_public_key = public.decode()
            elif not c.pay_platform_public_key:
                c.pay_platform_public_key = _public_from_private(c.pay_platform_private_key)
            return (c.pay_public_key_id, c.pay_platform_private_key.encode(),
                    c.pay_platform_public_key.encode())

    def signing_key(self) -> tuple[str, bytes]:
        """(serial, private PEM) that signs Pay answers and notifications now."""
        which = "certificate" if (self.config.pay_sign_with == "certificate"
                                  and self.config.pay_certificate_serial) else "public_key"
        serial, private, _public = self.platform_key(which)
        return serial, private

    def verify_keys(self) -> dict[str, str]:
        """serial -> PEM of every active platform key: what the app trusts."""
        keys = {}
        serial, _private, public = self.platform_key("public_key")
        keys[serial] = public.decode()
        if self.config.pay_certificate_serial:
            serial, _private, cert = self.platform_key("certificate")
            keys[serial] = cert.decode()
        return keys


def _public_from_private(private_pem: str) -> str:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def _only(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """The keys of `values` that are fields of the dataclass `cls`."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in values.items() if k in names}
