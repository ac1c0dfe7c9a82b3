"""Issue, check and revoke API tokens. Tokens are shown once and stored hashed."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.db import transaction
from django.utils import timezone

from weiying.api.models import ApiToken
from weiying.core import audit
from weiying.core.permissions import require

TOKEN_PREFIX = "wy_"


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def issue_token(*, actor: Any, name: str, user: Any, role: Any,
                expires_at: Any = None) -> tuple[ApiToken, str]:
    require(actor, "api.tokens")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        name=name, prefix=raw[:10], token_hash=_hash(raw), user=user, role=role,
        expires_at=expires_at,
    )
    audit.record(actor, "api_token.issue", token, after={"name": name, "role": role.code})
    return token, raw


@transaction.atomic
def revoke_token(*, actor: Any, token: ApiToken) -> ApiToken:
    require(actor, "api.tokens")
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit.record(actor, "api_token.revoke", token)
    return token


def authenticate(raw: str) -> Any:
    """The user a live token acts as, carrying the token's role; None otherwise."""
    if not raw or not raw.startswith(TOKEN_PREFIX):
        return None
    token = ApiToken.objects.select_related("user", "role").filter(token_hash=_hash(raw)).first()
    now = timezone.now()
    if token is None or token.revoked_at or (token.expires_at and token.expires_at <= now):
        return None
    if not token.user.is_active:
        return None
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    user = token.user
    user._weiying_token_role = token.role
    return user
