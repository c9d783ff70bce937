-- One role per service, each owning only its own database (DESIGN.md: data ownership). Run once by
-- deploy/postgres-init.sh when the data volume is first initialised; the passwords come from the
-- roster_db_password and sync_db_password secret files as psql variables.
CREATE ROLE ew_roster LOGIN PASSWORD :'roster_password';
CREATE ROLE ew_sync LOGIN PASSWORD :'sync_password';
CREATE DATABASE ew_roster OWNER ew_roster;
CREATE DATABASE ew_sync OWNER ew_sync;
REVOKE ALL ON DATABASE ew_roster FROM PUBLIC;
REVOKE ALL ON DATABASE ew_sync FROM PUBLIC;
