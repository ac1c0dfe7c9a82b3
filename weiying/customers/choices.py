from django.db import models
from django.utils.translation import gettext_lazy as _


class CustomerKind(models.TextChoices):
    COMPANY = "company", _("Company")
    INDIVIDUAL = "individual", _("Individual")


class Source(models.TextChoices):
    FORM = "form", _("Web form")
    API = "api", _("API")
    IMPORT = "import", _("File import")
    WECOM = "wecom", _("WeCom")
    OFFICIAL_ACCOUNT = "oa", _("Official Account")
    REFERRAL = "referral", _("Referral")
    ADVERTISING = "ads", _("Advertising")
    EXHIBITION = "exhibition", _("Exhibition")
    PHONE = "phone", _("Inbound call")
    OTHER = "other", _("Other")


class FollowStatus(models.TextChoices):
    NEW = "new", _("New")
    CONTACTED = "contacted", _("Contacted")
    INTERESTED = "interested", _("Interested")
    NEGOTIATING = "negotiating", _("Negotiating")
    SIGNED = "signed", _("Signed")
    DORMANT = "dormant", _("Dormant")
    LOST = "lost", _("Lost")


class Level(models.TextChoices):
    A = "A", _("A: key account")
    B = "B", _("B: regular")
    C = "C", _("C: small")


class IdentityKind(models.TextChoices):
    WECOM_EXTERNAL = "wecom_external", _("WeCom external user id")
    UNIONID = "unionid", _("WeChat union id")
    OPENID = "openid", _("Official Account open id")
    WECHAT_ID = "wechat_id", _("WeChat id")


class ConsentPurpose(models.TextChoices):
    MARKETING = "marketing", _("Marketing messages")
    CALLS = "calls", _("Sales calls")
    PROCESSING = "processing", _("Processing of personal data")


class ConsentMethod(models.TextChoices):
    VERBAL = "verbal", _("Verbal, noted by the rep")
    FORM = "form", _("Signed form")
    WECHAT = "wechat", _("In WeChat")
    CONTRACT = "contract", _("In the contract")
    WEB = "web", _("Web form")


class PoolAction(models.TextChoices):
    CLAIM = "claim", _("Claimed")
    RELEASE = "release", _("Released")
    ASSIGN = "assign", _("Assigned")
    RECYCLE = "recycle", _("Recycled")
    CREATE = "create", _("Created")
    MERGE = "merge", _("Merged")
