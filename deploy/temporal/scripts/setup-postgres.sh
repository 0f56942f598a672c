#!/bin/sh
# Creates or upgrades the Temporal server's two databases (temporal, temporal_visibility) on the stack's
# PostgreSQL with the schema tool of the admin-tools image, as Temporal's own compose examples do
# (temporalio/samples-server, compose/scripts/setup-postgres.sh). Safe to run on every start: `create`
# of an existing database is tolerated and `update-schema` applies only what is missing.
set -eu

: "${POSTGRES_SEEDS:?POSTGRES_SEEDS is required}"
: "${POSTGRES_USER:?POSTGRES_USER is required}"
: "${SQL_PASSWORD:?SQL_PASSWORD is required}"
PORT="${DB_PORT:-5432}"
SCHEMA_DIR=/etc/temporal/schema/postgresql/v12

echo "waiting for PostgreSQL at ${POSTGRES_SEEDS}:${PORT}"
until nc -z -w 5 "${POSTGRES_SEEDS}" "${PORT}"; do sleep 1; done

for database in temporal temporal_visibility; do
  case "${database}" in
    temporal) versioned="${SCHEMA_DIR}/temporal/versioned" ;;
    *) versioned="${SCHEMA_DIR}/visibility/versioned" ;;
  esac
  tool="temporal-sql-tool --plugin postgres12 --ep ${POSTGRES_SEEDS} -u ${POSTGRES_USER} -p ${PORT} --db ${database}"
  ${tool} create || echo "database ${database} exists"
  ${tool} setup-schema -v 0.0 || echo "schema of ${database} already set up"
  ${tool} update-schema -d "${versioned}"
done
echo "Temporal schema is up to date"
