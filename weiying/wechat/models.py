"""What the WeChat integration keeps: its configuration, the inbox of everything Tencent sent,
the outbox of everything the app pushes, the shared token cache, and the WeChat-side facts
that business records point at (who follows whom, channel codes, payment orders).

Secrets and personal payloads are stored encrypted (weiying.core.secrets); models expose
them only through explicit accessors, never in __str__ or repr.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from weiying.core.money import MONEY_FIELD
from weiying.core.scope import ScopeRule
from weiying.core.secrets import decrypt_text, encrypt_text
from weiying.wechat.choices import (
    FollowEnd,
    FollowRelation,
    InboxSource,
    InboxStatus,
    OutboxStatus,
    PayOrderStatus,
    TransferStatus,
)

NULL = {"on_delete": models.SET_NULL, "null": True, "blank": True}


class WeChatSettings(models.Model):
    """The company's WeCom, Official Account and WeChat Pay credentials (one row).

    Every `*_enc` column holds a Fernet token; the environment overrides any of them (see
    weiying.wechat.config), so production can keep every secret out of the database.
    """

    company = models.OneToOneField("org.Company", on_delete=models.CASCADE,
                                   related_name="wechat_settings")
    corp_id = models.CharField(_("WeCom corp id"), max_length=64, blank=True)
    agent_id = models.CharField(_("WeCom app agent id"), max_length=32, blank=True)
    app_secret_enc = models.TextField(blank=True)
    contact_secret_enc = models.TextField(blank=True)
    callback_token_enc = models.TextField(blank=True)
    callback_aes_key_enc = models.TextField(blank=True)
    oa_app_id = models.CharField(_("Official Account app id"), max_length=64, blank=True)
    oa_secret_enc = models.TextField(blank=True)
    oa_token_enc = models.TextField(blank=True)
    oa_aes_key_enc = models.TextField(blank=True)
    pay_mch_id = models.CharField(_("WeChat Pay merchant id"), max_length=32, blank=True)
    pay_app_id = models.CharField(_("WeChat Pay app id"), max_length=64, blank=True)
    pay_apiv3_key_enc = models.TextField(blank=True)
    pay_private_key_enc = models.TextField(blank=True)
    pay_cert_serial = models.CharField(_("merchant certificate serial"), max_length=64,
                                       blank=True)
    # Keys that verify notifications: serial -> PEM (a public key "PUB_KEY_ID_…" or a
    # platform certificate). Both kinds may be listed during a migration week. Public data.
    pay_verify_keys = models.JSONField(_("notification keys"), default=dict, blank=True)
    pay_notify_url = models.URLField(_("payment notify URL"), blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    SECRETS = ("app_secret", "contact_secret", "callback_token", "callback_aes_key",
               "oa_secret", "oa_token", "oa_aes_key", "pay_apiv3_key", "pay_private_key")

    class Meta:
        verbose_name = _("WeChat settings")
        verbose_name_plural = _("WeChat settings")

    def __str__(self) -> str:
        return str(_("WeChat settings"))

    def secret(self, name: str) -> str:
        if name not in self.SECRETS:
            raise KeyError(name)
        return decrypt_text(getattr(self, f"{name}_enc"))

    def set_secret(self, name: str, value: str) -> None:
        if name not in self.SECRETS:
            raise KeyError(name)
        setattr(self, f"{name}_enc", encrypt_text(value))


class AccessToken(models.Model):
    """The database token cache shared by every process (Redis replaces it when set)."""

    key = models.CharField(max_length=128, unique=True)
    value_enc = models.TextField(blank=True)
    expires_at = models.DateTimeField()
    refreshed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.key


class InboxMessage(models.Model):
    """One callback or notification, stored before it is answered.

    `dedup_key` is unique per source: a message id, or a hash of the decrypted plaintext for
    events (retries of one event carry the same plaintext; two distinct events sharing a
    sender and a second do not). The worker leases rows (`lease_until`); a sweeper returns
    rows whose lease ran out to the queue.
    """

    source = models.CharField(_("source"), max_length=16, choices=InboxSource.choices)
    dedup_key = models.CharField(_("deduplication key"), max_length=128)
    kind = models.CharField(_("kind"), max_length=96, db_index=True)
    payload_enc = models.TextField()
    received_at = models.DateTimeField(_("received at"), auto_now_add=True, db_index=True)
    deliveries = models.PositiveIntegerField(_("deliveries"), default=1)
    status = models.CharField(_("status"), max_length=12, choices=InboxStatus.choices,
                              default=InboxStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), auto_now_add=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    handler = models.CharField(_("handler"), max_length=96, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    handled_at = models.DateTimeField(_("handled at"), null=True, blank=True)

    class Meta:
        verbose_name = _("inbox message")
        verbose_name_plural = _("inbox")
        constraints = [
            models.UniqueConstraint(fields=["source", "dedup_key"], name="inbox_dedup_unique"),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="inbox_queue_idx"),
            models.Index(fields=["status", "lease_until"], name="inbox_lease_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.kind} #{self.pk} {self.status}"

    @property
    def payload(self) -> str:
        return decrypt_text(self.payload_enc)


class OutboxMessage(models.Model):
    """An app message to one employee in WeCom, written once per business event.

    `dedup_key` (e.g. "lead.assigned:812:to:45") makes a second write for the same event a
    no-op, so a replayed event never sends twice. The sender paces itself per recipient.
    """

    dedup_key = models.CharField(max_length=160, unique=True)
    kind = models.CharField(_("kind"), max_length=48, db_index=True)
    employee = models.ForeignKey("org.Employee", related_name="+", verbose_name=_("to"),
                                 **NULL)
    to_userid = models.CharField(_("WeCom user id"), max_length=64, blank=True, db_index=True)
    content = models.JSONField(_("message"))
    status = models.CharField(_("status"), max_length=12, choices=OutboxStatus.choices,
                              default=OutboxStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    not_before = models.DateTimeField(_("not before"), auto_now_add=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True, db_index=True)
    wecom_msgid = models.CharField(max_length=64, blank=True)
    last_error = models.TextField(_("last error"), blank=True)

    class Meta:
        verbose_name = _("outgoing message")
        verbose_name_plural = _("outbox")
        indexes = [
            models.Index(fields=["status", "not_before"], name="outbox_queue_idx"),
            models.Index(fields=["to_userid", "sent_at"], name="outbox_pace_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} → {self.to_userid or self.employee_id} {self.status}"


class Channel(models.Model):
    """A marketing channel a customer arrives through: a WeCom channel code (渠道活码,
    `add_contact_way` with `state`) or an Official Account parametric QR code (`scene`).

    `state` is what WeChat hands back on the add or scan event: at most 30 characters for
    WeCom, 64 for an Official Account scene. `cost` is the spend behind it, for return.
    """

    class Kind(models.TextChoices):
        WECOM = "wecom", _("WeCom channel code")
        OA = "oa", _("Official Account QR code")

    scope = ScopeRule(owner="owner", department="department")

    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.WECOM)
    name = models.CharField(_("name"), max_length=64)
    state = models.CharField(_("state"), max_length=64, unique=True)
    cost = models.DecimalField(_("cost"), default=0, **MONEY_FIELD)
    owner = models.ForeignKey("org.Employee", related_name="+", verbose_name=_("owner"),
                              **NULL)
    department = models.ForeignKey("org.Department", related_name="+",
                                   verbose_name=_("department"), **NULL)
    members = models.ManyToManyField("org.Employee", related_name="wechat_channels",
                                     blank=True, verbose_name=_("reps"))
    teams = models.ManyToManyField("org.Department", related_name="wechat_channels",
                                   blank=True, verbose_name=_("teams"))
    config_id = models.CharField(max_length=64, blank=True)
    qr_url = models.URLField(_("QR code"), max_length=500, blank=True)
    # An Official Account code's ticket (its image is showqrcode?ticket=…); `qr_url` then
    # holds what the code opens. Tickets are longer than `config_id` allows.
    qr_ticket = models.CharField(max_length=255, blank=True)
    skip_verify = models.BooleanField(_("add without confirmation"), default=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("channel")
        verbose_name_plural = _("channels")

    def __str__(self) -> str:
        return self.name


class ChannelArrival(models.Model):
    """One customer arriving through a channel: an add or a scan, and what it became."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="arrivals")
    external_id = models.CharField(max_length=128)  # external user id, or an OA open id
    employee = models.ForeignKey("org.Employee", related_name="+", **NULL)
    customer = models.ForeignKey("customers.Customer", related_name="+", **NULL)
    lead = models.ForeignKey("pipeline.Lead", related_name="+", **NULL)
    at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel", "external_id"],
                                    name="channel_arrival_once"),
        ]

    def __str__(self) -> str:
        return f"{self.channel_id}:{self.external_id}"


class CustomerFollow(models.Model):
    """An employee following an external contact in WeCom (one `follow_user` entry).

    The first active follower is the owner, later ones collaborators. `ended_at` is set when
    either side removes the other (or on a transfer); that starts the retention clock.
    """

    scope = ScopeRule(owner="employee")

    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE,
                                 related_name="wechat_follows")
    employee = models.ForeignKey("org.Employee", on_delete=models.CASCADE, related_name="+")
    external_userid = models.CharField(max_length=128, db_index=True)
    relation = models.CharField(_("relation"), max_length=16, choices=FollowRelation.choices)
    remark = models.CharField(_("remark"), max_length=128, blank=True)
    description = models.CharField(_("description"), max_length=255, blank=True)
    tags = models.JSONField(_("tags"), default=list, blank=True)
    state = models.CharField(_("channel state"), max_length=64, blank=True)
    add_way = models.IntegerField(_("add way"), null=True, blank=True)
    added_at = models.DateTimeField(_("added at"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    ended_by = models.CharField(_("ended by"), max_length=16, choices=FollowEnd.choices,
                                blank=True)
    retain_until = models.DateField(_("keep data until"), null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("WeCom follow")
        verbose_name_plural = _("WeCom follows")
        constraints = [
            models.UniqueConstraint(fields=["employee", "external_userid"],
                                    name="follow_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.employee_id} → {self.external_userid}"


class Follower(models.Model):
    """An Official Account follower; linked to a customer through the union id."""

    openid = models.CharField(max_length=128, unique=True)
    unionid = models.CharField(max_length=128, blank=True, db_index=True)
    customer = models.ForeignKey("customers.Customer", related_name="+", **NULL)
    channel = models.ForeignKey(Channel, related_name="followers", **NULL)
    subscribed = models.BooleanField(default=True)
    subscribed_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("Official Account follower")
        verbose_name_plural = _("Official Account followers")

    def __str__(self) -> str:
        return self.openid


class PayOrder(models.Model):
    """A WeChat Pay order for one instalment; paid once, however often Tencent notifies."""

    scope = ScopeRule(owner="contract__owner", department="contract__department")

    contract = models.ForeignKey("pipeline.Contract", on_delete=models.PROTECT,
                                 related_name="+")
    # A re-planned collection may delete the instalment; the order (and a late payment of
    # it) then falls to the contract, whose receipts go to the oldest open instalments.
    instalment = models.ForeignKey("pipeline.Instalment", on_delete=models.SET_NULL,
                                   related_name="+", null=True, blank=True)
    out_trade_no = models.CharField(_("order number"), max_length=32, unique=True)
    amount = models.DecimalField(_("amount"), **MONEY_FIELD)
    description = models.CharField(_("description"), max_length=127)
    code_url = models.CharField(_("payment link"), max_length=255, blank=True)
    status = models.CharField(_("status"), max_length=8, choices=PayOrderStatus.choices,
                              default=PayOrderStatus.OPEN)
    transaction_id = models.CharField(max_length=64, null=True, blank=True, unique=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    receipt = models.ForeignKey("pipeline.Receipt", related_name="+", **NULL)
    created_by = models.ForeignKey("org.Employee", related_name="+", **NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_queried_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("payment order")
        verbose_name_plural = _("payment orders")
        indexes = [models.Index(fields=["status", "created_at"], name="payorder_open_idx")]

    def __str__(self) -> str:
        return self.out_trade_no

    @property
    def amount_fen(self) -> int:
        from weiying.wechat.pay import to_fen  # the one conversion; it refuses part-fen

        return to_fen(self.amount)


class Transfer(models.Model):
    """A departure hand-over (离职继承) of one external contact to a successor."""

    scope = ScopeRule(owner="to_employee")

    from_employee = models.ForeignKey("org.Employee", on_delete=models.PROTECT,
                                      related_name="+", verbose_name=_("from"))
    to_employee = models.ForeignKey("org.Employee", on_delete=models.PROTECT,
                                    related_name="+", verbose_name=_("to"))
    customer = models.ForeignKey("customers.Customer", related_name="+", **NULL)
    external_userid = models.CharField(max_length=128)
    status = models.CharField(_("status"), max_length=12, choices=TransferStatus.choices,
                              default=TransferStatus.REQUESTED)
    error = models.CharField(_("error"), max_length=255, blank=True)
    requested_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("customer transfer")
        verbose_name_plural = _("customer transfers")
        constraints = [
            models.UniqueConstraint(fields=["from_employee", "external_userid"],
                                    name="transfer_once"),
        ]

    def __str__(self) -> str:
        return f"{self.external_userid}: {self.from_employee_id} → {self.to_employee_id}"


class SecurityEvent(models.Model):
    """A refused callback or notification: forged, stale, mismatched or oversized."""

    at = models.DateTimeField(_("at"), auto_now_add=True, db_index=True)
    source = models.CharField(_("source"), max_length=16, choices=InboxSource.choices)
    reason = models.CharField(_("reason"), max_length=32)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    detail = models.JSONField(_("detail"), default=dict, blank=True)

    class Meta:
        verbose_name = _("security event")
        verbose_name_plural = _("security log")

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.source} {self.reason}"


def store_payload(text: str) -> str:
    return encrypt_text(text)
