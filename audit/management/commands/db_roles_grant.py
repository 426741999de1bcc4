"""Set up the PostgreSQL role the application runs as, from the role that owns
the tables (the one that runs ``migrate``).

The application role gets INSERT and SELECT on the audit log and nothing else
there (USAGE on its id sequence), SELECT on django_migrations, SELECT, INSERT,
UPDATE and DELETE on every other table of the schema, USAGE and SELECT on the
other sequences, and the same by default for tables and sequences the owner
creates later. It never owns anything, so it cannot disable or drop the audit
log's triggers, and it is refused if it is a superuser or a member of the
owner. Idempotent: run it after every ``migrate``.
"""

import os
import re

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from psycopg import sql

from audit.models import AuditEvent

ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
DML = "SELECT, INSERT, UPDATE, DELETE"


class Command(BaseCommand):
    help = (
        "Create the application's PostgreSQL role if missing and grant it INSERT and SELECT only on the audit log, "
        "DML on the other tables, and the same on tables later migrations create. Run as the tables' owner."
    )

    def add_arguments(self, parser):
        parser.add_argument("--app-role", required=True, help="the role web and workers connect as, e.g. persona_app")
        parser.add_argument(
            "--password-env", metavar="VAR", help="set the role's password from this environment variable"
        )
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *, app_role, password_env, database, **options):
        connection = connections[database]
        if connection.vendor != "postgresql":
            raise CommandError(f"db_roles_grant needs PostgreSQL; database {database!r} is {connection.vendor}")
        if not ROLE_NAME.match(app_role):
            raise CommandError(f"--app-role must be a lowercase SQL name ([a-z_][a-z0-9_]*), got {app_role!r}")
        password = None
        if password_env:
            password = os.environ.get(password_env)
            if not password:
                raise CommandError(f"--password-env: environment variable {password_env} is not set or empty")
        try:
            with transaction.atomic(using=database):
                summary = roles_grant(connection, app_role=app_role, password=password)
        except DatabaseError as exc:
            raise CommandError(f"db_roles_grant failed: {str(exc).strip().splitlines()[0]}") from exc
        self.stdout.write(summary)


def roles_grant(connection, *, app_role, password):
    table = AuditEvent._meta.db_table
    raw = connection.connection
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, r.rolsuper OR r.rolcreaterole, pg_get_userbyid(c.relowner), n.nspname, "
            "pg_has_role(current_user, c.relowner, 'MEMBER') OR r.rolsuper, current_database(), "
            "pg_get_serial_sequence(c.oid::regclass::text, 'id') "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, pg_roles r "
            "WHERE c.oid = to_regclass(%s) AND r.rolname = current_user",
            [connection.ops.quote_name(table)],
        )
        row = cursor.fetchone()
        if row is None:
            raise CommandError(f"table {table} does not exist: run manage.py migrate (as the owner role) first")
        user, can_create_roles, owner, schema, acts_as_owner, database, sequence = row
        if not acts_as_owner:
            raise CommandError(f"run db_roles_grant as the owner of {table} ({owner}), not as {user}")
        if app_role == owner:
            raise CommandError(f"the application role must not own the tables, and {app_role} owns {table}")
        cursor.execute(
            "SELECT rolsuper, pg_has_role(rolname, %s, 'MEMBER') FROM pg_roles WHERE rolname = %s", [owner, app_role]
        )
        existing = cursor.fetchone()
        if existing and existing[0]:
            raise CommandError(f"{app_role} is a superuser: it could bypass the audit log's triggers")
        if existing and existing[1]:
            raise CommandError(f"{app_role} is a member of the owner role {owner}: it would have the owner's rights")
        if (not existing or password) and not can_create_roles:
            action = "create" if not existing else "set the password of"
            raise CommandError(f"{user} may not {action} role {app_role} (needs CREATEROLE): do that as a superuser")

        role = sql.Identifier(app_role)
        if not existing:
            statement = sql.SQL("CREATE ROLE {} LOGIN").format(role)
        elif password:
            statement = sql.SQL("ALTER ROLE {}").format(role)
        else:
            statement = None
        if statement is not None:
            if password:
                statement += sql.SQL(" PASSWORD {}").format(sql.Literal(password))
            raw.execute(statement)  # the raw connection: the password stays out of Django's query log

        names = {
            "role": role,
            "owner": sql.Identifier(owner),
            "schema": sql.Identifier(schema),
            "database": sql.Identifier(database),
            "audit": sql.Identifier(schema, table),
            "migrations": sql.Identifier(schema, "django_migrations"),
            "dml": sql.SQL(DML),
        }
        statements = [
            "GRANT CONNECT ON DATABASE {database} TO {role}",
            "GRANT USAGE ON SCHEMA {schema} TO {role}",
            # Exactly these privileges, whatever was granted before.
            "REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {role}",
            "GRANT {dml} ON ALL TABLES IN SCHEMA {schema} TO {role}",
            "REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {role}",
            "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}",
            "REVOKE UPDATE, DELETE ON {audit} FROM {role}",
            "REVOKE INSERT, UPDATE, DELETE ON {migrations} FROM {role}",
            "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} REVOKE ALL ON TABLES FROM {role}",
            "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} GRANT {dml} ON TABLES TO {role}",
            "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} REVOKE ALL ON SEQUENCES FROM {role}",
            "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} GRANT USAGE, SELECT ON SEQUENCES TO {role}",
        ]
        for statement in statements:
            cursor.execute(sql.SQL(statement).format(**names).as_string(raw))
        if sequence:  # pg_get_serial_sequence quotes the name as needed
            revoke = sql.SQL("REVOKE SELECT ON SEQUENCE {} FROM {}").format(sql.SQL(sequence), role)
            cursor.execute(revoke.as_string(raw))
        # Revoking cannot take away what the role inherits from others it is a
        # member of (pg_write_all_data, a role granted rights on the table...).
        cursor.execute(
            "SELECT p FROM unnest(ARRAY['UPDATE', 'DELETE', 'TRUNCATE', 'TRIGGER', 'REFERENCES']) AS p "
            "WHERE has_table_privilege(%s, to_regclass(%s), p)",
            [app_role, connection.ops.quote_name(table)],
        )
        inherited = [privilege for (privilege,) in cursor.fetchall()]
        if inherited:
            cursor.execute(
                "SELECT string_agg(g.rolname, ', ') FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
                "JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = %s",
                [app_role],
            )
            (through,) = cursor.fetchone()
            raise CommandError(
                f"{app_role} still has {', '.join(inherited)} on {table} through the roles it belongs to "
                f"({through or 'none found'}): revoke that membership first"
            )
        cursor.execute("SELECT count(*) FROM pg_tables WHERE schemaname = %s", [schema])
        (tables,) = cursor.fetchone()
    return (
        f"{'created' if not existing else 'updated'} role {app_role}: SELECT, INSERT on {table}; {DML} on the "
        f"{tables - 1} other tables of schema {schema} (SELECT only on django_migrations); sequences USAGE, SELECT "
        f"(USAGE only on the audit log's); the same by default on tables and sequences {owner} creates"
    )
