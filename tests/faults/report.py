"""What each fault case ended with, printed as one table at the end of the session."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    """One case: how its run ended, after how long, and what the roster was left as."""

    case: str
    state: str
    seconds: float
    roster: str
    message: str


OUTCOMES: list[Outcome] = []


def table() -> list[str]:
    """The outcomes as aligned lines, in the order the cases ran."""
    width = max((len(outcome.case) for outcome in OUTCOMES), default=4)
    lines = [f"{'case':<{width}}  {'run ended':<10} {'after':>7}  {'roster':<6}  message"]
    lines += [
        f"{o.case:<{width}}  {o.state:<10} {o.seconds:>6.1f}s  {o.roster:<6}  {o.message}" for o in OUTCOMES
    ]
    return lines
