"""Setting a district up: connect ClassLink, map schools, preview the plan (use cases)."""
