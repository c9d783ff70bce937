"""``ew-sync``: connect ClassLink, map schools, preview and sync a district from a terminal.

Every command talks to the sync service at ``--target`` with the bearer token from ``--token`` /
``EW_TOKEN``. The district defaults to the token's ``district`` claim. Expected errors print the
server's message and reason in red and exit 1; ``sync`` and ``watch`` exit 0 when the run
succeeded, 3 when it needs review and 1 when it failed.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import enum
import functools
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, ParamSpec, TypeVar
from urllib.parse import parse_qs, urlsplit

import typer
from ew.client.errors import RosterError
from ew.client.progress import follow
from ew.client.roster import RosterClient
from ew.client.sync import RunEvents, SyncClient, run_name
from ew.client.views import (
    audit_table,
    autosync_table,
    connection_table,
    ew_only_table,
    ew_schools_table,
    guard_text,
    history_table,
    items_table,
    mapping_table,
    revert_table,
    roster_audit_table,
    run_table,
    runs_table,
    state_label,
    summary_table,
    teachers_table,
)
from ew.roster.v1 import roster_pb2
from ew.sync.v1 import sync_pb2
from rich.console import Console

EXIT_FAILED = 1
EXIT_NEEDS_REVIEW = 3
EXIT_CANCELLED = 4
EXIT_INTERRUPTED = 130

P = ParamSpec("P")
R = TypeVar("R")


app = typer.Typer(
    name="ew-sync",
    help="Keep a district's EW schools and teachers in step with ClassLink.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class UsageError(Exception):
    """A problem with how the command was called, found before calling the service."""


class AuthMethod(enum.StrEnum):
    """How OneRoster requests are authenticated."""

    OAUTH1 = "oauth1"
    BEARER = "bearer"
    OAUTH2 = "oauth2"


class Version(enum.StrEnum):
    """The OneRoster version of the server."""

    V1P1 = "1.1"
    V1P2 = "1.2"


class Kind(enum.StrEnum):
    """A kind of plan item."""

    CREATE_SCHOOL = "create-school"
    ADD_TEACHER = "add-teacher"
    UPDATE_TEACHER = "update-teacher"
    ARCHIVE_TEACHER = "archive-teacher"
    REACTIVATE_TEACHER = "reactivate-teacher"
    SKIP = "skip"

    def proto(self) -> sync_pb2.PlanItemKind.ValueType:
        """The proto enum value."""
        return sync_pb2.PlanItemKind.Value("PLAN_ITEM_KIND_" + self.name)


_AUTH_METHODS = {
    AuthMethod.OAUTH1: sync_pb2.AUTH_METHOD_OAUTH1,
    AuthMethod.BEARER: sync_pb2.AUTH_METHOD_BEARER,
    AuthMethod.OAUTH2: sync_pb2.AUTH_METHOD_OAUTH2,
}
_VERSIONS = {Version.V1P1: sync_pb2.ONE_ROSTER_VERSION_V1P1, Version.V1P2: sync_pb2.ONE_ROSTER_VERSION_V1P2}


def token_district(token: str) -> str:
    """The ``district`` claim of a JWT, read without verifying it (the server verifies)."""
    parts = token.split(".")
    if len(parts) != 3:
        return ""
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return ""
    district = claims.get("district") if isinstance(claims, dict) else None
    return district if isinstance(district, str) else ""


def code_and_state(answer: str, started_state: str) -> tuple[str, str]:
    """The code and state from a pasted redirect address, or a bare code with the state we started."""
    query = parse_qs(urlsplit(answer.strip()).query)
    if "code" in query:
        return query["code"][0], query.get("state", [started_state])[0]
    return answer.strip(), started_state


@dataclass(frozen=True)
class Options:
    """The global options every command shares."""

    target: str
    roster_target: str
    token: str | None
    district: str | None
    timeout: float
    console: Console

    @property
    def district_id(self) -> str:
        """``--district``, else the token's district claim."""
        district = self.district or (token_district(self.token) if self.token else "")
        if not district:
            raise UsageError(
                "No district: pass --district (or EW_DISTRICT), or use a token with a district claim."
            )
        return district

    def bearer_token(self) -> str:
        """The token every call carries."""
        if not self.token:
            raise UsageError(
                "No token: pass --token or set EW_TOKEN (for local use: `ew-sync dev-token ...`)."
            )
        return self.token

    def client(self) -> SyncClient:
        """A client of the sync service with the caller's token."""
        token = self.bearer_token()
        return SyncClient(self.target, token=lambda: token, timeout=self.timeout)

    def roster_client(self) -> RosterClient:
        """A client of the roster service with the caller's token."""
        metadata = [("authorization", f"Bearer {self.bearer_token()}")]
        return RosterClient(self.roster_target, timeout=self.timeout, metadata=lambda: metadata)


def _options(ctx: typer.Context) -> Options:
    options = ctx.find_root().obj
    assert isinstance(options, Options)
    return options


def handles_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Print expected errors in red (the server's message and reason) and exit 1, no traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except RosterError as error:
            status = (
                error.code.name
                if error.reason in ("", error.code.name)
                else f"{error.code.name}, {error.reason}"
            )
            Console(stderr=True).print(f"[red]Error: {error.message}[/] [dim]({status})[/]", highlight=False)
        except UsageError as error:
            Console(stderr=True).print(f"[red]Error: {error}[/]", highlight=False)
        raise typer.Exit(EXIT_FAILED)

    return wrapper


@app.callback()
def main_options(
    ctx: typer.Context,
    target: Annotated[
        str, typer.Option(envvar="EW_SYNC_TARGET", help="The sync service, host:port.")
    ] = "127.0.0.1:50052",
    roster_target: Annotated[
        str, typer.Option(envvar="EW_ROSTER_TARGET", help="The roster service, host:port.")
    ] = "127.0.0.1:50051",
    token: Annotated[
        str | None, typer.Option(envvar="EW_TOKEN", help="Bearer token (JWT).", show_default=False)
    ] = None,
    district: Annotated[
        str | None, typer.Option(envvar="EW_DISTRICT", help="District id (default: the token's district).")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Deadline of each call in seconds.")] = 30.0,
) -> None:
    """Keep a district's EW schools and teachers in step with ClassLink."""
    ctx.obj = Options(target, roster_target, token, district, timeout, Console())


@app.command()
@handles_errors
def connect(
    ctx: typer.Context,
    server_url: Annotated[
        str | None, typer.Option(help="OneRoster server root (manual credentials).")
    ] = None,
    client_id: Annotated[str, typer.Option(help="Client id / key (manual credentials).")] = "",
    client_secret: Annotated[
        str | None,
        typer.Option(
            envvar="EW_CLASSLINK_SECRET",
            help="Client secret or bearer token; prompted (hidden) when not given. Prefer the prompt or "
            "the variable: a value on the command line stays in shell history.",
            show_default=False,
        ),
    ] = None,
    auth_method: Annotated[
        AuthMethod, typer.Option(help="How requests are authenticated.")
    ] = AuthMethod.OAUTH1,
    version: Annotated[Version, typer.Option(help="OneRoster version of the server.")] = Version.V1P1,
    token_url: Annotated[
        str,
        typer.Option(help="OAuth 2 token endpoint (default: /oauth/token on the server's host)."),
    ] = "",
    sign_in: Annotated[bool, typer.Option("--sign-in", help="Connect by ClassLink single sign-on.")] = False,
    redirect_uri: Annotated[str, typer.Option(help="Redirect URI for --sign-in.")] = "",
) -> None:
    """Connect the district to ClassLink, by hand (--server-url ...) or by sign-in (--sign-in)."""
    options = _options(ctx)
    district_id = options.district_id
    with options.client() as client:
        if sign_in:
            if not redirect_uri:
                raise UsageError("--sign-in needs --redirect-uri.")
            started = client.start_sign_in(district_id, redirect_uri)
            options.console.print("Open this URL and sign in with ClassLink:")
            options.console.print(started.authorization_url, soft_wrap=True, highlight=False)
            answer = typer.prompt("Paste the address ClassLink sent you back to (or just the code)")
            code, state = code_and_state(answer, started.state)
            response = client.connect_sign_in(district_id, code, state)
        else:
            if not server_url:
                raise UsageError("Pass --server-url (with --client-id and the secret), or --sign-in.")
            secret = (
                client_secret if client_secret is not None else typer.prompt("Client secret", hide_input=True)
            )
            response = client.connect_manual(
                district_id,
                server_url=server_url,
                client_id=client_id,
                client_secret=secret,
                auth_method=_AUTH_METHODS[auth_method],
                oneroster_version=_VERSIONS[version],
                token_url=token_url,
            )
    options.console.print(f"[bold green]{response.message}[/]")
    options.console.print(connection_table(response.connection))


@app.command()
@handles_errors
def connection(ctx: typer.Context) -> None:
    """Show the district's ClassLink connection (never its secret)."""
    options = _options(ctx)
    with options.client() as client:
        options.console.print(connection_table(client.get_connection(options.district_id)))


@app.command()
@handles_errors
def disconnect(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove the connection and its stored secret (mappings and history stay)."""
    options = _options(ctx)
    district_id = options.district_id
    if not yes:
        typer.confirm(f"Disconnect ClassLink from district {district_id}?", abort=True)
    with options.client() as client:
        client.delete_connection(district_id)
    options.console.print(f"[green]District {district_id} is disconnected from ClassLink.[/]")


@app.command()
@handles_errors
def mapping(
    ctx: typer.Context,
    page_size: Annotated[int, typer.Option(help="ClassLink schools per call.")] = 500,
) -> None:
    """Show ClassLink schools beside EW schools, with suggestions for unmapped ones."""
    options = _options(ctx)
    with options.client() as client:
        first = client.list_school_mappings(options.district_id, page_size=page_size)
        entries = list(first.school_mappings)
        token = first.next_page_token
        while token:
            page = client.list_school_mappings(options.district_id, page_size=page_size, page_token=token)
            entries.extend(page.school_mappings)
            token = page.next_page_token
    options.console.print(mapping_table(entries))
    options.console.print(f"{first.mapped_count:,} of {first.total_size:,} ClassLink schools are mapped.")
    if first.ew_only_schools:
        options.console.print(ew_only_table(first.ew_only_schools))


@app.command("map")
@handles_errors
def map_school(
    ctx: typer.Context,
    classlink_id: Annotated[str, typer.Argument(help="The ClassLink school's sourcedId.")],
    ew_school_id: Annotated[str, typer.Argument(help="The EW school's id.")],
    merge_created: Annotated[
        bool,
        typer.Option(
            "--merge-created",
            help="Merge the EW school a sync created for it into this one (its teachers move).",
        ),
    ] = False,
) -> None:
    """Map a ClassLink school to an EW school by hand."""
    options = _options(ctx)
    with options.client() as client:
        response = client.map_schools_response(
            options.district_id, [(classlink_id, ew_school_id)], merge_created_schools=merge_created
        )
    options.console.print(mapping_table(response.school_mappings, title="Mapped"))
    for school in response.merged_schools:
        options.console.print(
            f"Merged {school.ew_school_name} ({school.ew_school_id}) into it.", highlight=False
        )
    for school in response.created_schools_left:
        options.console.print(
            f"{school.ew_school_name} ({school.ew_school_id}) was created by a sync and keeps its teachers; "
            f"merge it with `ew-sync merge-school {school.ew_school_id} {ew_school_id}`.",
            highlight=False,
        )


@app.command()
@handles_errors
def unmap(
    ctx: typer.Context,
    classlink_id: Annotated[str, typer.Argument(help="The ClassLink school's sourcedId.")],
) -> None:
    """Remove a mapping: the ClassLink school will be created in EW unless mapped again."""
    options = _options(ctx)
    with options.client() as client:
        entry = client.unmap_school(options.district_id, classlink_id)
    options.console.print(mapping_table([entry], title="Unmapped"))


@app.command()
@handles_errors
def preview(
    ctx: typer.Context,
    kind: Annotated[Kind | None, typer.Option(help="Only items of this kind.")] = None,
    all_pages: Annotated[
        bool, typer.Option("--all", help="List every item, not just the first page.")
    ] = False,
    page_size: Annotated[int, typer.Option(help="Items per page.")] = 50,
    job: Annotated[
        str, typer.Option("--job", help="Show this preview job's plan (id or name) instead of starting one.")
    ] = "",
    detach: Annotated[
        bool, typer.Option("--detach", help="Start (or attach to) the preview job, print its name, return.")
    ] = False,
) -> None:
    """Show what a sync would change now, without changing anything.

    Runs a preview job in the sync workers (reading ClassLink may take minutes for a big district),
    follows its progress, then prints its plan.
    """
    options = _options(ctx)
    proto_kind = kind.proto() if kind else sync_pb2.PLAN_ITEM_KIND_UNSPECIFIED
    with options.client() as client:
        name = run_name(options.district_id, job) if job else ""
        if not name:
            started = client.start_sync_preview(options.district_id)
            name = started.run.name
            if detach:
                options.console.print(
                    f"Preview job {name} is {state_label(started.run.state)}; show it when it ends with: "
                    f"ew-sync preview --job {started.run.run_id}",
                    highlight=False,
                )
                return
            _follow(options, client.watch_run(name))
        _require_previewed(client.get_run(name))
        first = client.preview_sync(options.district_id, page_size=page_size, kind=proto_kind, sync_run=name)
        items = list(first.items)
        token = first.next_page_token
        while all_pages and token:
            page = client.preview_sync(
                options.district_id, page_size=page_size, page_token=token, kind=proto_kind, sync_run=name
            )
            items.extend(page.items)
            token = page.next_page_token
    options.console.print(summary_table(first.summary, title="Preview"))
    options.console.print(guard_text(first.guard))
    options.console.print(items_table(items))
    if token:
        options.console.print(f"[dim]First {len(items)} items; --all lists every one.[/]")


def _require_previewed(run: sync_pb2.SyncRun) -> None:
    """Exit with the preview job's outcome unless it stored its plan."""
    if run.state == sync_pb2.SYNC_RUN_STATE_PREVIEWED:
        return
    if run.state == sync_pb2.SYNC_RUN_STATE_CANCELLED:
        Console(stderr=True).print("The preview was cancelled.")
        raise typer.Exit(EXIT_CANCELLED)
    if run.state == sync_pb2.SYNC_RUN_STATE_FAILED:
        Console(stderr=True).print(f"[red]The preview failed: {run.error_message}[/]", highlight=False)
        raise typer.Exit(EXIT_FAILED)
    Console(stderr=True).print(
        f"Preview job {run.run_id} is {state_label(run.state)}; follow it with `ew-sync watch {run.run_id}`.",
        highlight=False,
    )
    raise typer.Exit(EXIT_FAILED)


def _follow(options: Options, events: RunEvents) -> None:
    """Show the run's progress; Ctrl-C stops following (the run goes on) and says how to resume."""
    try:
        follow(events, options.console)
    except KeyboardInterrupt:
        events.close()
        resume = f"ew-sync watch {events.run_name or 'RUN'} --after {events.last_sequence}"
        options.console.print(f"\nStopped following; the sync goes on. Follow it again with `{resume}`.")
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _finish(options: Options, client: SyncClient, name: str) -> None:
    """Print the ended run's outcome and exit with its code."""
    run = client.get_run(name)
    options.console.print(summary_table(run.summary, title="Sync summary"))
    options.console.print(f"Run {run.run_id}", style="dim", highlight=False)
    if run.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED:
        return
    if run.state == sync_pb2.SYNC_RUN_STATE_NEEDS_REVIEW:
        options.console.print(guard_text(run.guard))
        options.console.print(f"Review the list with `ew-sync run {run.run_id}`, then approve it with:")
        options.console.print(f"  ew-sync sync --approve {run.run_id}", highlight=False)
        raise typer.Exit(EXIT_NEEDS_REVIEW)
    if run.state == sync_pb2.SYNC_RUN_STATE_CANCELLED:
        options.console.print("The sync was cancelled; nothing was changed.")
        raise typer.Exit(EXIT_CANCELLED)
    Console(stderr=True).print(f"[red]The sync failed: {run.error_message}[/]", highlight=False)
    raise typer.Exit(EXIT_FAILED)


@app.command()
@handles_errors
def sync(
    ctx: typer.Context,
    approve: Annotated[str, typer.Option(help="Go ahead with this NEEDS_REVIEW run (id or name).")] = "",
    detach: Annotated[
        bool, typer.Option("--detach", help="Start (or attach to) the run, print its name and return.")
    ] = False,
) -> None:
    """Sync now (or attach to the running sync) and follow its progress."""
    options = _options(ctx)
    with options.client() as client:
        if detach:
            run = client.start_sync_run(options.district_id, approve_run=approve)
            options.console.print(
                f"Run {run.name} is {state_label(run.state)}; follow it with: ew-sync watch {run.run_id}"
            )
            return
        events = client.sync_rosters(options.district_id, approve_run=approve)
        _follow(options, events)
        _finish(options, client, events.run_name)


@app.command()
@handles_errors
def force(
    ctx: typer.Context,
    follow_run: Annotated[bool, typer.Option("--follow", help="Follow the run to its end.")] = False,
) -> None:
    """Force Sync Now: queue a sync at once (even in a pause window), or show the queued or running one."""
    options = _options(ctx)
    with options.client() as client:
        response = client.force_sync_now(options.district_id)
        run = response.run
        already = "already " if response.already_active else ""
        options.console.print(
            f"Run {run.name} is {already}{state_label(run.state)}; follow it with: ew-sync watch {run.run_id}"
        )
        if follow_run:
            _follow(options, client.watch_run(run.name))
            _finish(options, client, run.name)


class Switch(enum.StrEnum):
    """Turn AutoSync on or off."""

    ON = "on"
    OFF = "off"


class Cadence(enum.StrEnum):
    """How often AutoSync runs."""

    MONTHLY = "monthly"
    WEEKLY = "weekly"
    DAILY = "daily"

    def proto(self) -> sync_pb2.AutoSyncCadence.ValueType:
        """The proto enum value."""
        return sync_pb2.AutoSyncCadence.Value("AUTO_SYNC_CADENCE_" + self.name)


_WEEKDAYS = {
    name: number
    for number, day in enumerate(
        ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"), 1
    )
    for name in (day, day[:3])
}


def parse_day(value: str) -> int:
    """A day of the month or ISO weekday number, or a weekday name (``sun``, ``Sunday``)."""
    text = value.strip().lower()
    if text.isdigit():
        return int(text)
    if text in _WEEKDAYS:
        return _WEEKDAYS[text]
    raise UsageError(f"--day {value!r}: give a day of the month (1-31) or a weekday (mon … sun).")


def parse_pause(value: str) -> sync_pb2.PauseWindow:
    """``2027-06-15..2027-08-20`` → a pause window (dates are checked by the service)."""
    start, separator, end = value.partition("..")
    if not separator or not start.strip() or not end.strip():
        raise UsageError(f"--pause {value!r}: expected START..END, for example 2027-06-15..2027-08-20.")
    return sync_pb2.PauseWindow(start_date=start.strip(), end_date=end.strip())


@dataclass(frozen=True)
class AutoSyncChanges:
    """What ``ew-sync autosync on|off`` was asked to change; None keeps the stored value."""

    switch: Switch
    cadence: Cadence | None
    day: str | None
    hour: int | None
    timezone: str | None
    pauses: list[str] | None

    def apply(self, current: sync_pb2.AutoSync) -> sync_pb2.AutoSync:
        """The settings to send: the current ones with these changes."""
        wanted = sync_pb2.AutoSync()
        wanted.CopyFrom(current)
        for output_only in ("next_run_time", "last_auto_run", "update_time"):
            wanted.ClearField(output_only)
        wanted.enabled = self.switch is Switch.ON
        if self.cadence is not None and self.cadence.proto() != current.cadence:
            wanted.cadence = self.cadence.proto()
            wanted.day = 0
        if self.day is not None:
            wanted.day = parse_day(self.day)
        if self.hour is not None:
            wanted.hour = self.hour
        if self.timezone is not None:
            wanted.time_zone = self.timezone
        if self.pauses is not None:
            del wanted.pause_windows[:]
            wanted.pause_windows.extend(parse_pause(value) for value in self.pauses if value)
        return wanted


@app.command()
@handles_errors
def autosync(
    ctx: typer.Context,
    switch: Annotated[Switch | None, typer.Argument(help="on or off; omit to show the settings.")] = None,
    cadence: Annotated[Cadence | None, typer.Option(help="How often (default monthly).")] = None,
    day: Annotated[
        str | None, typer.Option(help="Day of the month (1-31) for monthly, weekday (mon … sun) for weekly.")
    ] = None,
    hour: Annotated[int | None, typer.Option(help="Local hour, 0-23 (default 3).")] = None,
    timezone: Annotated[
        str | None, typer.Option(help="The district's IANA time zone, e.g. America/New_York.")
    ] = None,
    pause: Annotated[
        list[str] | None,
        typer.Option(help="START..END dates AutoSync skips (repeatable; '' clears every window)."),
    ] = None,
) -> None:
    """Show AutoSync with its next run, or turn it on or off (other options change its schedule)."""
    options = _options(ctx)
    district_id = options.district_id
    with options.client() as client:
        current = client.get_autosync(district_id)
        if switch is not None:
            changes = AutoSyncChanges(switch, cadence, day, hour, timezone, pause)
            current = client.set_autosync(changes.apply(current))
        elif any(value is not None for value in (cadence, day, hour, timezone, pause)):
            raise UsageError("Say `ew-sync autosync on …` (or `off …`) to change the settings.")
    options.console.print(autosync_table(current))


@app.command()
@handles_errors
def watch(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(help="The run id or name.")],
    after: Annotated[int, typer.Option(help="Only events after this sequence number.")] = 0,
) -> None:
    """Follow a run: its events after --after, then live ones until it ends."""
    options = _options(ctx)
    name = run_name(options.district_id, run)
    with options.client() as client:
        _follow(options, client.watch_run(name, after_sequence=after))
        _finish(options, client, name)


@app.command()
@handles_errors
def cancel(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(help="The run id or name.")],
) -> None:
    """Cancel a run: a queued or review-waiting run at once, a running one before it saves."""
    options = _options(ctx)
    name = run_name(options.district_id, run)
    with options.client() as client:
        cancelled = client.cancel_run(name)
        if cancelled.state != sync_pb2.SYNC_RUN_STATE_RUNNING:
            options.console.print(
                f"Run {cancelled.run_id} is {state_label(cancelled.state)}; nothing was changed."
            )
            return
        options.console.print(
            f"Run {cancelled.run_id} stops at its next checkpoint, before it saves anything."
        )
        _follow(options, client.watch_run(name, after_sequence=cancelled.last_sequence))
        if client.get_run(name).state != sync_pb2.SYNC_RUN_STATE_CANCELLED:
            _finish(options, client, name)


@app.command()
@handles_errors
def runs(
    ctx: typer.Context,
    page_size: Annotated[int, typer.Option(help="How many runs.")] = 20,
) -> None:
    """List the district's runs, newest first."""
    options = _options(ctx)
    with options.client() as client:
        response = client.list_runs(options.district_id, page_size=page_size)
    options.console.print(runs_table(response.runs))


@app.command("run")
@handles_errors
def show_run(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(help="The run id or name.")],
    kind: Annotated[Kind | None, typer.Option(help="Only items of this kind.")] = None,
    all_pages: Annotated[
        bool, typer.Option("--all", help="List every item, not just the first page.")
    ] = False,
    page_size: Annotated[int, typer.Option(help="Items per page.")] = 50,
) -> None:
    """Show a run with its summary and items."""
    options = _options(ctx)
    name = run_name(options.district_id, run)
    proto_kind = kind.proto() if kind else sync_pb2.PLAN_ITEM_KIND_UNSPECIFIED
    with options.client() as client:
        details = client.get_run(name)
        page = client.list_run_items(name, page_size=page_size, kind=proto_kind)
        items = list(page.items)
        token = page.next_page_token
        while all_pages and token:
            page = client.list_run_items(name, page_size=page_size, page_token=token, kind=proto_kind)
            items.extend(page.items)
            token = page.next_page_token
    options.console.print(run_table(details))
    options.console.print(summary_table(details.summary))
    options.console.print(guard_text(details.guard))
    options.console.print(items_table(items))
    if token:
        options.console.print(f"[dim]First {len(items)} items; --all lists every one.[/]")


@app.command()
@handles_errors
def schools(ctx: typer.Context) -> None:
    """List the district's EW schools (from the roster service)."""
    options = _options(ctx)
    with options.roster_client() as roster:
        options.console.print(ew_schools_table(roster.list_schools(options.district_id)))


@app.command()
@handles_errors
def teachers(
    ctx: typer.Context,
    archived: Annotated[
        bool, typer.Option("--archived", help="Archived teachers instead of active ones.")
    ] = False,
    limit: Annotated[int, typer.Option(help="Show at most this many.")] = 50,
) -> None:
    """List the district's EW teachers (from the roster service)."""
    options = _options(ctx)
    state = roster_pb2.TEACHER_STATE_ARCHIVED if archived else roster_pb2.TEACHER_STATE_ACTIVE
    with options.roster_client() as roster:
        names = {school.school_id: school.display_name for school in roster.list_schools(options.district_id)}
        shown = list(itertools.islice(roster.list_teachers(options.district_id, state=state), limit))
    options.console.print(
        teachers_table(shown, names, title="Archived EW teachers" if archived else "Active EW teachers")
    )
    if len(shown) == limit:
        options.console.print(f"[dim]First {limit}; --limit shows more.[/]")


@app.command()
@handles_errors
def revert(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(help="The run id or name to revert.")],
    partial: Annotated[
        bool,
        typer.Option("--partial", help="Undo every row nobody changed since; leave (and list) the others."),
    ] = False,
    preview_only: Annotated[
        bool, typer.Option("--preview", help="Only show what the revert would undo; change nothing.")
    ] = False,
) -> None:
    """Undo a sync run: put back every teacher, school, mapping and link it changed."""
    options = _options(ctx)
    name = run_name(options.district_id, run)
    with options.client() as client:
        response = client.revert_run(name, validate_only=preview_only, partial=partial)
    title = "The revert would undo" if preview_only else "Reverted"
    options.console.print(revert_table(response, title=title))
    if response.HasField("run"):
        options.console.print(
            f"Revert run {response.run.run_id} {state_label(response.run.state)}.", highlight=False
        )
    elif response.conflicts and not partial:
        options.console.print("Rows changed since block the revert; `--partial` undoes everything else.")


class Action(enum.StrEnum):
    """An audited action."""

    CONNECT = "connect"
    DISCONNECT = "disconnect"
    MAP_SCHOOLS = "map-schools"
    UNMAP_SCHOOL = "unmap-school"
    PREVIEW = "preview"
    START_RUN = "start-run"
    APPROVE_RUN = "approve-run"
    REVERT_RUN = "revert-run"
    PREVIEW_REVERT = "preview-revert"
    MERGE_SCHOOL = "merge-school"

    def proto(self) -> sync_pb2.AuditAction.ValueType:
        """The proto enum value."""
        return sync_pb2.AuditAction.Value("AUDIT_ACTION_" + self.name)


@app.command()
@handles_errors
def audit(
    ctx: typer.Context,
    action: Annotated[Action | None, typer.Option(help="Only this action.")] = None,
    actor: Annotated[str, typer.Option(help="Only this actor (token subject).")] = "",
    since: Annotated[
        datetime.datetime | None, typer.Option(help="Only events at or after this UTC time.")
    ] = None,
    until: Annotated[datetime.datetime | None, typer.Option(help="Only events before this UTC time.")] = None,
    limit: Annotated[int, typer.Option(help="Show at most this many.")] = 50,
    roster: Annotated[
        bool,
        typer.Option(
            "--roster", help="The roster's trail instead: unarchives, archives and change sets by people."
        ),
    ] = False,
) -> None:
    """Show who did what in the district's sync, newest first (refused attempts too)."""
    options = _options(ctx)
    if roster:
        with options.roster_client() as roster_client:
            events = list(itertools.islice(roster_client.list_audit_events(options.district_id), limit))
        options.console.print(roster_audit_table(events))
        return
    with options.client() as client:
        response = client.list_audit_events(
            options.district_id,
            action=action.proto() if action else sync_pb2.AUDIT_ACTION_UNSPECIFIED,
            actor=actor,
            start_time=_utc(since),
            end_time=_utc(until),
            page_size=limit,
        )
    options.console.print(audit_table(response.events))
    if response.next_page_token:
        options.console.print(f"[dim]Newest {limit}; --limit shows more.[/]")


def _utc(value: datetime.datetime | None) -> datetime.datetime | None:
    """A time typed without a zone is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=datetime.UTC)


@app.command()
@handles_errors
def history(
    ctx: typer.Context,
    teacher: Annotated[str, typer.Argument(help="The EW teacher id.")],
) -> None:
    """Show every change syncs made to one teacher: why they were added, updated, archived or reverted."""
    options = _options(ctx)
    with options.client() as client:
        entries: list[sync_pb2.TeacherHistoryEntry] = []
        token = ""
        while True:
            page = client.list_teacher_history(options.district_id, teacher, page_token=token)
            entries.extend(page.entries)
            token = page.next_page_token
            if not token:
                break
    with options.roster_client() as roster:
        names = {school.school_id: school.display_name for school in roster.list_schools(options.district_id)}
    options.console.print(history_table(entries, names))
    if not entries:
        options.console.print("No sync has changed this teacher.")


@app.command("merge-school")
@handles_errors
def merge_school(
    ctx: typer.Context,
    school: Annotated[str, typer.Argument(help="The EW school id that goes away.")],
    into: Annotated[str, typer.Argument(help="The EW school id that receives its teachers.")],
) -> None:
    """Merge one EW school into another (a school a sync created by mistake); its mapping follows."""
    options = _options(ctx)
    with options.client() as client:
        response = client.merge_school(options.district_id, school, into)
    options.console.print(
        f"[green]Merged {school} into {response.into_school.ew_school_name} "
        f"({response.into_school.ew_school_id}).[/]",
        highlight=False,
    )
    for classlink_id in response.moved_classlink_school_ids:
        options.console.print(f"ClassLink school {classlink_id} now maps to it.", highlight=False)


@app.command("dev-token")
@handles_errors
def dev_token(
    district: Annotated[str, typer.Option(help="District the token acts for.")],
    role: Annotated[
        str, typer.Option(help="district_admin, school_admin, teacher or service.")
    ] = "district_admin",
    plan: Annotated[str, typer.Option(help="The district's plan.")] = "district_premium",
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds.")] = 3600,
) -> None:
    """Mint a token signed with the development key (EW_JWT_ALLOW_DEV_KEY=true; local use only)."""
    try:
        from pydantic import ValidationError

        from services.common.auth import AuthSettings, Role
        from services.common.devtoken import DevKeyRequired, mint_dev_token
    except ImportError as error:
        raise UsageError(
            "dev-token needs the ew-rostersync services package (run it from the repository with "
            f"PYTHONPATH set, as `make` does): {error}"
        ) from error
    try:
        token = mint_dev_token(
            AuthSettings(), district_id=district, role=Role(role), plan=plan, ttl_seconds=ttl
        )
    except ValidationError as error:
        raise UsageError(f"Invalid EW_JWT_* settings: {error.errors()[0]['msg']}") from error
    except (DevKeyRequired, ValueError) as error:
        raise UsageError(str(error)) from error
    typer.echo(token)


def main() -> None:
    """Entry point of the ``ew-sync`` script."""
    app(prog_name="ew-sync")


if __name__ == "__main__":
    main()
