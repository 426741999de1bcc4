"""The audit log on PostgreSQL: the application role (set up by
manage.py db_roles_grant) cannot rewrite it, the database sets created_at and
the hash chain, the owner's tampering is found by manage.py audit_verify, and
concurrent writers keep one linear chain."""

import datetime
import json
import os
import threading
from contextlib import contextmanager
from io import StringIO

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, connections, transaction
from django.db.migrations.executor import MigrationExecutor

from audit.chain import GENESIS_HASH, audit_chain_verify, json_text_canonical
from audit.models import AuditEvent
from audit.services import audit_record

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PASSWORD = "audit-test-password"
PASSWORD_ENV = "AUDIT_TEST_APP_ROLE_PASSWORD"


class AppRole:
    """A login role created by db_roles_grant for this test, unique in the
    cluster (roles are shared by every database)."""

    def __init__(self, name):
        self.name = name

    @contextmanager
    def connect(self):
        db = connection.settings_dict
        with psycopg.connect(
            host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, dbname=db["NAME"], user=self.name,
            password=PASSWORD, autocommit=True, connect_timeout=10,
        ) as conn:  # fmt: skip
            yield conn


def roles_grant(name):
    out = StringIO()
    call_command("db_roles_grant", "--app-role", name, "--password-env", PASSWORD_ENV, stdout=out)
    return out.getvalue()


def role_drop(name):
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [name])
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name])
        if cursor.fetchone():
            quoted = connection.ops.quote_name(name)
            cursor.execute(f"DROP OWNED BY {quoted}")  # its privileges and default privileges here
            cursor.execute(f"DROP ROLE {quoted}")


@pytest.fixture
def app_role(services, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    role = AppRole(f"audit_app_{os.getpid()}")
    try:
        role.grant_output = roles_grant(role.name)
        yield role
    finally:
        role_drop(role.name)


@pytest.fixture
def events(services, owner, brand, member, other_brand):
    """Three events or more, recorded by services."""
    return list(AuditEvent.objects.order_by("seq"))


def verify_message():
    with pytest.raises(CommandError) as excinfo:
        call_command("audit_verify", stdout=StringIO())
    return str(excinfo.value)


def chain_state():
    return list(AuditEvent.objects.order_by("seq").values_list("id", "seq", "hash", "after"))


def owner_execute(*statements, replica=False):
    """As the owner (pytest-django's superuser), in one transaction."""
    with transaction.atomic(), connection.cursor() as cursor:
        if replica:
            cursor.execute("SET LOCAL session_replication_role = replica")
        for statement in statements:
            cursor.execute(*statement) if isinstance(statement, tuple) else cursor.execute(statement)


INSERT = (
    "INSERT INTO audit_auditevent (actor_repr, action, target_type, target_id, after) VALUES ('', %s, 't', '1', %s)"
)

REFUSED = {
    "update": "UPDATE audit_auditevent SET after = '{{\"name\": \"Evil\"}}'",
    "delete": "DELETE FROM audit_auditevent",
    "truncate": "TRUNCATE audit_auditevent",
    "truncate cascading from a referenced table": "TRUNCATE brands_brand CASCADE",
    "disable the append-only trigger": "ALTER TABLE audit_auditevent DISABLE TRIGGER audit_auditevent_append_only",
    "disable every trigger": "ALTER TABLE audit_auditevent DISABLE TRIGGER ALL",
    "drop the append-only trigger": "DROP TRIGGER audit_auditevent_append_only ON audit_auditevent",
    "drop the chain trigger": "DROP TRIGGER audit_auditevent_chain ON audit_auditevent",
    "replace the chain function": (
        "CREATE OR REPLACE FUNCTION audit_auditevent_chain() RETURNS trigger AS $$ BEGIN RETURN NEW; END $$ "
        "LANGUAGE plpgsql"
    ),
    "take the table over": "ALTER TABLE audit_auditevent OWNER TO {role}",
    "drop the table": "DROP TABLE audit_auditevent CASCADE",
    "skip triggers as a replica": "SET session_replication_role = replica",
}


@pytest.mark.parametrize("statement", REFUSED.values(), ids=REFUSED.keys())
def test_it_refuses_the_app_role_any_change_to_recorded_events(events, app_role, statement):
    state = chain_state()
    with app_role.connect() as conn:
        with pytest.raises(psycopg.Error) as excinfo:
            conn.execute(statement.format(role=app_role.name))
        assert isinstance(excinfo.value, psycopg.errors.InsufficientPrivilege), excinfo.value
    assert chain_state() == state
    assert audit_chain_verify().intact


def test_it_overrides_backdated_and_forged_values_from_the_app_role(events, app_role):
    head = events[-1]
    with app_role.connect() as conn:
        (started,) = conn.execute("SELECT clock_timestamp()").fetchone()
        row = conn.execute(
            "INSERT INTO audit_auditevent (actor_repr, action, target_type, target_id, created_at, seq, prev_hash, "
            "hash) VALUES ('', 'backdated', 't', '1', '2001-02-03 04:05:06+00', 1, %s, %s) "
            "RETURNING id, created_at, seq, prev_hash, hash",
            [GENESIS_HASH, "f" * 64],
        ).fetchone()
        (finished,) = conn.execute("SELECT clock_timestamp()").fetchone()
    event_id, created_at, seq, prev_hash, hash_ = row
    assert started <= created_at <= finished
    assert (seq, prev_hash) == (head.seq + 1, head.hash) and hash_ != "f" * 64
    assert AuditEvent.objects.get(pk=event_id).created_at == created_at
    assert audit_chain_verify().intact


def test_it_sets_created_at_and_the_chain_in_the_database_for_the_orm(events):
    before = timezone_now_db()
    event = AuditEvent.objects.create(
        action="x", target_type="t", target_id="1", created_at=datetime.datetime(2001, 2, 3, tzinfo=datetime.UTC),
        seq=1, hash="f" * 64,
    )  # fmt: skip
    assert before <= event.created_at <= timezone_now_db()
    assert (event.seq, event.prev_hash) == (events[-1].seq + 1, events[-1].hash)
    assert AuditEvent.objects.filter(pk=event.pk).values_list("created_at", "seq", "hash").get() == (
        event.created_at, event.seq, event.hash
    )  # fmt: skip


def timezone_now_db():
    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        return cursor.fetchone()[0]


def privileges(role, relation, kinds):
    with connection.cursor() as cursor:
        function = "has_sequence_privilege" if relation.endswith("_seq") else "has_table_privilege"
        cursor.execute(
            "SELECT " + ", ".join(f"{function}(%s, %s, '{kind}')" for kind in kinds), [role, relation] * len(kinds)
        )
        return {kind for kind, granted in zip(kinds, cursor.fetchone(), strict=True) if granted}


TABLE_KINDS = ["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"]
SEQUENCE_KINDS = ["USAGE", "SELECT", "UPDATE"]


def assert_exact_privileges(role):
    assert privileges(role, "audit_auditevent", TABLE_KINDS) == {"SELECT", "INSERT"}
    assert privileges(role, "audit_auditevent_id_seq", SEQUENCE_KINDS) == {"USAGE"}
    assert privileges(role, "django_migrations", TABLE_KINDS) == {"SELECT"}
    assert privileges(role, "brands_brand", TABLE_KINDS) == {"SELECT", "INSERT", "UPDATE", "DELETE"}
    assert privileges(role, "brands_brand_id_seq", SEQUENCE_KINDS) == {"USAGE", "SELECT"}


def test_it_grants_the_app_role_exactly_what_it_needs_and_again_when_rerun(events, app_role):
    assert app_role.grant_output.startswith(f"created role {app_role.name}: SELECT, INSERT on audit_auditevent;")
    assert_exact_privileges(app_role.name)
    owner_execute(f"GRANT ALL ON audit_auditevent, django_migrations TO {app_role.name}")  # widened by hand
    assert roles_grant(app_role.name).startswith(f"updated role {app_role.name}:")
    assert_exact_privileges(app_role.name)

    with app_role.connect() as conn:
        conn.execute(INSERT, ["app.inserted", None])
        assert conn.execute("SELECT count(*) FROM audit_auditevent").fetchone()[0] == len(events) + 1
        conn.execute("UPDATE brands_brand SET name = 'Renamed' WHERE slug = 'acme'")
        conn.execute(
            "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, "
            "is_active, date_joined) VALUES ('!', false, 'app-made', '', '', '', false, true, now())"
        )
        conn.execute("DELETE FROM auth_user WHERE username = 'app-made'")
    assert audit_chain_verify().intact


def test_it_grants_the_app_role_the_tables_later_migrations_create(services, app_role):
    table = f"audit_future_{os.getpid()}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {table} (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, x int)")
    try:
        with app_role.connect() as conn:
            conn.execute(f"INSERT INTO {table} (x) VALUES (1)")
            conn.execute(f"UPDATE {table} SET x = 2")
            assert conn.execute(f"SELECT x FROM {table}").fetchone() == (2,)
            conn.execute(f"DELETE FROM {table}")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"TRUNCATE {table}")
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {table}")


def test_it_refuses_an_app_role_that_owns_the_tables_or_is_a_superuser(services):
    with pytest.raises(CommandError, match="must not own the tables"):
        call_command("db_roles_grant", "--app-role", connection.settings_dict["USER"] or "postgres")
    superuser = f"audit_super_{os.getpid()}"
    owner_execute(f"CREATE ROLE {superuser} SUPERUSER")
    try:
        with pytest.raises(CommandError, match=f"{superuser} is a superuser"):
            call_command("db_roles_grant", "--app-role", superuser)
    finally:
        role_drop(superuser)


def test_it_refuses_truncate_even_by_the_owner(events):
    with pytest.raises(DatabaseError, match="append-only: TRUNCATE refused"):
        owner_execute("TRUNCATE audit_auditevent")
    with pytest.raises(DatabaseError, match="append-only: TRUNCATE refused"):
        owner_execute("TRUNCATE brands_brand CASCADE")
    assert AuditEvent.objects.count() == len(events)


def test_it_lets_flush_empty_the_log_and_keeps_refusing_truncate_afterwards(events):
    call_command("flush", interactive=False, verbosity=0)
    assert not AuditEvent.objects.exists()
    with pytest.raises(DatabaseError, match="TRUNCATE refused"):
        owner_execute("TRUNCATE audit_auditevent")


def test_it_names_a_row_the_owner_altered_with_the_trigger_disabled(events):
    altered = events[1]
    owner_execute(
        "ALTER TABLE audit_auditevent DISABLE TRIGGER audit_auditevent_append_only",
        ("UPDATE audit_auditevent SET after = %s WHERE id = %s", ['{"name": "Evil"}', altered.pk]),
        "ALTER TABLE audit_auditevent ENABLE TRIGGER audit_auditevent_append_only",
    )
    assert AuditEvent.objects.get(pk=altered.pk).after == {"name": "Evil"}
    message = verify_message()
    assert f"row id={altered.pk} (seq {altered.seq}): content does not match its hash" in message
    assert audit_chain_verify().event_id == altered.pk


def test_it_names_a_row_the_owner_altered_as_a_replica(events):
    altered = events[0]
    backdate = "UPDATE audit_auditevent SET created_at = created_at - interval '1 day' WHERE id = %s"
    owner_execute((backdate, [altered.pk]), replica=True)
    assert f"row id={altered.pk} (seq 1): content does not match its hash" in verify_message()


def test_it_names_a_row_the_owner_rewrote_along_with_its_hash(events):
    altered = events[1]
    owner_execute(
        ("UPDATE audit_auditevent SET after = '{\"name\": \"Evil\"}' WHERE id = %s", [altered.pk]),
        ("UPDATE audit_auditevent e SET hash = audit_auditevent_hash(e) WHERE id = %s", [altered.pk]),
        replica=True,
    )
    assert f"row id={altered.pk} (seq {altered.seq}): its hash" in verify_message()
    assert audit_chain_verify().event_id == altered.pk


def test_it_names_the_gap_left_by_a_row_the_owner_deleted(events):
    owner_execute(("DELETE FROM audit_auditevent WHERE id = %s", [events[1].pk]), replica=True)
    assert f"row id={events[2].pk} (seq 3): expected seq 2, seq 2 missing" in verify_message()


def test_it_reports_a_row_the_owner_inserted_with_the_trigger_skipped(events):
    owner_execute((INSERT, ["sneaked", None]), replica=True)
    sneaked = AuditEvent.objects.get(action="sneaked")
    assert sneaked.seq is None
    assert f"row id={sneaked.pk} has no chain position" in verify_message()


def test_it_keeps_one_linear_chain_with_concurrent_writers(events, brand, app_role):
    threads_per_kind, transactions = 4, 15
    barrier = threading.Barrier(2 * threads_per_kind)
    errors = []

    def django_writer(n):  # the service path, its own Django connection, two events per transaction
        try:
            barrier.wait()
            for i in range(transactions):
                with transaction.atomic():
                    audit_record(actor=None, brand=brand, action=f"django.{n}", target=brand, after={"i": i, "part": 1})
                    audit_record(actor=None, brand=brand, action=f"django.{n}", target=brand, after={"i": i, "part": 2})
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    def app_writer(n):  # raw SQL as the application role
        try:
            with app_role.connect() as conn:
                barrier.wait()
                for i in range(transactions):
                    conn.execute(INSERT, [f"app.{n}", json.dumps({"i": i, "x": 0.1 * i})])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=django_writer, args=(n,)) for n in range(threads_per_kind)]
    threads += [threading.Thread(target=app_writer, args=(n,)) for n in range(threads_per_kind)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors

    rows = list(AuditEvent.objects.order_by("seq").values_list("seq", "action", "after", "created_at"))
    expected = len(events) + threads_per_kind * transactions * 3
    assert [row[0] for row in rows] == list(range(1, expected + 1))
    assert all(a[3] <= b[3] for a, b in zip(rows, rows[1:], strict=False)), "created_at goes back along the chain"
    for n in range(threads_per_kind):
        mine = [(seq, after) for seq, action, after, _ in rows if action == f"django.{n}"]
        assert [after for _, after in mine] == [{"i": i, "part": p} for i in range(transactions) for p in (1, 2)]
        assert all(mine[k + 1][0] == mine[k][0] + 1 for k in range(0, len(mine), 2)), "a transaction was split"
    report = audit_chain_verify()
    assert (report.intact, report.rows, report.head_seq) == (True, expected, expected), report.problem


JSON_VALUES = [
    {"bb": 1, "a": [1.5, 1e-7, 1e1, -0.0, 1e20, 1e22, 0.1, 123.456e5, -2.5e-10], "ab": "\u0001\u001f\u007f"},
    {"ä": 1, "b": 2, "ccc": None, "dd": True, "€uro": [], "z": {}},
    'quote " backslash \\ newline \n tab \t slash / é ✓ 🙂',
    12345678901234567890,
    [[], {}, [None, False]],
]


@pytest.mark.parametrize("value", JSON_VALUES)
def test_it_serializes_json_exactly_as_postgresql_prints_jsonb(services, value):
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::jsonb::text", [json.dumps(value)])
        assert json_text_canonical(json.dumps(value)) == cursor.fetchone()[0]


def test_it_backfills_the_chain_of_existing_rows(services):
    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes()
    executor.migrate([("audit", "0002_append_only_trigger")])
    try:
        with connection.cursor() as cursor:
            for n, days, after in [(0, 2, '{"n": 1.50}'), (1, 0, '{"m": 1e-7}'), (2, 1, None)]:
                cursor.execute(
                    "INSERT INTO audit_auditevent (actor_repr, action, target_type, target_id, after, created_at) "
                    "VALUES ('', %s, 't', '1', %s, %s)",
                    [f"old.{n}", after, datetime.datetime(2001, 2, 3, tzinfo=datetime.UTC) + datetime.timedelta(days)],
                )
    finally:
        MigrationExecutor(connection).migrate(leaves)
    assert list(AuditEvent.objects.order_by("seq").values_list("action", "seq")) == [
        ("old.1", 1), ("old.2", 2), ("old.0", 3)
    ]  # fmt: skip
    out = StringIO()
    call_command("audit_verify", stdout=out)
    assert out.getvalue().startswith("audit chain intact: 3 rows, seq 1-3, head 3:")
    owner_execute((INSERT, ["new", None]))
    assert AuditEvent.objects.get(action="new").seq == 4 and audit_chain_verify().intact


def test_it_refuses_an_app_role_that_inherits_the_right_to_rewrite_the_log(services):
    writer, member = f"audit_writer_{os.getpid()}", f"audit_member_{os.getpid()}"
    owner_execute(f"CREATE ROLE {writer}", f"GRANT UPDATE, DELETE ON audit_auditevent TO {writer}")
    owner_execute(f"CREATE ROLE {member} LOGIN IN ROLE {writer}")
    try:
        with pytest.raises(CommandError, match=f"{member} still has UPDATE, DELETE on audit_auditevent.*{writer}"):
            call_command("db_roles_grant", "--app-role", member)
    finally:
        role_drop(member)
        role_drop(writer)
