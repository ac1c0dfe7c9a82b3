"""Back-office views of the WeChat layer: the inbox (dead letters can be replayed), the
outbox, the security log and the credentials (secrets write-only: never shown back)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from weiying.core.errors import DomainError
from weiying.core.secrets import fingerprint
from weiying.wechat import config, inbox
from weiying.wechat.models import (
    Channel,
    CustomerFollow,
    InboxMessage,
    OutboxMessage,
    PayOrder,
    SecurityEvent,
    Transfer,
    WeChatSettings,
)


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(InboxMessage)
class InboxAdmin(ReadOnly):
    list_display = ["received_at", "source", "kind", "status", "attempts", "deliveries",
                    "handler", "last_error"]
    list_filter = ["status", "source", "kind"]
    search_fields = ["dedup_key", "kind"]
    readonly_fields = ["decrypted_payload"]
    exclude = ["payload_enc"]
    actions = ["replay"]

    @admin.display(description=_("payload"))
    def decrypted_payload(self, obj: InboxMessage) -> str:
        return obj.payload

    @admin.action(description=_("Replay the selected messages"))
    def replay(self, request: Any, queryset: Any) -> None:
        done = 0
        for message in queryset:
            try:
                inbox.replay(actor=request.user, message=message)
                done += 1
            except DomainError as exc:
                self.message_user(request, f"#{message.pk}: {exc.message}", messages.WARNING)
        self.message_user(request, gettext("%(count)s messages queued again.") % {"count": done})


@admin.register(OutboxMessage)
class OutboxAdmin(ReadOnly):
    list_display = ["created_at", "kind", "to_userid", "status", "attempts", "sent_at",
                    "last_error"]
    list_filter = ["status", "kind"]
    search_fields = ["to_userid", "dedup_key"]


@admin.register(SecurityEvent)
class SecurityEventAdmin(ReadOnly):
    list_display = ["at", "source", "reason", "ip"]
    list_filter = ["source", "reason"]


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "state", "cost", "owner", "is_active"]
    list_filter = ["kind", "is_active"]
    raw_id_fields = ["owner", "department", "members", "teams"]


admin.site.register(CustomerFollow, ReadOnly)
admin.site.register(PayOrder, ReadOnly)
admin.site.register(Transfer, ReadOnly)


class SettingsForm(forms.ModelForm):
    """Plain fields as they are; each secret a write-only box: empty keeps the stored one."""

    app_secret = forms.CharField(label=_("WeCom app secret"), required=False,
                                 widget=forms.PasswordInput)
    contact_secret = forms.CharField(label=_("WeCom customer-contact secret"), required=False,
                                     widget=forms.PasswordInput)
    callback_token = forms.CharField(label=_("WeCom callback token"), required=False,
                                     widget=forms.PasswordInput)
    callback_aes_key = forms.CharField(label=_("WeCom callback EncodingAESKey"),
                                       required=False, widget=forms.PasswordInput)
    oa_secret = forms.CharField(label=_("Official Account secret"), required=False,
                                widget=forms.PasswordInput)
    oa_token = forms.CharField(label=_("Official Account token"), required=False,
                               widget=forms.PasswordInput)
    oa_aes_key = forms.CharField(label=_("Official Account EncodingAESKey"), required=False,
                                 widget=forms.PasswordInput)
    pay_apiv3_key = forms.CharField(label=_("WeChat Pay APIv3 key"), required=False,
                                    widget=forms.PasswordInput)
    pay_private_key = forms.CharField(label=_("merchant private key (PEM)"), required=False,
                                      widget=forms.Textarea(attrs={"rows": 3}))

    class Meta:
        model = WeChatSettings
        fields = ["corp_id", "agent_id", "oa_app_id", "pay_mch_id", "pay_app_id",
                  "pay_cert_serial", "pay_notify_url", "pay_verify_keys"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in WeChatSettings.SECRETS:
            stored = self.instance.secret(name) if self.instance.pk else ""
            if stored:
                self.fields[name].help_text = gettext("set (%(mark)s); leave empty to keep") % {
                    "mark": fingerprint(stored)}


@admin.register(WeChatSettings)
class SettingsAdmin(admin.ModelAdmin):
    form = SettingsForm
    list_display = ["__str__", "corp_id", "oa_app_id", "pay_mch_id", "updated_at"]

    def save_model(self, request: Any, obj: Any, form: Any, change: bool) -> None:
        values = {name: form.cleaned_data[name] for name in SettingsForm.Meta.fields}
        values.update({name: form.cleaned_data[name] for name in WeChatSettings.SECRETS
                       if form.cleaned_data.get(name)})
        saved = config.save_settings(actor=request.user, **values)
        obj.pk = saved.pk
