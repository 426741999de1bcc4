import pytest

from audit.models import AuditEvent, AuditEventImmutable
from audit.services import audit_record


def test_it_records_changes_made_by_services(owner, brand):
    event = AuditEvent.objects.for_brand(brand).get(action="brand.created")
    assert event.actor == owner
    assert event.actor_repr == "owner"
    assert (event.target_type, event.target_id) == ("brands.brand", str(brand.pk))
    assert event.after == {"name": "Acme", "slug": "acme"}


def test_it_refuses_to_update_an_event(brand):
    event = AuditEvent.objects.for_brand(brand).first()
    event.action = "rewritten"
    with pytest.raises(AuditEventImmutable):
        event.save()
    with pytest.raises(AuditEventImmutable):
        AuditEvent.objects.filter(pk=event.pk).update(action="rewritten")


def test_it_refuses_to_delete_an_event(brand):
    event = AuditEvent.objects.for_brand(brand).first()
    with pytest.raises(AuditEventImmutable):
        event.delete()
    with pytest.raises(AuditEventImmutable):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.filter(pk=event.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_it_refuses_to_record_outside_a_transaction(owner):
    with pytest.raises(RuntimeError, match="inside the transaction"):
        audit_record(actor=owner, brand=None, action="x", target=owner)
