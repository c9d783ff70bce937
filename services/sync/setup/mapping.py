"""School mapping ("Setup Sync"): ClassLink schools beside EW schools; map and unmap by hand.

ClassLink schools are read live (schools only) and EW schools through RosterService on every call,
so the screen always shows today's names. Rules:

- A stored mapping (any origin) wins while its EW school exists; an UNMAPPED row keeps the ClassLink
  school unmapped for good (no automatic mapping by name).
- Otherwise an identical normalised name, unique on both sides, shows as AUTO. GetSchoolMapping writes
  nothing: a run stores the automatic mappings it applies; the planner computes the same pairs from
  the same inputs, so what the screen shows is what a sync does.
- Unmapped ClassLink schools get up to five suggestions among EW schools no ClassLink school maps to.
- Only active ClassLink schools are listed: ``tobedeleted`` ones are neither created nor mapped.
- MapSchools is all or nothing. An EW school shown as mapped (stored or AUTO) to a ClassLink school
  outside the request is FAILED_PRECONDITION naming that school; pairs may swap EW schools among the
  ClassLink schools of one request. Unknown ids, and EW schools of other districts, are NOT_FOUND
  (the same answer, so nothing about other districts is revealed).
- UnmapSchool of a mapping a sync CREATED is refused (FAILED_PRECONDITION): the next sync would create
  a second school of that name. Mapping that ClassLink school to another EW school replaces it, and
  offers to merge the created school into the new one (``merge_created``; see ``school_merge``).
- Archived EW schools are hidden; a stored mapping of a merged school follows it to its target.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from ew.client.roster import AsyncRosterClient
from sqlalchemy.orm import Session

from services.common.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound
from services.common.pagetokens import SyncPageTokens
from services.sync.app import App
from services.sync.oneroster import Org, Status
from services.sync.oneroster.errors import OneRosterError
from services.sync.planning.ew_roster import read_ew_schools
from services.sync.planning.matching import Suggestion, SuggestionIndex, auto_map
from services.sync.planning.planner import EwSchool, live_school_id
from services.sync.setup.oneroster_adapter import oneroster_failure, require_connection, server_config
from services.sync.setup.school_merge import merge_in_roster
from services.sync.store import mappings as store
from services.sync.store.models import Connection, SchoolMapping
from services.sync.vocabulary import MappingOrigin

MAX_PAIRS = 500
MAX_ID_LENGTH = 255
SUGGESTIONS = 5
TOKEN_KIND = "school-mapping"
RESTART_HINT = "call GetSchoolMapping without a page token to start from the first page"


@dataclass(frozen=True)
class Entry:
    """One ClassLink school; ``origin`` None means unmapped (it would be created with its ClassLink name)."""

    classlink_school_id: str
    classlink_name: str
    origin: MappingOrigin | None
    ew_school_id: str
    ew_school_name: str
    suggestions: tuple[Suggestion, ...]


@dataclass(frozen=True)
class MappingPage:
    """One page of the mapping screen."""

    entries: list[Entry]
    ew_only: list[EwSchool]
    next_page_token: str
    total_size: int
    mapped_count: int


@dataclass(frozen=True)
class MapOutcome:
    """The mappings made, and the EW schools a sync created that the request moved away from.

    ``merged`` holds those merged into the newly mapped schools (when asked), ``left`` the others.
    """

    entries: list[Entry]
    left: list[EwSchool]
    merged: list[EwSchool]


@dataclass(frozen=True)
class _Stored:
    """A stored mapping with its EW school followed through merges (None when void or UNMAPPED)."""

    classlink_school_id: str
    ew_school_id: str | None
    origin: MappingOrigin


@dataclass(frozen=True)
class _View:
    """Where every active ClassLink school lands now: (EW school id, origin) for mapped ones.

    ``ew`` holds the active EW schools only: archived ones are neither shown, suggested nor matched.
    """

    classlink: dict[str, str]
    ew: dict[str, str]
    mapped: dict[str, tuple[str, MappingOrigin]]
    stored: dict[str, _Stored]

    def owner_of(self, ew_school_id: str) -> str | None:
        """The ClassLink school mapped to the EW school (shown, or stored for one gone from ClassLink)."""
        shown = next((cl for cl, (ew, _) in self.mapped.items() if ew == ew_school_id), None)
        if shown is not None:
            return shown
        return next(
            (
                cl
                for cl, mapping in self.stored.items()
                if mapping.ew_school_id == ew_school_id and mapping.origin is not MappingOrigin.UNMAPPED
            ),
            None,
        )

    def taken(self, except_classlink_id: str = "") -> set[str]:
        """EW schools some ClassLink school maps to (no longer free for suggestions)."""
        held = {
            mapping.ew_school_id
            for cl, mapping in self.stored.items()
            if mapping.origin is not MappingOrigin.UNMAPPED
            and mapping.ew_school_id is not None
            and cl != except_classlink_id
        }
        return held | {ew for cl, (ew, _) in self.mapped.items() if cl != except_classlink_id}


def _followed(stored: Sequence[SchoolMapping], ew: Sequence[EwSchool]) -> list[_Stored]:
    """Stored mappings whose EW school was merged point at the school it was merged into."""
    by_id = {school.school_id: school for school in ew}
    return [
        _Stored(mapping.classlink_school_id, live_school_id(mapping.ew_school_id, by_id), mapping.origin)
        for mapping in stored
    ]


def _build_view(classlink: dict[str, str], ew: dict[str, str], stored: Sequence[_Stored]) -> _View:
    by_classlink = {mapping.classlink_school_id: mapping for mapping in stored}
    mapped: dict[str, tuple[str, MappingOrigin]] = {
        mapping.classlink_school_id: (mapping.ew_school_id, mapping.origin)
        for mapping in stored
        if mapping.origin is not MappingOrigin.UNMAPPED
        and mapping.ew_school_id is not None
        and mapping.ew_school_id in ew
        and mapping.classlink_school_id in classlink
    }
    blocked = [m.classlink_school_id for m in stored if m.origin is MappingOrigin.UNMAPPED]
    # Stored mappings of schools ClassLink no longer lists still hold their EW school.
    held = {m.ew_school_id for m in stored if m.origin is not MappingOrigin.UNMAPPED and m.ew_school_id in ew}
    for classlink_id, ew_id in auto_map(
        classlink,
        ew,
        mapped_classlink_ids=mapped.keys(),
        mapped_ew_ids=held,
        blocked_classlink_ids=blocked,
    ):
        mapped[classlink_id] = (ew_id, MappingOrigin.AUTO)
    return _View(classlink, ew, mapped, by_classlink)


class SchoolMappings:
    """The mapping use cases of one sync service."""

    def __init__(self, app: App, page_tokens: SyncPageTokens) -> None:
        self._app = app
        self._tokens = page_tokens

    async def get(
        self, district_id: str, roster: AsyncRosterClient, page_size: int, page_token: str
    ) -> MappingPage:
        """One page of ClassLink schools in name order; EW-only schools on the first page."""
        after = None
        if page_token:
            name_key, classlink_id = self._tokens.decode(
                TOKEN_KIND, district_id, page_token, restart_hint=RESTART_HINT, types=[str, str]
            )
            after = (name_key, classlink_id)
        view = await self._view(district_id, roster)
        order = sorted(view.classlink, key=lambda cl: (view.classlink[cl].casefold(), cl))
        if after is not None:
            order = [cl for cl in order if (view.classlink[cl].casefold(), cl) > after]
        page = order[:page_size]
        next_token = ""
        if len(order) > page_size:
            last = page[-1]
            next_token = self._tokens.encode(TOKEN_KIND, district_id, [view.classlink[last].casefold(), last])
        taken = view.taken()
        index = SuggestionIndex({ew: name for ew, name in view.ew.items() if ew not in taken})
        ew_only = (
            sorted(
                (EwSchool(ew, name) for ew, name in view.ew.items() if ew not in taken),
                key=lambda school: (school.name.casefold(), school.school_id),
            )
            if after is None
            else []
        )
        return MappingPage(
            entries=[_entry(view, cl, index) for cl in page],
            ew_only=ew_only,
            next_page_token=next_token,
            total_size=len(view.classlink),
            mapped_count=len(view.mapped),
        )

    async def map(
        self,
        district_id: str,
        roster: AsyncRosterClient,
        pairs: Sequence[tuple[str, str]],
        *,
        merge_created: bool = False,
    ) -> MapOutcome:
        """Map each ClassLink school to its EW school, all pairs or none.

        A ClassLink school whose EW school a sync created, mapped now to another EW school, leaves
        the created school behind; with ``merge_created`` it is merged into the new one first (the
        roster merge lands before the mappings, and a mapping follows a merge wherever it is read).
        """
        _check_pairs(pairs)
        view = await self._view(district_id, roster)
        requested = {cl for cl, _ in pairs}
        for classlink_id, ew_school_id in pairs:
            if classlink_id not in view.classlink:
                raise NotFound(
                    f"ClassLink school {classlink_id} is not in the district's ClassLink roster.",
                    reason="CLASSLINK_SCHOOL_NOT_FOUND",
                )
            if ew_school_id not in view.ew:
                raise NotFound(
                    f"EW school {ew_school_id} is not a school of district {district_id}.",
                    reason="EW_SCHOOL_NOT_FOUND",
                )
            owner = view.owner_of(ew_school_id)
            if owner is not None and owner not in requested:
                raise FailedPrecondition(
                    f"EW school {view.ew[ew_school_id]} is already mapped to ClassLink school "
                    f"{view.classlink.get(owner, owner)} ({owner}). Unmap that school first, or map it "
                    "elsewhere in the same request.",
                    reason="EW_SCHOOL_ALREADY_MAPPED",
                )
        targets = {ew for _, ew in pairs}
        created_left = [
            (current[0], ew)
            for cl, ew in pairs
            if (current := view.mapped.get(cl)) is not None
            and current[1] is MappingOrigin.CREATED
            and current[0] not in targets
        ]
        if merge_created and created_left:
            await merge_in_roster(roster, district_id, created_left)
        values = [store.MappingValues(cl, ew, MappingOrigin.MANUAL, view.classlink[cl]) for cl, ew in pairs]
        now = self._app.clock()

        def save(session: Session) -> None:
            # Remove the requested schools' rows first so EW schools can swap within one request.
            store.delete_mappings(session, district_id, sorted(requested))
            store.save_mappings(session, district_id, values, now)

        await self._app.transaction(save)
        left = [EwSchool(created, view.ew[created]) for created, _ in created_left]
        return MapOutcome(
            entries=[
                Entry(cl, view.classlink[cl], MappingOrigin.MANUAL, ew, view.ew[ew], ()) for cl, ew in pairs
            ],
            left=[] if merge_created else left,
            merged=left if merge_created else [],
        )

    async def unmap(self, district_id: str, roster: AsyncRosterClient, classlink_school_id: str) -> Entry:
        """Return a ClassLink school to the unmapped list for good; the entry comes back with suggestions."""
        if not classlink_school_id or len(classlink_school_id) > MAX_ID_LENGTH:
            raise InvalidArgument.for_fields(
                [FieldViolation("classlink_school_id", "required: the ClassLink school's sourcedId")]
            )
        view = await self._view(district_id, roster)
        if classlink_school_id not in view.classlink:
            raise NotFound(
                f"ClassLink school {classlink_school_id} is not in the district's ClassLink roster.",
                reason="CLASSLINK_SCHOOL_NOT_FOUND",
            )
        current = view.mapped.get(classlink_school_id)
        if current is not None and current[1] is MappingOrigin.CREATED:
            raise FailedPrecondition(
                f"EW school {view.ew[current[0]]} was created by a sync for ClassLink school "
                f"{view.classlink[classlink_school_id]}; unmapping it would make the next sync create it "
                "again. Map the ClassLink school to another EW school instead (MapSchools with "
                "merge_created_schools merges the created school into it), or merge the created school "
                "into another with MergeSchool.",
                reason="CREATED_SCHOOL_MAPPING",
            )
        name = view.classlink[classlink_school_id]
        now = self._app.clock()

        def save(session: Session) -> None:
            store.save_mappings(
                session,
                district_id,
                [store.MappingValues(classlink_school_id, None, MappingOrigin.UNMAPPED, name)],
                now,
            )

        await self._app.transaction(save)
        taken = view.taken(except_classlink_id=classlink_school_id)
        index = SuggestionIndex({ew: n for ew, n in view.ew.items() if ew not in taken})
        return Entry(classlink_school_id, name, None, "", "", tuple(index.suggest(name, limit=SUGGESTIONS)))

    async def _view(self, district_id: str, roster: AsyncRosterClient) -> _View:
        connection = await require_connection(self._app, district_id)
        classlink, ew = await asyncio.gather(
            self._classlink_schools(connection), read_ew_schools(roster, district_id)
        )
        stored = await self._app.transaction(lambda session: store.list_mappings(session, district_id))
        return _build_view(
            {org.sourced_id: org.name for org in classlink},
            {school.school_id: school.name for school in ew if school.active},
            _followed(stored, ew),
        )

    async def _classlink_schools(self, connection: Connection) -> list[Org]:
        config = server_config(self._app, connection)
        try:
            async with self._app.oneroster_client(config) as client:
                result = await client.list_schools()
        except OneRosterError as error:
            raise oneroster_failure(error, connection.server_url) from None
        return [org for org in result.records if org.status is Status.ACTIVE]


def _entry(view: _View, classlink_id: str, index: SuggestionIndex) -> Entry:
    name = view.classlink[classlink_id]
    mapped = view.mapped.get(classlink_id)
    if mapped is None:
        return Entry(classlink_id, name, None, "", "", tuple(index.suggest(name, limit=SUGGESTIONS)))
    ew_school_id, origin = mapped
    return Entry(classlink_id, name, origin, ew_school_id, view.ew[ew_school_id], ())


def _check_pairs(pairs: Sequence[tuple[str, str]]) -> None:
    violations: list[FieldViolation] = []
    if not pairs:
        violations.append(FieldViolation("pairs", "give at least one ClassLink school and EW school pair"))
    if len(pairs) > MAX_PAIRS:
        violations.append(FieldViolation("pairs", f"at most {MAX_PAIRS} pairs per request"))
    seen_classlink: set[str] = set()
    seen_ew: set[str] = set()
    for position, (classlink_id, ew_school_id) in enumerate(pairs):
        if not classlink_id or len(classlink_id) > MAX_ID_LENGTH:
            violations.append(FieldViolation(f"pairs[{position}].classlink_school_id", "required"))
        elif classlink_id in seen_classlink:
            violations.append(
                FieldViolation(f"pairs[{position}].classlink_school_id", f"{classlink_id} appears twice")
            )
        if not ew_school_id or len(ew_school_id) > MAX_ID_LENGTH:
            violations.append(FieldViolation(f"pairs[{position}].ew_school_id", "required"))
        elif ew_school_id in seen_ew:
            violations.append(
                FieldViolation(
                    f"pairs[{position}].ew_school_id",
                    f"{ew_school_id} appears twice; an EW school maps to one ClassLink school",
                )
            )
        seen_classlink.add(classlink_id)
        seen_ew.add(ew_school_id)
    if violations:
        raise InvalidArgument.for_fields(violations)
