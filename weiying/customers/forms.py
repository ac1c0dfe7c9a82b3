"""Forms for the customer pages: they parse input; the services decide."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from weiying.core.masking import normalise_phone
from weiying.customers.choices import (
    ConsentMethod,
    ConsentPurpose,
    CustomerKind,
    FollowStatus,
    Level,
    Source,
)


class CustomerForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=128,
                           error_messages={"required": _("Give the customer a name.")})
    kind = forms.ChoiceField(label=_("Kind"), choices=CustomerKind.choices,
                             initial=CustomerKind.COMPANY)
    phone = forms.CharField(label=_("Phone"), max_length=32, required=False)
    email = forms.EmailField(label=_("Email"), required=False, error_messages={
        "invalid": _("This is not an email address; check it or leave it empty.")})
    level = forms.ChoiceField(label=_("Level"), choices=Level.choices, initial=Level.B)
    status = forms.ChoiceField(label=_("Follow-up status"), choices=FollowStatus.choices,
                               initial=FollowStatus.NEW)
    source = forms.ChoiceField(label=_("Source"), choices=Source.choices, initial=Source.OTHER)
    channel = forms.CharField(label=_("Channel"), max_length=64, required=False)
    industry = forms.CharField(label=_("Industry"), max_length=64, required=False)
    city = forms.CharField(label=_("City"), max_length=64, required=False)
    region = forms.CharField(label=_("Region"), max_length=64, required=False)
    address = forms.CharField(label=_("Address"), max_length=255, required=False)
    tags = forms.CharField(label=_("Tags"), required=False,
                           help_text=_("Separate tags with commas."))
    note = forms.CharField(label=_("Note"), required=False, widget=forms.Textarea(
        attrs={"rows": 3}))
    owner = forms.ModelChoiceField(label=_("Owner"), queryset=None, required=False,
                                   empty_label=_("Shared pool (nobody yet)"))
    allow_duplicate = forms.BooleanField(
        label=_("Create it anyway: this is a different customer with similar details"),
        required=False,
    )

    def __init__(self, *args: Any, owners: Any = None, editing: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if editing:
            del self.fields["owner"]
            del self.fields["tags"]
        else:
            del self.fields["status"]
            self.fields["owner"].queryset = owners

    def clean_phone(self) -> str:
        raw = self.cleaned_data.get("phone", "")
        digits = normalise_phone(raw)
        if raw.strip() and not 7 <= len(digits) <= 20:
            raise forms.ValidationError(
                _("A phone number has 7 to 20 digits (a mobile has 11); check the number.")
            )
        return raw

    def tag_names(self) -> list[str]:
        raw = self.cleaned_data.get("tags", "") or ""
        return [t.strip() for t in raw.replace("，", ",").split(",") if t.strip()]


class ContactForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=64,
                           error_messages={"required": _("Give the contact a name.")})
    title = forms.CharField(label=_("Title"), max_length=64, required=False)
    phone = forms.CharField(label=_("Phone"), max_length=32, required=False)
    email = forms.EmailField(label=_("Email"), required=False)
    is_primary = forms.BooleanField(label=_("Primary contact"), required=False)


class ConsentForm(forms.Form):
    purpose = forms.ChoiceField(label=_("Purpose"), choices=ConsentPurpose.choices)
    granted = forms.TypedChoiceField(
        label=_("Answer"), choices=[("1", _("Agreed")), ("0", _("Refused or withdrawn"))],
        coerce=lambda v: v == "1",
    )
    method = forms.ChoiceField(label=_("How"), choices=ConsentMethod.choices)
    evidence = forms.CharField(label=_("Evidence"), max_length=255, required=False,
                               help_text=_("Where the proof is: form number, chat date…"))


class ReleaseForm(forms.Form):
    reason = forms.CharField(label=_("Why release it?"), max_length=255, error_messages={
        "required": _("Say why you release this customer.")})


class AssignForm(forms.Form):
    owner = forms.ModelChoiceField(label=_("Assign to"), queryset=None, error_messages={
        "required": _("Pick the person to assign the customer to."),
        "invalid_choice": _("There is no such person in your team; pick someone you manage."),
    })

    def __init__(self, *args: Any, owners: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = owners


class MergeForm(forms.Form):
    duplicate = forms.IntegerField(label=_("Customer no. to merge into this one"), min_value=1,
                                   error_messages={"required": _("Pick the duplicate.")})
    confirm = forms.BooleanField(
        label=_("I understand: the duplicate's contacts, deals and history move here, and it "
                "disappears from lists."),
        error_messages={"required": _("Tick the box to confirm the merge.")},
    )
