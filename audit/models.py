from django.conf import settings
from django.db import connections, models, router, transaction
from django.db.models.functions import Now
from django.utils import timezone

from .chain import GENESIS_HASH, event_hash, model_json


class AuditEventImmutable(Exception):
    """Raised on any attempt to change or remove a recorded audit event."""


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AuditEventImmutable("Audit events are append-only; they cannot be updated.")

    def delete(self):
        raise AuditEventImmutable("Audit events are append-only; they cannot be deleted.")

    def for_brand(self, brand):
        return self.filter(brand=brand)

    def bulk_create(self, objs, *args, **kwargs):
        if connections[self.db].vendor == "postgresql":
            return super().bulk_create(objs, *args, **kwargs)  # the chain trigger runs for each row
        objs = list(objs)
        with transaction.atomic(using=self.db):
            for obj in objs:
                obj.save(using=self.db)
        return objs


class AuditEvent(models.Model):
    """One change made by a service, recorded in the same transaction.

    Append-only: the model and its queryset refuse updates and deletes; on
    PostgreSQL triggers refuse UPDATE, DELETE and TRUNCATE at the database too,
    and in production the application's role may only INSERT and SELECT here
    (``manage.py db_roles_grant``).

    Hash chain. Each row has a chain position ``seq`` (1, 2, 3, ... with no
    gaps, in the order rows were written; ``id`` comes from a sequence before
    any lock, so it does not give that order), ``prev_hash`` (the ``hash`` of
    row ``seq - 1``, or 64 zeros for the first row) and ``hash``, the SHA-256
    (lowercase hex) of the UTF-8 bytes of this canonical serialization:

        [seq, "created_at", actor_id, "actor_repr", brand_id, "action",
         "target_type", "target_id", before, after, "prev_hash"]

    i.e. the text PostgreSQL prints for ``jsonb_build_array(...)`` of those
    columns: ``created_at`` in UTC as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``;
    ``actor_id``/``brand_id`` a number or null; ``before``/``after`` the stored
    JSON (SQL NULL, what None stores, prints as null too); jsonb's text form throughout: ``", "`` and ``": "``
    separators, object keys ordered by UTF-8 length and then bytewise, strings
    escaped only for ``"``, ``\\`` and control characters, numbers in plain
    decimal notation (``audit.chain.json_canonical``).

    Who computes it. On PostgreSQL a BEFORE INSERT trigger takes a
    transaction-scoped advisory lock (held to commit, so concurrent writers
    from any process append one after another), reads the chain head, and
    sets ``seq``, ``prev_hash``, ``created_at`` (the database's
    ``clock_timestamp()``: any value the client sent is overwritten) and
    ``hash``: the database clock is covered by the hash and no client can
    write a link of its own choosing. On SQLite (development, unit tests)
    ``save()`` does the same in Python inside the write transaction.
    ``manage.py audit_verify`` recomputes every hash in Python and reports the
    first broken link.
    """

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Kept beside the foreign key so the record still reads well in exports.
    actor_repr = models.CharField(max_length=150, blank=True)
    brand = models.ForeignKey("brands.Brand", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    # Set by the database (PostgreSQL: the chain trigger; SQLite: save()), never by the client.
    created_at = models.DateTimeField(db_default=Now(), db_index=True, editable=False)
    # The hash chain; seq is NULL only on a row written with the chain trigger disabled (audit_verify reports it).
    seq = models.BigIntegerField(unique=True, null=True, db_default=None, editable=False)
    prev_hash = models.CharField(max_length=64, db_default="", editable=False)
    hash = models.CharField(max_length=64, db_default="", editable=False)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["brand", "-created_at"])]

    def __str__(self):
        actor = self.actor_repr or "system"
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {actor} {self.action} {self.target_type}:{self.target_id}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AuditEventImmutable("Audit events are append-only; they cannot be updated.")
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        if connections[using].vendor == "postgresql":
            # The chain trigger sets created_at, seq, prev_hash and hash; the
            # INSERT returns them (they have database defaults).
            return super().save(*args, **kwargs)
        with transaction.atomic(using=using):  # SQLite: the write lock is held from here to commit
            head = (
                type(self)._base_manager.using(using)
                .filter(seq__isnull=False).order_by("-seq").values_list("seq", "hash").first()
            )  # fmt: skip
            self.seq, self.prev_hash = (head[0] + 1, head[1]) if head else (1, GENESIS_HASH)
            # SQLite runs in this process: its clock is the application's.
            self.created_at = timezone.now()
            for name in ("actor_repr", "action", "target_type", "target_id"):
                setattr(self, name, self._meta.get_field(name).to_python(getattr(self, name)))
            self.hash = event_hash(
                seq=self.seq,
                created_at=self.created_at,
                actor_id=self.actor_id,
                actor_repr=self.actor_repr,
                brand_id=self.brand_id,
                action=self.action,
                target_type=self.target_type,
                target_id=self.target_id,
                before_json=model_json(self, "before"),
                after_json=model_json(self, "after"),
                prev_hash=self.prev_hash,
            )
            return super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditEventImmutable("Audit events are append-only; they cannot be deleted.")
