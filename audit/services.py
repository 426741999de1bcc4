from django.db import transaction

from .models import AuditEvent


def audit_record(*, actor, brand, action, target, before=None, after=None):
    """Record one change. Callers are services, inside their own transaction,
    so the event and the change commit or roll back together."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change it records")
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
