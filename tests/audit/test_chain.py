"""The hash chain on SQLite (Python side) and manage.py audit_verify.
PostgreSQL's side is in tests/integration/test_audit_log.py."""

import datetime
import json
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse
from django.utils import timezone

from audit.chain import GENESIS_HASH, audit_chain_verify, event_hash, json_canonical, json_text_canonical
from audit.models import AuditEvent
from audit.services import audit_record

BACKDATED = datetime.datetime(2001, 2, 3, 4, 5, 6, tzinfo=datetime.UTC)


@pytest.fixture
def events(owner, brand, member, outsider, other_brand):
    """A few events recorded by services, oldest first."""
    return list(AuditEvent.objects.order_by("seq"))


def recompute(event):
    return event_hash(
        seq=event.seq, created_at=event.created_at, actor_id=event.actor_id, actor_repr=event.actor_repr,
        brand_id=event.brand_id, action=event.action, target_type=event.target_type, target_id=event.target_id,
        before_json=None if event.before is None else json.dumps(event.before),
        after_json=None if event.after is None else json.dumps(event.after), prev_hash=event.prev_hash,
    )  # fmt: skip


def raw(sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def verify(*args):
    out = StringIO()
    call_command("audit_verify", *args, stdout=out)
    return out.getvalue()


def test_it_chains_each_event_to_the_one_before(events):
    assert len(events) >= 3
    assert [event.seq for event in events] == list(range(1, len(events) + 1))
    assert events[0].prev_hash == GENESIS_HASH
    for previous, event in zip(events, events[1:], strict=False):
        assert event.prev_hash == previous.hash
    for event in events:
        assert len(event.hash) == 64 and event.hash == recompute(event)


def test_it_takes_created_at_and_the_chain_fields_from_the_database_side_not_the_caller(brand):
    head = AuditEvent.objects.order_by("-seq").first()
    before = timezone.now()
    event = AuditEvent.objects.create(
        action="x", target_type="t", target_id=7, created_at=BACKDATED, seq=999, prev_hash="f" * 64, hash="e" * 64
    )
    event.refresh_from_db()
    assert before <= event.created_at <= timezone.now()
    assert (event.seq, event.prev_hash, event.target_id) == (head.seq + 1, head.hash, "7")
    assert event.hash == recompute(event)


def test_it_chains_bulk_created_events(brand):
    created = AuditEvent.objects.bulk_create([AuditEvent(action="bulk", target_type="t", target_id=n) for n in "ab"])
    assert created[1].seq == created[0].seq + 1 and created[1].prev_hash == created[0].hash
    assert verify().startswith("audit chain intact")


def test_it_covers_every_recorded_field_by_the_hash(owner, brand):
    with transaction.atomic():
        event = audit_record(actor=owner, brand=brand, action="a", target=brand, before={"x": 1.5}, after=[1, "ü"])
    base = {
        "seq": event.seq, "created_at": event.created_at, "actor_id": event.actor_id, "actor_repr": event.actor_repr,
        "brand_id": event.brand_id, "action": event.action, "target_type": event.target_type,
        "target_id": event.target_id, "before_json": '{"x": 1.5}', "after_json": '[1, "ü"]',
        "prev_hash": event.prev_hash,
    }  # fmt: skip
    assert event_hash(**base) == event.hash
    changed = {
        "seq": event.seq + 1, "created_at": event.created_at + datetime.timedelta(microseconds=1), "actor_id": None,
        "actor_repr": "someone", "brand_id": None, "action": "b", "target_type": "u", "target_id": "0",
        "before_json": '{"x": 1.6}', "after_json": None, "prev_hash": GENESIS_HASH,
    }  # fmt: skip
    for name, value in changed.items():
        assert event_hash(**{**base, name: value}) != event.hash, name


@pytest.mark.parametrize(
    "value, expected",
    [  # what PostgreSQL 15 prints for the same JSON as jsonb
        ({"bb": 1, "a": [1.50, 1e-7, 1e1, -0.0, 1e20], "ab": "\u0001\u001f"},
         '{"a": [1.5, 0.0000001, 10.0, 0.0, 100000000000000000000], "ab": "\\u0001\\u001f", "bb": 1}'),
        ({"ä": 1, "b": 2, "ccc": None, "dd": True}, '{"b": 2, "dd": true, "ä": 1, "ccc": null}'),
        ('a"b\\c\né\t/', '"a\\"b\\\\c\\né\\t/"'),
        ([], "[]"),
        ({}, "{}"),
        (12345678901234567890, "12345678901234567890"),
    ],
)  # fmt: skip
def test_it_serializes_json_the_way_postgresql_prints_jsonb(value, expected):
    assert json_canonical(json.loads(json.dumps(value))) == expected
    assert json_text_canonical(json.dumps(value)) == expected


def test_it_keeps_the_digits_of_stored_numbers():
    stored = '{"n": 1.50, "m": 1e-7, "k": 1.5E+1, "z": -0.0}'
    assert json_text_canonical(stored) == '{"k": 15, "m": 0.0000001, "n": 1.50, "z": 0.0}'
    assert json_canonical(Decimal("-0.00")) == "0.00"
    assert json_text_canonical(None) == "null"


def test_it_reports_an_intact_chain_in_one_line(events):
    head = events[-1]
    assert verify() == f"audit chain intact: {len(events)} rows, seq 1-{head.seq}, head {head.seq}:{head.hash}\n"
    anchors = ["--anchor", f"{head.seq}:{head.hash}", "--anchor", f"1:{events[0].hash}"]
    assert verify(*anchors).startswith("audit chain intact")


@pytest.mark.django_db
def test_it_reports_an_empty_chain_as_intact():
    assert verify() == "audit chain intact: 0 rows\n"


def test_it_names_a_row_whose_content_was_altered(events):
    altered = events[2]
    raw("UPDATE audit_auditevent SET after = %s WHERE id = %s", ['{"name": "Evil"}', altered.pk])
    with pytest.raises(CommandError, match=rf"row id={altered.pk} \(seq {altered.seq}\): content does not match"):
        verify()
    report = audit_chain_verify()
    assert (report.intact, report.event_id, report.rows) == (False, altered.pk, altered.seq - 1)


@pytest.mark.parametrize(
    "column, value", [("created_at", "2001-02-03 04:05:06"), ("actor_id", None), ("prev_hash", "0" * 64)]
)
def test_it_names_a_row_whose_other_columns_were_altered(events, column, value):
    altered = events[1]
    raw(f"UPDATE audit_auditevent SET {column} = %s WHERE id = %s", [value, altered.pk])
    assert audit_chain_verify().event_id == altered.pk


def test_it_names_a_row_rewritten_along_with_its_hash(events):
    altered = events[1]
    altered.after = {"name": "Evil"}
    raw(
        "UPDATE audit_auditevent SET after = %s, hash = %s WHERE id = %s",
        [json.dumps(altered.after), recompute(altered), altered.pk],
    )
    with pytest.raises(CommandError, match=rf"row id={altered.pk} \(seq 2\): its hash .* is not the prev_hash"):
        verify()


def test_it_names_the_gap_left_by_a_deleted_row(events):
    raw("DELETE FROM audit_auditevent WHERE id = %s", [events[1].pk])
    with pytest.raises(CommandError, match=rf"row id={events[2].pk} \(seq 3\): expected seq 2, seq 2 missing"):
        verify()


def test_it_reports_a_row_outside_the_chain(events):
    raw(
        "INSERT INTO audit_auditevent (actor_repr, action, target_type, target_id, created_at, prev_hash, hash) "
        "VALUES ('', 'sneaked', 't', '1', '2001-02-03 04:05:06', '', '')"
    )
    sneaked = AuditEvent.objects.get(action="sneaked")
    with pytest.raises(CommandError, match=rf"row id={sneaked.pk} has no chain position"):
        verify()


def test_it_checks_anchors_recorded_earlier(events):
    head = events[-1]
    with pytest.raises(CommandError, match=rf"\(seq {head.seq}\): hash .* differs from the anchor"):
        verify("--anchor", f"{head.seq}:{'a' * 64}")
    with pytest.raises(CommandError, match=rf"anchor seq {head.seq + 1} .* missing: the chain ends at seq {head.seq}"):
        verify("--anchor", f"{head.seq + 1}:{'a' * 64}")
    with pytest.raises(CommandError, match="--anchor wants SEQ:HASH"):
        verify("--anchor", "3")


def test_it_refuses_to_grant_roles_outside_postgresql(db):
    with pytest.raises(CommandError, match="db_roles_grant needs PostgreSQL; database 'default' is sqlite"):
        call_command("db_roles_grant", "--app-role", "persona_app")


@pytest.mark.django_db(transaction=True)
def test_it_backfills_the_chain_of_existing_rows():
    executor = MigrationExecutor(connection)
    executor.migrate([("audit", "0002_append_only_trigger")])
    apps = executor.loader.project_state([("audit", "0002_append_only_trigger")]).apps
    Event = apps.get_model("audit", "AuditEvent")
    for n, days in enumerate([2, 0, 1]):
        event = Event.objects.create(action=f"old.{n}", target_type="t", target_id=str(n), after={"n": n, "f": 0.1})
        Event.objects.filter(pk=event.pk).update(created_at=BACKDATED + datetime.timedelta(days=days))

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert list(AuditEvent.objects.order_by("seq").values_list("action", flat=True)) == ["old.1", "old.2", "old.0"]
    assert verify() == f"audit chain intact: 3 rows, seq 1-3, head 3:{AuditEvent.objects.get(seq=3).hash}\n"
    user = get_user_model().objects.create_user(username="after")
    with transaction.atomic():
        assert audit_record(actor=None, brand=None, action="user.created", target=user).seq == 4
    assert verify().startswith("audit chain intact: 4 rows")


def test_it_shows_the_chain_fields_read_only_in_the_admin(admin_client, events):
    event = events[-1]
    response = admin_client.get(reverse("admin:audit_auditevent_change", args=[event.pk]))
    assert response.status_code == 200
    assert event.hash in response.content.decode() and event.prev_hash in response.content.decode()
    assert admin_client.post(reverse("admin:audit_auditevent_change", args=[event.pk]), {}).status_code == 403
