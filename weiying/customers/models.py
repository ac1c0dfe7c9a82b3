from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from weiying.core.masking import mask_phone
from weiying.core.money import MONEY_FIELD
from weiying.core.scope import ScopeRule
from weiying.customers.choices import (
    ConsentMethod,
    ConsentPurpose,
    CustomerKind,
    FollowStatus,
    IdentityKind,
    Level,
    PoolAction,
    Source,
)


class Tag(models.Model):
    """A label reps put on customers; groups keep tag lists tidy."""

    name = models.CharField(_("name"), max_length=32, unique=True)
    group = models.CharField(_("group"), max_length=32, blank=True)
    color = models.CharField(_("colour"), max_length=16, blank=True)

    class Meta:
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        ordering = ["group", "name"]

    def __str__(self) -> str:
        return self.name


class Customer(models.Model):
    """A company or a person the company sells to.

    Nobody owns a customer in the shared pool (公海): `in_pool` is set and `pool_department`
    says whose pool it is (empty: the whole company's). Value figures (`total_signed`, …)
    are kept current by the pipeline's services.
    """

    scope = ScopeRule(owner="owner", department="department", pool="pool_department")

    kind = models.CharField(
        _("kind"), max_length=16, choices=CustomerKind.choices, default=CustomerKind.COMPANY
    )
    name = models.CharField(_("name"), max_length=128)
    name_key = models.CharField(max_length=128, db_index=True, editable=False)
    phone = models.CharField(_("phone"), max_length=20, blank=True, db_index=True)
    email = models.EmailField(_("email"), blank=True)
    industry = models.CharField(_("industry"), max_length=64, blank=True)
    city = models.CharField(_("city"), max_length=64, blank=True)
    region = models.CharField(_("region"), max_length=64, blank=True)
    address = models.CharField(_("address"), max_length=255, blank=True)
    source = models.CharField(_("source"), max_length=16, choices=Source.choices,
                              default=Source.OTHER)
    channel = models.CharField(_("channel"), max_length=64, blank=True)
    level = models.CharField(_("level"), max_length=1, choices=Level.choices, default=Level.B)
    status = models.CharField(_("follow-up status"), max_length=16,
                              choices=FollowStatus.choices, default=FollowStatus.NEW)
    owner = models.ForeignKey(
        "org.Employee", on_delete=models.PROTECT, null=True, blank=True,
        related_name="customers", verbose_name=_("owner"),
    )
    department = models.ForeignKey(
        "org.Department", on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name=_("department"),
    )
    collaborators = models.ManyToManyField(
        "org.Employee", blank=True, related_name="collaborating_customers",
        verbose_name=_("collaborators"),
    )
    in_pool = models.BooleanField(_("in shared pool"), default=False, db_index=True)
    pool_department = models.ForeignKey(
        "org.Department", on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name=_("pool of"),
    )
    owned_since = models.DateTimeField(_("owned since"), null=True, blank=True)
    released_at = models.DateTimeField(_("released at"), null=True, blank=True)
    recycle_warned_at = models.DateTimeField(null=True, blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="customers",
                                  verbose_name=_("tags"))
    note = models.TextField(_("note"), blank=True)
    last_followup_at = models.DateTimeField(_("last follow-up"), null=True, blank=True)
    next_followup_at = models.DateTimeField(_("next follow-up"), null=True, blank=True)
    last_activity_at = models.DateTimeField(_("last activity"), db_index=True)
    total_signed = models.DecimalField(_("total signed"), default=0, **MONEY_FIELD)
    total_collected = models.DecimalField(_("total collected"), default=0, **MONEY_FIELD)
    last_purchase_at = models.DateField(_("last purchase"), null=True, blank=True)
    merged_into = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="merged_from",
        verbose_name=_("merged into"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        indexes = [
            models.Index(fields=["owner", "-last_activity_at", "-id"], name="cust_owner_act_idx"),
            models.Index(fields=["-last_activity_at", "-id"], name="cust_activity_idx"),
            models.Index(fields=["in_pool", "pool_department"], name="cust_pool_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def masked_phone(self) -> str:
        return mask_phone(self.phone)


class Contact(models.Model):
    """A person at a customer company."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="contacts")
    name = models.CharField(_("name"), max_length=64)
    title = models.CharField(_("title"), max_length=64, blank=True)
    phone = models.CharField(_("phone"), max_length=20, blank=True, db_index=True)
    email = models.EmailField(_("email"), blank=True)
    is_primary = models.BooleanField(_("primary contact"), default=False)

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")

    def __str__(self) -> str:
        return self.name

    @property
    def masked_phone(self) -> str:
        return mask_phone(self.phone)


class WeChatIdentity(models.Model):
    """A WeChat identifier that points at a customer (external user id, union id, …)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE,
                                 related_name="wechat_identities")
    kind = models.CharField(_("kind"), max_length=16, choices=IdentityKind.choices)
    value = models.CharField(_("value"), max_length=128)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("WeChat identity")
        verbose_name_plural = _("WeChat identities")
        constraints = [
            models.UniqueConstraint(fields=["kind", "value"], name="wechat_identity_unique")
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


class Consent(models.Model):
    """What a person agreed to, when and how (PIPL). The newest row per purpose counts."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="consents")
    purpose = models.CharField(_("purpose"), max_length=16, choices=ConsentPurpose.choices)
    granted = models.BooleanField(_("granted"))
    at = models.DateTimeField(_("at"))
    method = models.CharField(_("how"), max_length=16, choices=ConsentMethod.choices)
    evidence = models.CharField(_("evidence"), max_length=255, blank=True)
    recorded_by = models.ForeignKey("org.Employee", on_delete=models.SET_NULL, null=True,
                                    blank=True, related_name="+")

    class Meta:
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.purpose}={self.granted}"


class OwnershipChange(models.Model):
    """History of who held a customer: claims, releases, assignments, recycling, merges.

    Read for the daily claim limit and the bar on a former owner re-claiming.
    """

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE,
                                 related_name="ownership_changes")
    action = models.CharField(_("action"), max_length=16, choices=PoolAction.choices)
    from_owner = models.ForeignKey("org.Employee", on_delete=models.SET_NULL, null=True,
                                   blank=True, related_name="+")
    to_owner = models.ForeignKey("org.Employee", on_delete=models.SET_NULL, null=True,
                                 blank=True, related_name="+")
    by = models.ForeignKey("org.Employee", on_delete=models.SET_NULL, null=True, blank=True,
                           related_name="+")
    reason = models.CharField(_("reason"), max_length=255, blank=True)
    at = models.DateTimeField(_("at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("ownership change")
        verbose_name_plural = _("ownership changes")
        indexes = [
            models.Index(fields=["to_owner", "action", "at"], name="own_claims_idx"),
            models.Index(fields=["customer", "from_owner", "at"], name="own_former_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.customer_id}"


class CustomerMerge(models.Model):
    """A merge of a duplicate into a surviving customer; the duplicate row is kept, marked."""

    survivor = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    duplicate = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    snapshot = models.JSONField(default=dict)
    moved = models.JSONField(default=dict, help_text="counts of rows moved, per kind")
    by = models.ForeignKey("org.Employee", on_delete=models.SET_NULL, null=True, blank=True,
                           related_name="+")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("customer merge")
        verbose_name_plural = _("customer merges")

    def __str__(self) -> str:
        return f"{self.duplicate_id} → {self.survivor_id}"
