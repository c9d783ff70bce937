"""Pure planning: the plan a sync applies, school matching, names, e-mails and the rosters it compares."""
