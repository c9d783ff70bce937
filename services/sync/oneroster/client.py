"""Reads a district's schools and teachers: the complete roster, or an exception.

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
* Without a total, pages are read one by one, following ``Link: rel="next"`` when present, and the
  pull ends on an empty page or a page shorter than the page size.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx

from services.sync.oneroster.auth import build_auth
from services.sync.oneroster.config import ServerConfig, Version
from services.sync.oneroster.errors import (
    IncompletePullError,
    MalformedResponseError,
    NotFoundError,
    ServerError,
)
from services.sync.oneroster.models import Org, Roster, RowProblem, User
from services.sync.oneroster.parsing import (
    RowError,
    imsx_description,
    is_failure_payload,
    parse_org,
    parse_user,
    text,
)
from services.sync.oneroster.transport import JsonResponse, RetryBudget, Transport

logger = logging.getLogger(__name__)

T = TypeVar("T")

ORG_KEYS = ("orgs", "schools")
USER_KEYS = ("users", "teachers")


class _Inconsistent(Exception):
    """Pages of one pull disagree; the pull starts over."""


@dataclass(frozen=True)
class _Collection(Generic[T]):
    name: str
    path: str
    keys: tuple[str, ...]
    filter: str | None
    parse: Callable[[object], T]
    keep: Callable[[T], bool]
    rejection: Callable[[T], str]


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


def _rows(body: Any, keys: Sequence[str], path: str) -> list[Any]:
    if isinstance(body, dict):
        for key in keys:
            rows = body.get(key)
            if isinstance(rows, list):
                return rows
        if is_failure_payload(body):
            description = imsx_description(body) or "no description"
            raise ServerError(
                f"{path} returned a failure status: {description}.", status_code=200, description=description
            )
    raise MalformedResponseError(f"{path} returned HTTP 200 without a '{keys[0]}' collection.")


class OneRosterClient:
    """One district's OneRoster server. Use as ``async with OneRosterClient(config) as client``."""

    def __init__(self, config: ServerConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._config = config
        t = config.timeouts
        self._http = httpx.AsyncClient(
            auth=build_auth(config.credentials),
            timeout=httpx.Timeout(connect=t.connect, read=t.read, write=t.read, pool=t.pool),
            limits=httpx.Limits(max_connections=max(config.concurrency, 1) + 1),
            headers={"Accept": "application/json"},
            transport=transport,
        )
        self._transport = Transport(self._http, config.retry)

    async def __aenter__(self) -> OneRosterClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def config(self) -> ServerConfig:
        return self._config

    # -- public reads -------------------------------------------------------------------------

    async def check_connection(self) -> int | None:
        """Reads one page of schools to prove URL and credentials work; returns the reported total."""
        budget = RetryBudget(self._config.retry.budget_seconds)
        response = await self._first_page_of_schools(budget)
        return _total(response.headers)

    async def pull_roster(self) -> Roster:
        """Every school and every teacher, or an exception; never a partial roster."""
        schools = await self.list_schools()
        teachers = await self.list_teachers()
        return Roster(
            schools=schools.records, teachers=teachers.records, problems=schools.problems + teachers.problems
        )

    async def list_schools(self) -> CollectionResult[Org]:
        budget = RetryBudget(self._config.retry.budget_seconds)
        direct = self._schools_collection("/schools", None)
        try:
            return await self._pull(direct, budget)
        except NotFoundError:
            logger.info("/schools not offered; reading /orgs filtered to type 'school'")
        return await self._pull(self._schools_collection("/orgs", "type='school'"), budget)

    async def list_teachers(self) -> CollectionResult[User]:
        budget = RetryBudget(self._config.retry.budget_seconds)
        try:
            return await self._pull(self._teachers_collection("/teachers", None), budget)
        except NotFoundError:
            logger.info("/teachers not offered; reading /users filtered to role 'teacher'")
        field = "roles.role" if self._config.version is Version.V1P2 else "role"
        return await self._pull(self._teachers_collection("/users", f"{field}='teacher'"), budget)

    # -- collections ----------------------------------------------------------------------------

    def _schools_collection(self, path: str, filter_: str | None) -> _Collection[Org]:
        return _Collection(
            name="schools",
            path=path,
            keys=ORG_KEYS,
            filter=filter_,
            parse=parse_org,
            keep=lambda org: org.type == "school",
            rejection=lambda org: f"org of type '{org.type}' listed among schools",
        )

    def _teachers_collection(self, path: str, filter_: str | None) -> _Collection[User]:
        version = self._config.version
        return _Collection(
            name="teachers",
            path=path,
            keys=USER_KEYS,
            filter=filter_,
            parse=lambda row: parse_user(row, version, wanted_role="teacher"),
            keep=lambda user: user.role == "teacher",
            rejection=lambda user: f"user with role '{user.role}' listed among teachers",
        )

    async def _first_page_of_schools(self, budget: RetryBudget) -> JsonResponse:
        params: dict[str, str | int] = {"limit": self._config.page_size, "offset": 0}
        try:
            return await self._transport.get_json(self._config.base_url + "/schools", params, budget)
        except NotFoundError:
            params["filter"] = "type='school'"
            return await self._transport.get_json(self._config.base_url + "/orgs", params, budget)

    # -- paging ---------------------------------------------------------------------------------

    async def _pull(self, collection: _Collection[T], budget: RetryBudget) -> CollectionResult[T]:
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

    async def _pull_once(self, collection: _Collection[T], budget: RetryBudget) -> list[_Page[T]]:
        requested = self._config.page_size
        first = await self._fetch(collection, self._config.base_url + collection.path, 0, requested, budget)
        if first.total is None:
            return await self._follow(collection, first, requested, budget)
        total = first.total
        if first.row_count == 0 and total > 0:
            raise _Inconsistent(f"first page is empty but the server reports {total} rows")
        step = first.row_count if first.row_count < min(requested, total) else requested
        offsets = list(range(first.row_count, total, step))
        pages = [first]
        if self._config.concurrency == 1:
            for offset in offsets:
                pages.append(await self._checked(collection, offset, step, total, budget))
        else:
            pages.extend(await self._gather(collection, offsets, step, total, budget))
        seen = sum(p.row_count for p in pages)
        if seen != total:
            raise _Inconsistent(f"read {seen} rows but the server reports {total}")
        return pages

    async def _checked(
        self, collection: _Collection[T], offset: int, step: int, total: int, budget: RetryBudget
    ) -> _Page[T]:
        page = await self._fetch(collection, self._config.base_url + collection.path, offset, step, budget)
        if page.total is not None and page.total != total:
            raise _Inconsistent(f"total changed from {total} to {page.total} during the pull")
        expected = min(step, total - offset)
        if page.row_count != expected:
            raise _Inconsistent(f"page at offset {offset} held {page.row_count} rows, expected {expected}")
        return page

    async def _gather(
        self, collection: _Collection[T], offsets: list[int], step: int, total: int, budget: RetryBudget
    ) -> list[_Page[T]]:
        semaphore = asyncio.Semaphore(self._config.concurrency)

        async def one(offset: int) -> _Page[T]:
            async with semaphore:
                return await self._checked(collection, offset, step, total, budget)

        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(one(offset)) for offset in offsets]
        except BaseExceptionGroup as group_error:
            raise group_error.exceptions[0] from None
        return [task.result() for task in tasks]

    async def _follow(
        self, collection: _Collection[T], first: _Page[T], requested: int, budget: RetryBudget
    ) -> list[_Page[T]]:
        pages = [first]
        page = first
        while True:
            if page.row_count == 0:
                return pages
            if page.has_links:
                if page.next_url is None:
                    return pages
                page = await self._fetch(collection, page.next_url, None, None, budget)
            elif page.row_count < requested:
                return pages
            else:
                offset = page.offset + page.row_count
                page = await self._fetch(
                    collection, self._config.base_url + collection.path, offset, requested, budget
                )
            if page.total is not None:
                raise _Inconsistent("the server started reporting a total in the middle of the pull")
            pages.append(page)

    async def _fetch(
        self,
        collection: _Collection[T],
        url: str,
        offset: int | None,
        limit: int | None,
        budget: RetryBudget,
    ) -> _Page[T]:
        params: dict[str, str | int] | None = None
        if offset is not None and limit is not None:
            params = {"limit": limit, "offset": offset}
            if collection.filter:
                params["filter"] = collection.filter
        response = await self._transport.get_json(url, params, budget)
        rows = _rows(response.body, collection.keys, collection.path)
        page_offset = offset if offset is not None else int(response.url.params.get("offset", "0") or 0)
        records: list[T] = []
        ids: list[str | None] = []
        problems: list[RowProblem] = []
        for index, row in enumerate(rows):
            sourced_id = text(row.get("sourcedId")) if isinstance(row, dict) else None
            ids.append(sourced_id)
            try:
                record = collection.parse(row)
            except RowError as exc:
                problems.append(RowProblem(collection.name, page_offset + index, sourced_id, str(exc)))
                continue
            if collection.keep(record):
                records.append(record)
            else:
                problems.append(
                    RowProblem(collection.name, page_offset + index, sourced_id, collection.rejection(record))
                )
        next_link = response.headers.get("link")
        next_url = None
        if next_link:
            next_url = _next_link(next_link, response.url, self._config.server_url)
        return _Page(
            offset=page_offset,
            row_count=len(rows),
            total=_total(response.headers),
            next_url=next_url,
            has_links=bool(next_link),
            records=records,
            ids=ids,
            problems=problems,
        )

    def _assemble(self, collection: _Collection[T], pages: list[_Page[T]]) -> CollectionResult[T]:
        seen: set[str] = set()
        for page in pages:
            for sourced_id in page.ids:
                if sourced_id is None:
                    continue
                if sourced_id in seen:
                    raise _Inconsistent(f"{collection.name} row {sourced_id} appeared on two pages")
                seen.add(sourced_id)
        pages.sort(key=lambda p: p.offset)
        return CollectionResult(
            records=tuple(r for p in pages for r in p.records),
            problems=tuple(q for p in pages for q in p.problems),
        )


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
