"""The audit log's hash chain: one canonical serialization of a row, its hash,
and the walk that verifies the chain (``manage.py audit_verify``).

The format is documented on ``audit.models.AuditEvent``. On PostgreSQL the
database computes the hashes (the trigger functions in migration 0004 build the
same text with ``jsonb_build_array(...)::text``); this module computes them on
SQLite and recomputes them everywhere when verifying, independently of those
functions.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import F, TextField
from django.db.models.functions import Cast

GENESIS_HASH = "0" * 64
# pg_advisory_xact_lock key shared by the insert trigger and the backfill
# (0x6175646974, "audit" in ASCII).
CHAIN_LOCK_KEY = 0x6175646974


def json_canonical(value):
    """The JSON text PostgreSQL's jsonb prints for ``value`` (parsed JSON:
    dict, list, str, int, Decimal or float, bool, None).

    Object keys sorted by UTF-8 length, then bytewise; ``", "`` and ``": "``
    as separators; strings escaped as jsonb does (``\\"``, ``\\\\``, ``\\b``,
    ``\\f``, ``\\n``, ``\\r``, ``\\t``, other control characters as
    ``\\u00xx``, everything else as is); numbers in plain decimal notation
    with their digits kept (``1e-7`` is ``0.0000001``, ``1.50`` stays).
    """
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal):
        number = Decimal(repr(value)) if isinstance(value, float) else value
        if not number.is_finite():
            raise ValueError(f"JSON has no {value}")
        return format(abs(number) if number.is_zero() else number, "f")
    if isinstance(value, dict):
        keys = sorted(value, key=lambda key: (len(key.encode()), key.encode()))
        return "{" + ", ".join(f"{json_canonical(key)}: {json_canonical(value[key])}" for key in keys) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(json_canonical(item) for item in value) + "]"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def json_text_canonical(text):
    """Canonical form of stored JSON text (SQL NULL, ``None``, reads as null)."""
    if text is None:
        return "null"
    return json_canonical(json.loads(text, parse_float=Decimal))


def timestamp_canonical(moment):
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_canonical(*, seq, created_at, actor_id, actor_repr, brand_id, action, target_type, target_id,
                    before_json, after_json, prev_hash):  # fmt: skip
    """The text that is hashed; ``before_json``/``after_json`` are JSON text
    as stored (or None for SQL NULL)."""
    return "[" + ", ".join([
        json_canonical(seq),
        json_canonical(timestamp_canonical(created_at)),
        json_canonical(actor_id),
        json_canonical(actor_repr),
        json_canonical(brand_id),
        json_canonical(action),
        json_canonical(target_type),
        json_canonical(target_id),
        json_text_canonical(before_json),
        json_text_canonical(after_json),
        json_canonical(prev_hash),
    ]) + "]"  # fmt: skip


def event_hash(**fields):
    return hashlib.sha256(event_canonical(**fields).encode()).hexdigest()


def model_json(event, field_name):
    """A JSONField's value as the JSON text Django stores for it (None for SQL NULL)."""
    value = getattr(event, field_name)
    return None if value is None else json.dumps(value, cls=event._meta.get_field(field_name).encoder)


@dataclass(frozen=True)
class ChainReport:
    rows: int
    head_seq: int | None
    head_hash: str | None
    problem: str | None = None  # the first broken link, in words
    event_id: int | None = None  # the row it names

    @property
    def intact(self):
        return self.problem is None

    def summary(self):
        if not self.intact:
            return f"audit chain broken: {self.problem}"
        if not self.rows:
            return "audit chain intact: 0 rows"
        return f"audit chain intact: {self.rows} rows, seq 1-{self.head_seq}, head {self.head_seq}:{self.head_hash}"


VERIFIED_FIELDS = ["id", "seq", "created_at", "actor_id", "actor_repr", "brand_id", "action", "target_type",
                   "target_id", "before_json", "after_json", "prev_hash", "hash"]  # fmt: skip


def audit_chain_verify(*, using=DEFAULT_DB_ALIAS, anchors=(), chunk_size=2000):
    """Walk the chain in ``seq`` order and report the first broken link.

    ``anchors`` are ``(seq, hash)`` pairs recorded earlier (for example the
    head printed by a previous run): each must still be in the chain, which
    catches a chain removed from its tail or rewritten as a whole.
    """
    from .models import AuditEvent

    connection = connections[using]
    events = AuditEvent.objects.using(using).order_by()
    anchors = dict(anchors)
    fresh_transaction = not connection.in_atomic_block
    with transaction.atomic(using=using):
        if connection.vendor == "postgresql" and fresh_transaction:
            # One snapshot for both queries, whatever commits meanwhile.
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        unchained = events.filter(seq__isnull=True).order_by("id").values_list("id", flat=True).first()
        rows = (
            events.filter(seq__isnull=False)
            .annotate(before_json=Cast(F("before"), TextField()), after_json=Cast(F("after"), TextField()))
            .order_by("seq")
            .values_list(*VERIFIED_FIELDS, named=True)
        )
        count, previous = 0, None
        for row in rows.iterator(chunk_size=chunk_size):
            problem, event_id = _link_problem(row, previous, anchors)
            if problem:
                return ChainReport(count, _seq(previous), _hash(previous), problem, event_id)
            count, previous = count + 1, row
    if anchors:
        seq, expected = min(anchors.items())
        return ChainReport(
            count, _seq(previous), _hash(previous),
            f"anchor seq {seq} (hash {expected}) is missing: the chain ends at seq {_seq(previous) or 0}",
        )  # fmt: skip
    if unchained is not None:
        return ChainReport(
            count, _seq(previous), _hash(previous),
            f"row id={unchained} has no chain position (seq is NULL): it was written with the chain trigger "
            "disabled",
            unchained,
        )  # fmt: skip
    return ChainReport(count, _seq(previous), _hash(previous))


def _seq(row):
    return None if row is None else row.seq


def _hash(row):
    return None if row is None else row.hash


def _link_problem(row, previous, anchors):
    """(what is wrong, the id of the row to blame), or (None, None)."""
    where = f"row id={row.id} (seq {row.seq})"
    expected_seq = 1 if previous is None else previous.seq + 1
    if row.seq != expected_seq:
        missing = f"seq {expected_seq}" if row.seq == expected_seq + 1 else f"seq {expected_seq}-{row.seq - 1}"
        return f"{where}: expected seq {expected_seq}, {missing} missing (rows deleted)", row.id
    computed = event_hash(**{name: getattr(row, name) for name in VERIFIED_FIELDS if name not in ("id", "hash")})
    if row.hash != computed:
        return f"{where}: content does not match its hash (stored {row.hash}, computed {computed}): altered", row.id
    if previous is None and row.prev_hash != GENESIS_HASH:
        return f"{where}: prev_hash {row.prev_hash} of the first row is not {GENESIS_HASH}", row.id
    if previous is not None and row.prev_hash != previous.hash:
        return (
            f"row id={previous.id} (seq {previous.seq}): its hash {previous.hash} is not the prev_hash "
            f"{row.prev_hash} of the next row id={row.id}: one of them was rewritten along with its hash",
            previous.id,
        )
    if row.seq in anchors and anchors.pop(row.seq) != row.hash:
        return f"{where}: hash {row.hash} differs from the anchor recorded for seq {row.seq}", row.id
    return None, None
