-- Each service owns its own database (DESIGN.md: data ownership).
CREATE DATABASE ew_roster;
CREATE DATABASE ew_sync;
