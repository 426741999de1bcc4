from django.db import transaction

from .context import acting_token_id
from .models import AuditEvent


def audit_record(*, actor, brand, action, target, before=None, after=None):
    """Record one change. Callers are services, inside their own transaction,
    so the event and the change commit or roll back together."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change it records")
    token_id = acting_token_id()
    if token_id is not None:
        after = _through_token(after, token_id)
    return AuditEvent.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_repr=actor.get_username() if actor is not None and actor.is_authenticated else "",
        brand=brand,
        action=action,
        target_type=target._meta.label_lower,
        target_id=str(target.pk),
        before=before,
        after=after,
    )


def _through_token(after, token_id):
    """A change made through the API names, in `after`, the token it was made with."""
    if after is None:
        after = {}
    elif not isinstance(after, dict):
        after = {"value": after}
    return {**after, "via_api_token": token_id}
