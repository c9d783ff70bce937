"""Reads a district's schools, teachers and other staff: the complete roster, or an exception.

Paging rules (``limit``/``offset``):

* The first page is fetched alone. When it carries ``X-Total-Count``, the remaining offsets are known
  and fetched (concurrently, bounded by ``ServerConfig.concurrency``) with the page size the server
  actually used: a server that caps ``limit`` below the requested size returns fewer rows on the
  first page, and that smaller size becomes the step.
* Every later page must report the same total and hold exactly the rows its offset promises; the
  pull must end with ``total`` rows and no ``sourcedId`` twice. Anything else (a total changing
  mid-pull, a silently short page, overlapping pages) means the district changed under us or the
  server is inconsistent, so the pull starts over, at most ``max_restarts`` times, and then raises
  :class:`IncompletePullError`. Rows are never deduplicated silently.
* Without a total, a ``Link: rel="next"`` header decides: the pull follows it and ends on the page
  that has none. Without a total and without ``Link``, nothing says a page is the last one: servers
  cap ``limit`` silently (Ed-Fi's at 500), so a page shorter than asked proves nothing. The next
  offset is then the previous one plus the rows actually returned, and only an empty page ends the
  pull. A row seen twice while paging so is an inconsistency (it also stops a server that ignores
  ``offset`` from being read forever).

Staff (administrators, aides, proctors) are read from ``/users`` with one role filter per role,
concurrently with the teachers: the filter grammar joins at most two predicates on many servers
(the sandbox's included), and a single predicate is the form every server supports.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

import httpx

from services.sync.oneroster.auth import build_auth, secrets_of
from services.sync.oneroster.config import ServerConfig, Version
from services.sync.oneroster.errors import IncompletePullError, MalformedResponseError, NotFoundError
from services.sync.oneroster.models import Org, Roster, RowProblem, User
from services.sync.oneroster.parsing import (
    RowError,
    Unreadable,
    WireOrg,
    WireUser,
    decode_org_rows,
    decode_user_rows,
    org_from_wire,
    text,
    user_from_wire,
)
from services.sync.oneroster.transport import Decoded, RetryBudget, Transport, WaitObserver

logger = logging.getLogger(__name__)

T = TypeVar("T")
W = TypeVar("W", WireOrg, WireUser)

# Staff roles read besides teachers, per version (1.2 replaced "administrator" by three roles).
STAFF_ROLES: dict[Version, tuple[str, ...]] = {
    Version.V1P1: ("administrator", "aide", "proctor"),
    Version.V1P2: ("districtAdministrator", "siteAdministrator", "systemAdministrator", "aide", "proctor"),
}


PageObserver = Callable[[str, int, "int | None"], None]
"""Hears every page converted: the collection's name (``schools``, ``teachers``, ``staff``), the
rows on the page and the collection's total when the server reports one."""


class _Inconsistent(Exception):
    """Pages of one pull disagree; the pull starts over."""


@dataclass(frozen=True)
class _Collection(Generic[W, T]):
    name: str
    path: str
    filter: str | None
    decode: Callable[[bytes, str], list[W | Unreadable]]
    convert: Callable[[W], T]
    keep: Callable[[T], bool]
    rejection: Callable[[T], str]


@dataclass(frozen=True)
class _Download(Generic[W]):
    offset: int
    response: Decoded[list[W | Unreadable]]

    @property
    def row_count(self) -> int:
        return len(self.response.body)

    @property
    def total(self) -> int | None:
        return _total(self.response.headers)


@dataclass
class _Page(Generic[T]):
    offset: int
    row_count: int
    total: int | None
    next_url: str | None
    has_links: bool
    records: list[T]
    ids: list[str | None]
    problems: list[RowProblem]


@dataclass(frozen=True)
class CollectionResult(Generic[T]):
    """The records of one collection, and the rows that could not become records."""

    records: tuple[T, ...]
    problems: tuple[RowProblem, ...]


def _total(headers: httpx.Headers) -> int | None:
    raw = headers.get("x-total-count")
    if raw is None:
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        return None
    return value if value >= 0 else None


class OneRosterClient:
    """One district's OneRoster server. Use as ``async with OneRosterClient(config) as client``.

    ``on_wait`` is called with the seconds the client is about to wait because the server asked
    (``Retry-After``), so a caller can tell its user why nothing moves; ``on_page`` with every page
    read, so a caller can show a long pull advancing page by page.
    """

    def __init__(
        self,
        config: ServerConfig,
        *,
        on_wait: WaitObserver | None = None,
        on_page: PageObserver | None = None,
    ) -> None:
        self._config = config
        self._on_page = on_page
        t = config.timeouts
        self._http = httpx.AsyncClient(
            auth=build_auth(config.credentials),
            timeout=httpx.Timeout(connect=t.connect, read=t.read, write=t.read, pool=t.pool),
            limits=httpx.Limits(max_connections=max(config.concurrency, 1) + 1),
            headers={"Accept": "application/json"},
        )
        self._transport = Transport(
            self._http, config.retry, on_wait=on_wait, secrets=secrets_of(config.credentials)
        )

    async def __aenter__(self) -> OneRosterClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Closes the client's connections."""
        await self._http.aclose()

    # -- public reads -------------------------------------------------------------------------

    async def check_connection(self) -> int | None:
        """Reads one page of schools to prove URL and credentials work; returns the reported total."""
        budget = RetryBudget(self._config.retry.budget_seconds)
        schools = self._schools_collection("/schools", None)
        try:
            download = await self._download(schools, schools.path, 0, self._config.page_size, budget)
        except NotFoundError:
            orgs = self._schools_collection("/orgs", "type='school'")
            download = await self._download(orgs, orgs.path, 0, self._config.page_size, budget)
        return download.total

    async def pull_roster(self) -> Roster:
        """Every school, teacher and staff account, or an exception; never a partial roster.

        All collections draw on one retry budget, so a struggling server fails the pull in bounded time.
        """
        budget = RetryBudget(self._config.retry.budget_seconds)
        schools = await self._schools(budget)
        teachers, staff = await self._teachers_and_staff(budget)
        return Roster(
            schools=schools.records,
            teachers=teachers.records,
            staff=staff.records,
            problems=schools.problems + teachers.problems + staff.problems,
        )

    async def list_schools(self) -> CollectionResult[Org]:
        """Every school of the district, with the rows that could not be read."""
        return await self._schools(RetryBudget(self._config.retry.budget_seconds))

    async def list_teachers(self) -> CollectionResult[User]:
        """Every teacher of the district, with the rows that could not be read."""
        return await self._teachers(RetryBudget(self._config.retry.budget_seconds))

    async def list_teachers_and_staff(self) -> tuple[CollectionResult[User], CollectionResult[User]]:
        """Teachers and the other staff (administrators, aides, proctors), read at once."""
        return await self._teachers_and_staff(RetryBudget(self._config.retry.budget_seconds))

    async def _teachers_and_staff(
        self, budget: RetryBudget
    ) -> tuple[CollectionResult[User], CollectionResult[User]]:
        """Read at once, so the few staff accounts add next to nothing to a pull's time."""
        teachers, staff = await _gather([self._teachers(budget), self._staff(budget)])
        return teachers, staff

    async def _schools(self, budget: RetryBudget) -> CollectionResult[Org]:
        try:
            return await self._pull(self._schools_collection("/schools", None), budget)
        except NotFoundError:
            logger.info("/schools not offered; reading /orgs filtered to type 'school'")
        return await self._pull(self._schools_collection("/orgs", "type='school'"), budget)

    async def _teachers(self, budget: RetryBudget) -> CollectionResult[User]:
        try:
            return await self._pull(self._teachers_collection("/teachers", None), budget)
        except NotFoundError:
            logger.info("/teachers not offered; reading /users filtered to role 'teacher'")
        return await self._pull(self._teachers_collection("/users", self._role_filter("teacher")), budget)

    async def _staff(self, budget: RetryBudget) -> CollectionResult[User]:
        """Users of every staff role (no dedicated endpoint exists in 1.1 or 1.2).

        A user holding two staff roles is listed once, under the first of :data:`STAFF_ROLES`.
        """
        roles = STAFF_ROLES[self._config.version]
        results = await _gather([self._pull(self._staff_collection(role), budget) for role in roles])
        records: dict[str, User] = {}
        problems: list[RowProblem] = []
        for result in results:
            for user in result.records:
                records.setdefault(user.sourced_id, user)
            problems.extend(result.problems)
        return CollectionResult(tuple(records.values()), tuple(problems))

    def _role_filter(self, role: str) -> str:
        field = "roles.role" if self._config.version is Version.V1P2 else "role"
        return f"{field}='{role}'"

    # -- collections ----------------------------------------------------------------------------

    def _schools_collection(self, path: str, filter_: str | None) -> _Collection[WireOrg, Org]:
        return _Collection(
            name="schools",
            path=path,
            filter=filter_,
            decode=decode_org_rows,
            convert=org_from_wire,
            keep=lambda org: org.type == "school",
            rejection=lambda org: f"org of type '{org.type}' listed among schools",
        )

    def _teachers_collection(self, path: str, filter_: str | None) -> _Collection[WireUser, User]:
        return self._users_collection("teachers", path, filter_, "teacher")

    def _staff_collection(self, role: str) -> _Collection[WireUser, User]:
        return self._users_collection("staff", "/users", self._role_filter(role), role)

    def _users_collection(
        self, name: str, path: str, filter_: str | None, role: str
    ) -> _Collection[WireUser, User]:
        return _Collection(
            name=name,
            path=path,
            filter=filter_,
            decode=decode_user_rows,
            convert=partial(user_from_wire, version=self._config.version, wanted_role=role),
            keep=lambda user: user.role == role,
            rejection=lambda user: f"user with role '{user.role}' listed among {role} accounts",
        )

    # -- paging ---------------------------------------------------------------------------------

    async def _pull(self, collection: _Collection[W, T], budget: RetryBudget) -> CollectionResult[T]:
        reason = ""
        for attempt in range(self._config.max_restarts + 1):
            try:
                return self._assemble(collection, await self._pull_once(collection, budget))
            except _Inconsistent as exc:
                reason = str(exc)
                logger.warning(
                    "inconsistent pull of %s (attempt %d): %s", collection.path, attempt + 1, reason
                )
        raise IncompletePullError(
            f"Could not read a consistent list of {collection.name} after "
            f"{self._config.max_restarts + 1} attempts: {reason}."
        )

    async def _pull_once(self, collection: _Collection[W, T], budget: RetryBudget) -> list[_Page[T]]:
        requested = self._config.page_size
        first = await self._download(collection, collection.path, 0, requested, budget)
        total = first.total
        if total is None:
            return await self._follow(collection, self._page(collection, first), requested, budget)
        if first.row_count == 0 and total > 0:
            raise _Inconsistent(f"first page is empty but the server reports {total} rows")
        # The server's own page size becomes the step: a server may cap ``limit`` lower or use a
        # fixed larger page; either way each later page must hold exactly that many rows.
        step = first.row_count
        offsets = list(range(first.row_count, total, step)) if step else []
        fetch = self._sequential if self._config.concurrency == 1 else self._concurrent
        pages = await fetch(collection, first, offsets, step, total, budget)
        seen = sum(p.row_count for p in pages)
        if seen != total:
            raise _Inconsistent(f"read {seen} rows but the server reports {total}")
        return pages

    async def _checked(
        self,
        collection: _Collection[W, T],
        offset: int,
        step: int,
        total: int,
        budget: RetryBudget,
        sent: asyncio.Event | None = None,
    ) -> _Download[W]:
        download = await self._download(collection, collection.path, offset, step, budget, sent)
        if download.total is not None and download.total != total:
            raise _Inconsistent(f"total changed from {total} to {download.total} during the pull")
        expected = min(step, total - offset)
        if download.row_count != expected:
            raise _Inconsistent(
                f"page at offset {offset} held {download.row_count} rows, expected {expected}"
            )
        return download

    async def _sequential(
        self,
        collection: _Collection[W, T],
        first: _Download[W],
        offsets: list[int],
        step: int,
        total: int,
        budget: RetryBudget,
    ) -> list[_Page[T]]:
        """The pages at ``offsets``, fetched one request at a time.

        Each next page is requested before the current one is converted, so the server prepares it
        while the client parses.
        """

        async def request(index: int) -> asyncio.Task[_Download[W]] | None:
            """Starts fetching page ``index`` and returns once its request is on the wire (or it failed)."""
            if index >= len(offsets):
                return None
            sent = asyncio.Event()
            task = asyncio.create_task(self._checked(collection, offsets[index], step, total, budget, sent))
            waiter = asyncio.create_task(sent.wait())
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            return task

        pending = await request(0)
        try:
            pages = [self._page(collection, first)]
            for index in range(len(offsets)):
                assert pending is not None
                download = await pending
                pending = await request(index + 1)
                pages.append(self._page(collection, download))
        finally:
            if pending is not None:
                pending.cancel()
        return pages

    async def _concurrent(
        self,
        collection: _Collection[W, T],
        first: _Download[W],
        offsets: list[int],
        step: int,
        total: int,
        budget: RetryBudget,
    ) -> list[_Page[T]]:
        """Up to ``concurrency`` requests in flight; pages are converted as they arrive."""
        semaphore = asyncio.Semaphore(self._config.concurrency)

        async def one(offset: int) -> _Page[T]:
            async with semaphore:
                download = await self._checked(collection, offset, step, total, budget)
            return self._page(collection, download)

        tasks: list[asyncio.Task[_Page[T]]] = []
        try:
            async with asyncio.TaskGroup() as group:
                tasks.extend(group.create_task(one(offset)) for offset in offsets)
                first_page = self._page(collection, first)
        except BaseExceptionGroup as group_error:
            raise group_error.exceptions[0] from None
        return [first_page, *(task.result() for task in tasks)]

    async def _follow(
        self, collection: _Collection[W, T], first: _Page[T], requested: int, budget: RetryBudget
    ) -> list[_Page[T]]:
        """Pages without a total: ``Link: rel="next"`` when sent, else offsets by rows returned."""
        pages = [first]
        page = first
        seen: set[str] = set()
        while True:
            for sourced_id in page.ids:
                if sourced_id is not None and sourced_id in seen:
                    raise _Inconsistent(f"{collection.name} row {sourced_id} was listed twice")
                if sourced_id is not None:
                    seen.add(sourced_id)
            if page.row_count == 0:
                return pages
            if page.has_links:
                if page.next_url is None:
                    return pages
                download = await self._download(collection, page.next_url, None, None, budget)
            else:
                offset = page.offset + page.row_count
                download = await self._download(collection, collection.path, offset, requested, budget)
            if download.total is not None:
                raise _Inconsistent("the server started reporting a total in the middle of the pull")
            page = self._page(collection, download)
            pages.append(page)

    async def _download(
        self,
        collection: _Collection[W, T],
        path_or_url: str,
        offset: int | None,
        limit: int | None,
        budget: RetryBudget,
        sent: asyncio.Event | None = None,
    ) -> _Download[W]:
        """One page, decoded into wire rows; ``offset=None`` means ``path_or_url`` is a full next link."""
        params: dict[str, str | int] | None = None
        url = path_or_url
        if offset is not None and limit is not None:
            url = self._config.base_url + path_or_url
            params = {"limit": limit, "offset": offset}
            if collection.filter:
                params["filter"] = collection.filter
        response = await self._transport.get(
            url, params, budget, lambda body: collection.decode(body, collection.path), sent
        )
        if offset is None:
            raw_offset = response.url.params.get("offset", "0")
            offset = int(raw_offset) if raw_offset.isdigit() else 0
        return _Download(offset, response)

    def _page(self, collection: _Collection[W, T], download: _Download[W]) -> _Page[T]:
        """Converts a page's rows; unreadable rows become problems with their position."""
        records: list[T] = []
        ids: list[str | None] = []
        problems: list[RowProblem] = []
        convert, keep = collection.convert, collection.keep
        for index, wire in enumerate(download.response.body):
            position = download.offset + index
            if isinstance(wire, Unreadable):
                ids.append(wire.sourced_id)
                problems.append(
                    RowProblem(collection.name, position, wire.sourced_id, wire.email, wire.reason)
                )
                continue
            sourced_id = text(wire.sourced_id)
            ids.append(sourced_id)
            try:
                record = convert(wire)
            except RowError as exc:
                problems.append(RowProblem(collection.name, position, sourced_id, _email(wire), str(exc)))
                continue
            if keep(record):
                records.append(record)
            else:
                problems.append(
                    RowProblem(
                        collection.name, position, sourced_id, _email(wire), collection.rejection(record)
                    )
                )
        if self._on_page is not None:
            self._on_page(collection.name, download.row_count, download.total)
        link = download.response.headers.get("link")
        return _Page(
            offset=download.offset,
            row_count=download.row_count,
            total=download.total,
            next_url=_next_link(link, download.response.url, self._config.server_url) if link else None,
            has_links=bool(link),
            records=records,
            ids=ids,
            problems=problems,
        )

    def _assemble(self, collection: _Collection[W, T], pages: list[_Page[T]]) -> CollectionResult[T]:
        seen: set[str] = set()
        for page in pages:
            for sourced_id in page.ids:
                if sourced_id is None:
                    continue
                if sourced_id in seen:
                    raise _Inconsistent(f"{collection.name} row {sourced_id} was listed twice")
                seen.add(sourced_id)
        pages.sort(key=lambda p: p.offset)
        return CollectionResult(
            records=tuple(r for p in pages for r in p.records),
            problems=tuple(q for p in pages for q in p.problems),
        )


def _email(wire: WireOrg | WireUser) -> str | None:
    """The row's email, so a problem row can still protect the EW teacher it names."""
    return text(wire.email) if isinstance(wire, WireUser) else None


async def _gather(pulls: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
    """Pulls at once, results in order; the first failure cancels the others and is raised as itself."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(pull) for pull in pulls]
    except BaseExceptionGroup as group_error:
        raise group_error.exceptions[0] from None
    return [task.result() for task in tasks]


def _next_link(header: str, current: httpx.URL, server_url: str) -> str | None:
    """The ``rel="next"`` target of a Link header, resolved against the current URL.

    A next link pointing at another server is refused: following it would send our signed request
    (and, for bearer auth, the token) to a host the district did not configure.
    """
    for part in header.split(","):
        target, _, params = part.partition(";")
        rels = [p.strip() for p in params.split(";")]
        if any(rel.replace(" ", "").lower() in {'rel="next"', "rel=next"} for rel in rels):
            url = current.join(target.strip().strip("<>"))
            if url.host != httpx.URL(server_url).host or url.port != httpx.URL(server_url).port:
                raise MalformedResponseError("The server's Link rel=next points at another host.")
            return str(url)
    return None
