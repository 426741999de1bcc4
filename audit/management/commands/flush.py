"""Django's flush, able to empty the audit log on PostgreSQL.

The audit table refuses TRUNCATE (trigger ``audit_auditevent_no_truncate``).
Emptying every table is what flush is for (and how tests that commit clean
up), so, when the trigger is there, flush disables it for its own transaction
only: ``ALTER TABLE`` needs the table's owner, so the application role (which
may not TRUNCATE anything anyway) still cannot, and a plain ``TRUNCATE`` stays
refused for everyone.
"""

from django.core.management.commands import flush
from django.core.management.sql import emit_post_migrate_signal
from django.db import connections, transaction

from audit.models import AuditEvent

TRIGGER = "audit_auditevent_no_truncate"


class Command(flush.Command):
    help = flush.Command.help + " On PostgreSQL this needs the owner of the audit table and empties the audit log too."

    def handle(self, **options):
        database = options["database"]
        connection = connections[database]
        table = AuditEvent._meta.db_table
        if connection.vendor != "postgresql" or not truncate_trigger_enabled(connection, table):
            return super().handle(**options)
        if options["interactive"]:
            confirm = input(
                "You have requested a flush of the database.\nThis will IRREVERSIBLY DESTROY all data currently in "
                f'the "{connection.settings_dict["NAME"]}" database, the audit log included,\nand return each table to '
                "an empty state.\nAre you sure you want to do this?\n\n    Type 'yes' to continue, or 'no' to cancel: "
            )
            if confirm != "yes":
                self.stdout.write("Flush cancelled.")
                return
        alter = f"ALTER TABLE {connection.ops.quote_name(table)} %s TRIGGER {connection.ops.quote_name(TRIGGER)}"
        with transaction.atomic(using=database):
            with connection.cursor() as cursor:
                cursor.execute(alter % "DISABLE")
            # post_migrate handlers may write rows; they run once the trigger is back.
            super().handle(**{**options, "interactive": False, "inhibit_post_migrate": True})
            with connection.cursor() as cursor:
                cursor.execute(alter % "ENABLE")
        if not options.get("inhibit_post_migrate", False):
            emit_post_migrate_signal(options["verbosity"], options["interactive"], database)


def truncate_trigger_enabled(connection, table):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass(%s) AND tgname = %s AND tgenabled <> 'D'",
            [connection.ops.quote_name(table), TRIGGER],
        )
        return cursor.fetchone() is not None
