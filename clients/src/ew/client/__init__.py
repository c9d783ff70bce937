"""Typed Python clients of the EW roster and sync services."""
