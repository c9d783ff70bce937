#!/bin/sh
# PostgreSQL's image runs this once, on a fresh data volume: deploy/postgres-init.sql with the
# services' database passwords read from their secret files.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v roster_password="$(cat /run/secrets/roster_db_password)" \
    -v sync_password="$(cat /run/secrets/sync_db_password)" \
    -f /deploy/postgres-init.sql
