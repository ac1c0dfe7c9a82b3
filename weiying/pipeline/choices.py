from django.db import models
from django.utils.translation import gettext_lazy as _


class LeadStatus(models.TextChoices):
    NEW = "new", _("New")
    ASSIGNED = "assigned", _("Assigned")
    CONTACTED = "contacted", _("Contacted")
    CONVERTED = "converted", _("Converted")
    DISQUALIFIED = "disqualified", _("Disqualified")


class DisqualifyReason(models.TextChoices):
    INVALID_CONTACT = "invalid_contact", _("Contact details invalid")
    NO_NEED = "no_need", _("No need")
    NO_BUDGET = "no_budget", _("No budget")
    DUPLICATE = "duplicate", _("Duplicate")
    COMPETITOR = "competitor", _("Bought from a competitor")
    SPAM = "spam", _("Spam or test")
    OTHER = "other", _("Other")


class AssignmentKind(models.TextChoices):
    ROUND_ROBIN = "round_robin", _("Round-robin within a team")
    REGION = "region", _("By region")
    SOURCE = "source", _("By source")


class StageKind(models.TextChoices):
    OPEN = "open", _("Open")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")


class OpportunityStatus(models.TextChoices):
    OPEN = "open", _("Open")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")


class LostReason(models.TextChoices):
    PRICE = "price", _("Price")
    COMPETITOR = "competitor", _("Lost to a competitor")
    NO_BUDGET = "no_budget", _("No budget")
    NO_DECISION = "no_decision", _("No decision")
    TIMING = "timing", _("Timing")
    PRODUCT_FIT = "product_fit", _("Product does not fit")
    OTHER = "other", _("Other")


class FollowUpKind(models.TextChoices):
    CALL = "call", _("Call")
    VISIT = "visit", _("Visit")
    WECHAT = "wechat", _("WeChat")
    MEETING = "meeting", _("Meeting")
    EMAIL = "email", _("Email")
    OTHER = "other", _("Other")


class QuoteStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SENT = "sent", _("Sent")
    ACCEPTED = "accepted", _("Accepted")
    REJECTED = "rejected", _("Rejected")


class ContractStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    PENDING_APPROVAL = "pending_approval", _("Pending approval")
    APPROVED = "approved", _("Approved")
    SIGNED = "signed", _("Signed")
    IN_DELIVERY = "in_delivery", _("In delivery")
    COMPLETED = "completed", _("Completed")
    CANCELLED = "cancelled", _("Cancelled")


class PaymentMethod(models.TextChoices):
    BANK = "bank", _("Bank transfer")
    WECHAT_PAY = "wechat_pay", _("WeChat Pay")
    ALIPAY = "alipay", _("Alipay")
    CASH = "cash", _("Cash")
    CHEQUE = "cheque", _("Cheque")
    OTHER = "other", _("Other")


class TicketPriority(models.TextChoices):
    LOW = "low", _("Low")
    NORMAL = "normal", _("Normal")
    HIGH = "high", _("High")
    URGENT = "urgent", _("Urgent")


class TicketStatus(models.TextChoices):
    OPEN = "open", _("Open")
    IN_PROGRESS = "in_progress", _("In progress")
    WAITING = "waiting", _("Waiting for the customer")
    RESOLVED = "resolved", _("Resolved")
    CLOSED = "closed", _("Closed")
