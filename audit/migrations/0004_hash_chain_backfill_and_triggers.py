"""Chain the existing rows (oldest first), then, on PostgreSQL, let the
database chain every new row and refuse TRUNCATE.

PostgreSQL: ``audit_auditevent_hash(row)`` builds the canonical serialization
documented on ``audit.models.AuditEvent`` and returns its SHA-256; the BEFORE
INSERT trigger ``audit_auditevent_chain`` takes a transaction-scoped advisory
lock (held until commit, so writers append one after another), reads the head
of the chain with a fresh snapshot, and overwrites ``seq``, ``prev_hash``,
``created_at`` (``clock_timestamp()``) and ``hash`` whatever the client sent;
``audit_auditevent_no_truncate`` refuses TRUNCATE (``manage.py flush``, run as
the table owner, lifts it for its own transaction). The functions pin their
``search_path`` so that a session's temporary tables cannot stand in for the
audit table. Under REPEATABLE READ or SERIALIZABLE a writer can miss a row that
committed after its snapshot: the unique ``seq`` then refuses the insert rather
than forking the chain.

SQLite: ``AuditEvent.save()`` chains new rows in Python; this backfills there
in Python too.
"""

from django.db import migrations
from django.db.models import F, TextField
from django.db.models.functions import Cast

from audit.chain import CHAIN_LOCK_KEY, GENESIS_HASH, event_hash

FUNCTIONS = """
CREATE FUNCTION audit_auditevent_hash(e audit_auditevent) RETURNS text AS $$
    SELECT encode(sha256(convert_to(jsonb_build_array(
        e.seq,
        to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        e.actor_id,
        e.actor_repr,
        e.brand_id,
        e.action,
        e.target_type,
        e.target_id,
        e.before,
        e.after,
        e.prev_hash
    )::text, 'UTF8')), 'hex')
$$ LANGUAGE sql STABLE SET search_path = pg_catalog, {schema}, pg_temp;

CREATE FUNCTION audit_auditevent_chain() RETURNS trigger AS $$
DECLARE
    head_seq bigint;
    head_hash text;
BEGIN
    PERFORM pg_advisory_xact_lock({lock_key});
    SELECT seq, hash INTO head_seq, head_hash
        FROM audit_auditevent WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1;
    NEW.seq := COALESCE(head_seq, 0) + 1;
    NEW.prev_hash := COALESCE(head_hash, '{genesis}');
    NEW.created_at := clock_timestamp();
    NEW.hash := audit_auditevent_hash(NEW);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql SET search_path = pg_catalog, {schema}, pg_temp;

CREATE FUNCTION audit_auditevent_no_truncate() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_auditevent is append-only: TRUNCATE refused';
END;
$$ LANGUAGE plpgsql SET search_path = pg_catalog, {schema}, pg_temp;
"""

BACKFILL = """
ALTER TABLE audit_auditevent DISABLE TRIGGER audit_auditevent_append_only;
-- Positions in two steps, so that no intermediate value collides with the unique seq.
UPDATE audit_auditevent e SET seq = -o.n FROM (
    SELECT id, row_number() OVER (ORDER BY seq NULLS LAST, created_at, id) AS n FROM audit_auditevent
) o WHERE e.id = o.id;
UPDATE audit_auditevent SET seq = -seq;
DO $$
DECLARE
    r audit_auditevent;
    previous text := '{genesis}';
BEGIN
    FOR r IN SELECT * FROM audit_auditevent ORDER BY seq LOOP
        r.prev_hash := previous;
        previous := audit_auditevent_hash(r);
        UPDATE audit_auditevent SET prev_hash = r.prev_hash, hash = previous WHERE id = r.id;
    END LOOP;
END;
$$;
ALTER TABLE audit_auditevent ENABLE TRIGGER audit_auditevent_append_only;
"""

TRIGGERS = """
CREATE TRIGGER audit_auditevent_chain
    BEFORE INSERT ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_auditevent_chain();
CREATE TRIGGER audit_auditevent_no_truncate
    BEFORE TRUNCATE ON audit_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION audit_auditevent_no_truncate();
"""

DROP = """
DROP TRIGGER IF EXISTS audit_auditevent_no_truncate ON audit_auditevent;
DROP TRIGGER IF EXISTS audit_auditevent_chain ON audit_auditevent;
DROP FUNCTION IF EXISTS audit_auditevent_no_truncate();
DROP FUNCTION IF EXISTS audit_auditevent_chain();
DROP FUNCTION IF EXISTS audit_auditevent_hash(audit_auditevent);
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SELECT quote_ident(current_schema())")
            (schema,) = cursor.fetchone()
        schema_editor.execute(
            FUNCTIONS.format(schema=schema, lock_key=CHAIN_LOCK_KEY, genesis=GENESIS_HASH), params=None
        )
        schema_editor.execute(BACKFILL.format(genesis=GENESIS_HASH), params=None)
        schema_editor.execute(TRIGGERS, params=None)
        return
    backfill_in_python(apps.get_model("audit", "AuditEvent"), schema_editor.connection.alias)


def backfill_in_python(model, using):
    events = model.objects.using(using)
    rows = sorted(
        events.annotate(before_json=Cast(F("before"), TextField()), after_json=Cast(F("after"), TextField()))
        .values("id", "seq", "created_at", "actor_id", "actor_repr", "brand_id", "action", "target_type",
                "target_id", "before_json", "after_json"),  # fmt: skip
        key=lambda row: (row["seq"] is None, row["seq"] or 0, row["created_at"], row["id"]),
    )
    events.update(seq=None)
    previous = GENESIS_HASH
    for seq, row in enumerate(rows, start=1):
        row_id = row.pop("id")
        row.update(seq=seq, prev_hash=previous)
        previous = event_hash(**row)
        events.filter(pk=row_id).update(seq=seq, prev_hash=row["prev_hash"], hash=previous)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_hash_chain_fields")]
    operations = [migrations.RunPython(forwards, backwards)]
