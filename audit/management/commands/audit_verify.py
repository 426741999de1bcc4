import re

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS

from audit.chain import audit_chain_verify

ANCHOR = re.compile(r"^(\d+):([0-9a-f]{64})$")


class Command(BaseCommand):
    help = (
        "Walk the audit log's hash chain and recompute every hash. Intact: prints one line with the head "
        "(SEQ:HASH, worth recording elsewhere) and exits 0. Broken: names the first broken link and exits 1."
    )

    def add_arguments(self, parser):
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)
        parser.add_argument(
            "--anchor", action="append", default=[], metavar="SEQ:HASH",
            help="a head printed by an earlier run (repeatable): that row must still be in the chain with that hash; "
            "catches rows removed from the end or a chain rewritten as a whole",
        )  # fmt: skip

    def handle(self, *, database, anchor, **options):
        anchors = []
        for value in anchor:
            match = ANCHOR.match(value.strip().lower())
            if not match:
                raise CommandError(f"--anchor wants SEQ:HASH (a 64-digit hex SHA-256), got {value!r}")
            anchors.append((int(match[1]), match[2]))
        report = audit_chain_verify(using=database, anchors=anchors)
        if not report.intact:
            raise CommandError(report.summary())
        self.stdout.write(report.summary())
