"""Telling the EW product: the webhook sender that delivers the outbox's events, signed, in order."""
