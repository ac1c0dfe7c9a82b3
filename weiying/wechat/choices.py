from django.db import models
from django.utils.translation import gettext_lazy as _


class InboxSource(models.TextChoices):
    WECOM = "wecom", _("WeCom app")
    WECOM_CONTACTS = "wecom_contacts", _("WeCom contacts")
    OA = "oa", _("Official Account")
    PAY = "pay", _("WeChat Pay")


class InboxStatus(models.TextChoices):
    PENDING = "pending", _("Waiting")
    PROCESSING = "processing", _("Processing")
    DONE = "done", _("Done")
    IGNORED = "ignored", _("Acknowledged (no handler)")
    FAILED = "failed", _("Failed, will retry")
    DEAD = "dead", _("Dead letter")


class OutboxStatus(models.TextChoices):
    PENDING = "pending", _("Waiting")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed, will retry")
    DEAD = "dead", _("Gave up")
    SKIPPED = "skipped", _("Not sent (no WeCom account)")


class FollowRelation(models.TextChoices):
    OWNER = "owner", _("Owner")
    COLLABORATOR = "collaborator", _("Collaborator")


class FollowEnd(models.TextChoices):
    BY_CUSTOMER = "by_customer", _("The customer removed the rep")
    BY_EMPLOYEE = "by_employee", _("The rep removed the customer")
    TRANSFERRED = "transferred", _("Transferred to a successor")


class PayOrderStatus(models.TextChoices):
    OPEN = "open", _("Waiting for payment")
    PAID = "paid", _("Paid")
    CLOSED = "closed", _("Closed")
    FAILED = "failed", _("Payment failed")


class TransferStatus(models.TextChoices):
    REQUESTED = "requested", _("Requested")
    WAITING = "waiting", _("Waiting for the customer")
    DONE = "done", _("Transferred")
    FAILED = "failed", _("Failed")
