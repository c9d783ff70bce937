"""``python -m services.demo`` (``make run``): the whole job on embedded defaults, as an admin sees it.

Starts the OneRoster sandbox, the roster service and the sync service as separate processes on free
local ports (SQLite files and logs in a fresh ``var/demo/``, the stub broker with the sync service's
in-process worker), creates a district with a few EW schools, then drives the product through the
client library: connect → school mapping → map a suggestion by hand → preview → sync with a progress
bar → AutoSync turned on (the sync service runs the scheduler in embedded mode) → a change in
ClassLink (teachers leave, a school is renamed) → sync again → run history.

It exits 0 when every step did what it should, 1 otherwise; ``--serve`` keeps everything running
afterwards (printing the targets and a dev token) until Ctrl-C. Every process is stopped on the way
out, also on errors and Ctrl-C: SIGTERM first, SIGKILL after a grace period.

Environment it sets for itself and the services (development keys only, never for production):
``EW_JWT_ALLOW_DEV_KEY=true`` (HS256 tokens signed with the public development key),
``EW_SECRET_ALLOW_DEV_KEY=true`` (the public development Fernet key encrypts the ClassLink secret),
``EW_SYNC_ALLOW_INSECURE_HTTP=true`` (the sandbox speaks plain http on 127.0.0.1),
``EW_ROSTER_DATABASE_URL`` / ``EW_SYNC_DATABASE_URL`` (SQLite files in the work dir),
``EW_ROSTER_LISTEN_ADDRESS`` / ``EW_SYNC_LISTEN_ADDRESS`` / ``EW_SYNC_ROSTER_TARGET`` (free ports) and
an empty ``EW_BROKER_URL`` (stub broker, in-process worker).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
from ew.client.errors import RosterError
from ew.client.progress import follow
from ew.client.roster import RosterClient
from ew.client.sync import SyncClient
from ew.client.views import (
    autosync_table,
    ew_only_table,
    guard_text,
    items_table,
    mapping_table,
    runs_table,
    summary_table,
)
from ew.sync.v1 import sync_pb2
from rich.console import Console
from rich.rule import Rule

from services.common.auth import ALL_DISTRICTS, SERVICE_PLAN, AuthSettings, Role
from services.common.devtoken import mint_dev_token
from services.common.processes import (
    START_DEADLINE,
    ProcessFailed,
    ProcessGroup,
    base_environment,
    first_line,
    free_address,
    wait_for_log,
    wait_serving,
)
from services.oneroster_sandbox import truth

DISTRICT_ID = "demo-district"
ADMIN_HEADER = "X-Sandbox-Admin-Token"
TEACHERS_LEAVING = 3
AUTOSYNC_TIME_ZONE = "America/New_York"
CLOSE_SUGGESTION = 60
# Abbreviations districts really use; each turns a ClassLink name into a look-alike EW name.
_ABBREVIATIONS = (("Elementary", "Elem"), ("Middle School", "MS"), ("High School", "HS"), ("School", "Sch"))

# Logs and pipes get a width that fits the tables; terminals keep their own.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)


class DemoFailed(Exception):
    """A step did not do what it should; the message says which and why."""


def dev_environment(workdir: Path) -> dict[str, str]:
    """The variables both services and this process need for an embedded, development-key run."""
    return {
        "EW_JWT_ALLOW_DEV_KEY": "true",
        "EW_SECRET_ALLOW_DEV_KEY": "true",
        "EW_SYNC_ALLOW_INSECURE_HTTP": "true",
        "EW_BROKER_URL": "",
        "EW_ROSTER_DATABASE_URL": f"sqlite:///{workdir / 'roster.db'}",
        "EW_SYNC_DATABASE_URL": f"sqlite:///{workdir / 'sync.db'}",
    }


@dataclass(frozen=True)
class Stack:
    """What the demo talks to."""

    sandbox: dict[str, Any]
    roster_target: str
    sync_target: str
    gateway_url: str

    def settings_page(self, token: str) -> str:
        """The ClassLink Settings page, signed in with ``token`` (the page reads it from the fragment)."""
        return f"{self.gateway_url}/settings/#token={token}"


def start_stack(processes: ProcessGroup, *, schools: int, teachers: int, seed: int) -> Stack:
    """Sandbox, roster service and sync service, each SERVING before the next one starts."""
    deadline = time.monotonic() + START_DEADLINE

    def left() -> float:
        return max(0.0, deadline - time.monotonic())

    sandbox = processes.start(
        "sandbox",
        "services.oneroster_sandbox",
        *("--port", "0", "--seed", str(seed), "--schools", str(schools), "--teachers", str(teachers)),
        capture_stdout=True,
    )
    info: dict[str, Any] = json.loads(first_line(sandbox, deadline=left()))
    console.print(f"OneRoster sandbox   {info['server_url']}  ({schools} schools, {teachers:,} teachers)")

    roster_target = free_address()
    processes.environment["EW_ROSTER_LISTEN_ADDRESS"] = roster_target
    roster = processes.start("roster", "services.roster")
    wait_serving(roster, roster_target, deadline=left())
    console.print(f"Roster service      {roster_target}")

    sync_target = free_address()
    processes.environment["EW_SYNC_LISTEN_ADDRESS"] = sync_target
    processes.environment["EW_SYNC_ROSTER_TARGET"] = roster_target
    sync = processes.start("sync", "services.sync")
    wait_serving(sync, sync_target, deadline=left())
    console.print(f"Sync service        {sync_target}  (with its worker and the AutoSync scheduler)")

    gateway_address = free_address()
    processes.environment |= {
        "EW_GATEWAY_LISTEN_ADDRESS": gateway_address,
        "EW_GATEWAY_SYNC_TARGET": sync_target,
        "EW_GATEWAY_ROSTER_TARGET": roster_target,
    }
    gateway = processes.start("gateway", "services.gateway")
    wait_for_log(gateway, "Application startup complete", deadline=left())
    console.print(f"HTTP gateway        http://{gateway_address}  (OpenAPI at /openapi.json)")
    return Stack(info, roster_target, sync_target, f"http://{gateway_address}")


def check_gateway(stack: Stack, user_token: str) -> None:
    """The runs the demo made, read back over HTTP through the gateway; DemoFailed if they differ."""
    response = httpx.get(
        f"{stack.gateway_url}/v1/districts/{DISTRICT_ID}/syncRuns",
        headers={"Authorization": f"Bearer {user_token}"},
        timeout=30,
    )
    if response.status_code != 200:
        raise DemoFailed(f"the gateway answered {response.status_code}: {response.text[:300]}")
    runs = response.json().get("runs", [])
    states = {run["state"] for run in runs}
    if len(runs) < 2 or states != {"SYNC_RUN_STATE_SUCCEEDED"}:
        raise DemoFailed(f"the gateway listed {len(runs)} runs in states {sorted(states)}")
    console.print(
        f"GET /v1/districts/{DISTRICT_ID}/syncRuns through the gateway: {len(runs)} succeeded runs."
    )


def look_alike(name: str) -> str:
    """The name as another system might spell it: abbreviated level, or with a campus suffix."""
    for long, short in _ABBREVIATIONS:
        if long in name:
            return name.replace(long, short, 1)
    return f"{name} Campus"


class SandboxAdmin:
    """The sandbox's admin API: the district's ground truth and changes to it."""

    def __init__(self, info: dict[str, Any]) -> None:
        self._http = httpx.Client(
            base_url=info["base_url"], headers={ADMIN_HEADER: info["admin_token"]}, timeout=30
        )

    def close(self) -> None:
        """Close the HTTP client."""
        self._http.close()

    def roster(self) -> dict[str, Any]:
        """Orgs and users as ClassLink holds them now."""
        response = self._http.get("/_sandbox/roster")
        response.raise_for_status()
        snapshot: dict[str, Any] = response.json()
        return snapshot

    def change(self, ops: list[dict[str, Any]]) -> None:
        """Apply roster changes (remove_user, update_school, ...)."""
        response = self._http.post("/_sandbox/roster", json={"ops": ops})
        response.raise_for_status()


def active_schools(snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    """ClassLink's active schools, by name."""
    return sorted(truth.active_schools(snapshot), key=lambda o: (o["name"], o["sourcedId"]))


def step(title: str) -> None:
    """A heading for the next step."""
    console.print()
    console.print(Rule(f"[bold]{title}"))


def set_up_district(roster: RosterClient, snapshot: dict[str, Any]) -> list[str]:
    """The district and EW schools the admin had before ClassLink; returns the schools' names.

    One school is spelled like ClassLink's (auto-mapped), two are look-alikes (suggested), and one
    ClassLink does not know.
    """
    roster.create_district(DISTRICT_ID, "Demo Unified School District")
    schools = active_schools(snapshot)
    if len(schools) < 3:
        raise DemoFailed("the demo needs a district with at least 3 schools (--schools 3 or more)")
    names = [schools[0]["name"].upper(), look_alike(schools[1]["name"]), look_alike(schools[2]["name"])]
    names.append("District Office Annex")
    created = roster.batch_create_schools(DISTRICT_ID, names)
    return [school.display_name for school in created]


def show_mapping(client: SyncClient) -> list[sync_pb2.SchoolMapping]:
    """The mapping table, trimmed to the interesting rows: mapped ones and close suggestions."""
    response = client.list_school_mappings(DISTRICT_ID, page_size=500)
    entries = list(response.school_mappings)
    interesting = [
        e
        for e in entries
        if e.origin != sync_pb2.MAPPING_ORIGIN_NONE
        or (e.suggestions and e.suggestions[0].score >= CLOSE_SUGGESTION)
    ]
    console.print(mapping_table(interesting, title="School mapping (mapped, and close suggestions)"))
    others = len(entries) - len(interesting)
    console.print(
        f"{response.mapped_count} of {response.total_size} ClassLink schools mapped; {others} more have no "
        f"look-alike in EW scoring {CLOSE_SUGGESTION} or more (`ew-sync mapping` lists every one); "
        "unmapped schools are created with their ClassLink names."
    )
    if response.ew_only_schools:
        console.print(ew_only_table(response.ew_only_schools))
    return entries


def run_sync(client: SyncClient, title: str) -> sync_pb2.SyncEvent:
    """Sync with a progress bar; DemoFailed unless the run succeeded."""
    events = client.sync_rosters(DISTRICT_ID)
    last = follow(events, console)
    if last is None:
        raise DemoFailed(f"{title}: the run sent no events")
    console.print(summary_table(last.summary, title=title))
    if last.state != sync_pb2.SYNC_RUN_STATE_SUCCEEDED:
        run = client.get_run(events.run_name)
        raise DemoFailed(
            f"{title} ended {sync_pb2.SyncRunState.Name(last.state)}: {run.error_message or last.message}"
        )
    return last


def turn_on_autosync(client: SyncClient) -> None:
    """Turn AutoSync on (monthly, the 1st at 03:00 New York time) and show its next run."""
    settings = client.set_autosync(
        sync_pb2.AutoSync(
            name=f"districts/{DISTRICT_ID}/autoSync", enabled=True, time_zone=AUTOSYNC_TIME_ZONE
        )
    )
    if not settings.enabled or not settings.HasField("next_run_time"):
        raise DemoFailed("AutoSync did not turn on with a next run time")
    console.print(autosync_table(settings))
    console.print("Force Sync Now (`ew-sync force`) still syncs at any time.")


def demo(stack: Stack, *, user_token: str, service_token: str) -> None:
    """The administrator's flow; DemoFailed when a step does not do what it should."""
    admin = SandboxAdmin(stack.sandbox)
    try:
        snapshot = admin.roster()
        step("1. EW before ClassLink: a district with a few schools")
        with RosterClient(
            stack.roster_target, metadata=lambda: [("authorization", f"Bearer {service_token}")]
        ) as roster:
            for name in set_up_district(roster, snapshot):
                console.print(f"  EW school: {name}")

        with SyncClient(stack.sync_target, token=lambda: user_token) as client:
            step("2. Connect ClassLink (credentials typed in by hand)")
            connected = client.connect_manual(
                DISTRICT_ID,
                server_url=stack.sandbox["server_url"],
                client_id=stack.sandbox["client_id"],
                client_secret=stack.sandbox["client_secret"],
                auth_method=sync_pb2.AUTH_METHOD_OAUTH1,
            )
            console.print(f"[bold green]{connected.message}[/]")
            console.print(f"Secret stored encrypted; shown only as {connected.connection.secret_hint!r}.")

            step("3. Setup Sync: ClassLink schools beside EW schools")
            entries = show_mapping(client)
            suggested = max(
                (e for e in entries if e.origin == sync_pb2.MAPPING_ORIGIN_NONE and e.suggestions),
                key=lambda e: e.suggestions[0].score,
                default=None,
            )
            if suggested is None:
                raise DemoFailed(
                    "no ClassLink school got a suggestion, though two EW schools are look-alikes"
                )
            best = suggested.suggestions[0]
            mapped = client.map_schools(DISTRICT_ID, [(suggested.classlink_school_id, best.ew_school_id)])
            console.print(
                f"Mapped by hand: {suggested.classlink_school_name!r} → {best.ew_school_name!r} "
                f"(score {best.score:.0f})"
            )
            console.print(mapping_table(mapped, title="Mapped by hand"))

            step("4. Preview: what a sync would change")
            preview = client.preview_sync(DISTRICT_ID, page_size=10)
            console.print(summary_table(preview.summary, title="Preview"))
            console.print(guard_text(preview.guard))
            console.print(items_table(preview.items, title="First changes"))

            step("5. Sync")
            first = run_sync(client, "First sync")
            if first.summary.teachers_added != preview.summary.teachers_added:
                raise DemoFailed(
                    f"the sync added {first.summary.teachers_added} teachers, the preview said "
                    f"{preview.summary.teachers_added}"
                )

            step("6. AutoSync: from now on the district syncs itself every month")
            turn_on_autosync(client)

            step(f"7. Meanwhile in ClassLink: {TEACHERS_LEAVING} teachers leave, a school is renamed")
            # Each leaver is a person EW holds: every ClassLink row of that person leaves.
            leaving_people = truth.people(snapshot)[:TEACHERS_LEAVING]
            leaving = [rows[0] for rows in leaving_people]
            renamed_from = suggested.classlink_school_name
            renamed_to = f"{renamed_from} Academy"
            admin.change(
                [
                    {"op": "remove_user", "sourcedId": row["sourcedId"]}
                    for rows in leaving_people
                    for row in rows
                ]
                + [
                    {
                        "op": "update_school",
                        "sourcedId": suggested.classlink_school_id,
                        "set": {"name": renamed_to},
                    }
                ]
            )
            for teacher in leaving:
                console.print(f"  left: {teacher['givenName']} {teacher['familyName']} <{teacher['email']}>")
            console.print(f"  renamed: {renamed_from!r} → {renamed_to!r}")

            step("8. Sync again")
            second = run_sync(client, "Second sync")
            if second.summary.teachers_archived != len(leaving) or second.summary.schools_created:
                raise DemoFailed(
                    f"the second sync archived {second.summary.teachers_archived} teachers (expected "
                    f"{len(leaving)}) and created {second.summary.schools_created} schools (expected 0)"
                )
            console.print(
                f"The renamed school kept its mapping: no duplicate school, {len(leaving)} teachers archived."
            )

            step("9. Run history")
            console.print(runs_table(client.list_runs(DISTRICT_ID).runs))
    finally:
        admin.close()


def wait_for_interrupt(stack: Stack, user_token: str) -> None:
    """Keep everything running until Ctrl-C (or SIGTERM)."""
    step("Serving (Ctrl-C stops everything)")
    for name, value in (
        ("EW_SYNC_TARGET", stack.sync_target),
        ("EW_ROSTER_TARGET", stack.roster_target),
        ("EW_TOKEN", user_token),
    ):
        console.print(f"export {name}={value}", soft_wrap=True)
    console.print("then, for example: ew-sync mapping; ew-sync preview; ew-sync sync; ew-sync runs")
    console.print(f"ClassLink Settings page: {stack.settings_page(user_token)}", soft_wrap=True)
    runs_url = f"{stack.gateway_url}/v1/districts/{DISTRICT_ID}/syncRuns"
    console.print(f'or: curl -H "Authorization: Bearer $EW_TOKEN" {runs_url}', soft_wrap=True)
    console.print(
        f"OneRoster sandbox: {stack.sandbox['server_url']} (admin API {stack.sandbox['admin_url']})"
    )
    threading.Event().wait()


@contextmanager
def terminate_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt so the same clean shutdown runs."""

    def on_sigterm(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The demo's options."""
    parser = argparse.ArgumentParser(prog="python -m services.demo", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--schools", type=int, default=40, help="schools in the ClassLink district (default 40)"
    )
    parser.add_argument(
        "--teachers", type=int, default=1200, help="teachers in the ClassLink district (default 1200)"
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated district (default 7)")
    parser.add_argument(
        "--workdir", type=Path, default=Path("var/demo"), help="emptied first (default var/demo)"
    )
    parser.add_argument("--serve", action="store_true", help="keep everything running after the demo")
    args = parser.parse_args(argv)
    if args.schools < 3 or args.teachers < 2 * TEACHERS_LEAVING:
        parser.error(f"--schools must be at least 3 and --teachers at least {2 * TEACHERS_LEAVING}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; 0 when every step did what it should."""
    args = parse_args(argv)
    workdir: Path = args.workdir.resolve()
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    os.environ.update(dev_environment(workdir))
    processes = ProcessGroup(workdir, base_environment({}))
    with terminate_on_sigterm():
        try:
            auth = AuthSettings()
            user_token = mint_dev_token(
                auth, district_id=DISTRICT_ID, role=Role.DISTRICT_ADMIN, plan="district_premium"
            )
            service_token = mint_dev_token(
                auth, district_id=ALL_DISTRICTS, role=Role.SERVICE, plan=SERVICE_PLAN
            )
            step("Starting the sandbox, both services and the HTTP gateway")
            stack = start_stack(processes, schools=args.schools, teachers=args.teachers, seed=args.seed)
            demo(stack, user_token=user_token, service_token=service_token)
            step("10. The same district over HTTP")
            check_gateway(stack, user_token)
            console.print(f"ClassLink Settings page: {stack.settings_page(user_token)}", soft_wrap=True)
            console.print()
            console.print(f"[bold green]Demo finished: every step did what it should.[/] Logs: {workdir}")
            if args.serve:
                wait_for_interrupt(stack, user_token)
            return 0
        except (DemoFailed, ProcessFailed, RosterError, httpx.HTTPError) as error:
            console.print(f"[bold red]Demo failed: {error}[/]")
            console.print(f"Logs: {workdir}")
            return 1
        except KeyboardInterrupt:
            console.print("\nStopping.")
            return 130
        finally:
            processes.stop()


if __name__ == "__main__":
    sys.exit(main())
