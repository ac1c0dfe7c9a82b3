"""What every page form shares: putting a service's refusal on the form."""

from __future__ import annotations

from django import forms

from weiying.core.errors import DomainError


def show_error(form: forms.Form, exc: DomainError) -> None:
    """Put a service's refusal next to the field it is about (or on top of the form)."""
    field = exc.field if exc.field in form.fields else None
    form.add_error(field, str(exc.message))
