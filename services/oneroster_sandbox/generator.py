"""A deterministic, realistic district: the same seed always gives the same roster.

Schools carry the names districts really use (levels spelled out or abbreviated, a few
near-duplicates such as "Lincoln Elementary" beside "Lincoln Elem School"); teachers include
unicode names, a share in two or more schools, a few without email, pairs whose emails differ
only in case, some ``tobedeleted`` and some disabled; students and administrators are mixed in so
that role filtering matters.

Options a test asks for (all off by default, and drawn after everything else so a seed's district
stays the same without them): ``staff`` aides and proctors each; ``staff_twins``, two administrator
accounts reusing teachers' emails (one under that teacher's name, one under another name), as
districts give one person a teacher and an admin account; ``split_rows``, one row per teacher and
school with its own sourcedId, as Ed-Fi's OneRoster server sends.
"""

from __future__ import annotations

import datetime as dt
import random
import unicodedata
import uuid
from dataclasses import replace

from services.oneroster_sandbox.model import District, SandboxOrg, SandboxUser

_BASE_NAMES = (
    "Lincoln",
    "Washington",
    "Jefferson",
    "Roosevelt",
    "Kennedy",
    "Franklin",
    "Madison",
    "Jackson",
    "Adams",
    "Hamilton",
    "Maple Grove",
    "Oak Ridge",
    "Riverside",
    "Lakeview",
    "Hillcrest",
    "Pine Valley",
    "Cedar Creek",
    "Sunnyvale",
    "Fairview",
    "Greenwood",
    "Cesar Chavez",
    "Sojourner Truth",
    "Martin Luther King Jr.",
    "Rosa Parks",
    "Frederick Douglass",
    "Harriet Tubman",
    "Booker T. Washington",
    "St. Mary's",
    "St. Joseph",
    "Eastside",
    "Westside",
    "Northgate",
    "Southridge",
    "Mountain View",
    "Willow Springs",
    "Brookside",
    "Meadowbrook",
    "Highland Park",
    "Clearwater",
    "Stonebridge",
)
_QUALIFIERS = ("", "", "", "North ", "South ", "East ", "West ", "Central ", "New ", "Upper ")
_LEVELS = {
    "elementary": ("Elementary School", "Elementary", "Elem", "ES", "Elem School"),
    "middle": ("Middle School", "MS", "Middle", "Jr. High"),
    "high": ("High School", "HS", "High", "Senior High School"),
}
_GIVEN = (
    "José",
    "Zoë",
    "María",
    "Renée",
    "Siobhán",
    "Łukasz",
    "Ngozi",
    "Aarav",
    "Mei",
    "Søren",
    "Chloé",
    "François",
    "Jürgen",
    "Anaïs",
    "Björn",
    "Dmitri",
    "Fatima",
    "Hiroshi",
    "Ines",
    "Kwame",
    "Leilani",
    "Mohammed",
    "Nadia",
    "Oksana",
    "Priya",
    "Rafael",
    "Sakura",
    "Thandiwe",
    "Valentina",
    "Wei",
    "Emma",
    "Liam",
    "Olivia",
    "Noah",
    "Ava",
    "James",
    "Sophia",
    "William",
    "Isabella",
    "Lucas",
    "Mia",
    "Benjamin",
    "Charlotte",
    "Henry",
    "Amelia",
    "Daniel",
    "Harper",
    "Jack",
    "Evelyn",
    "Samuel",
)
_FAMILY = (
    "Nguyễn",
    "O'Brien",
    "Müller",
    "García",
    "Hernández",
    "Kowalski",
    "Okafor",
    "Patel",
    "Zhang",
    "Ó Súilleabháin",
    "Dubois",
    "Schröder",
    "Sánchez",
    "Jensen",
    "Ivanova",
    "Yamamoto",
    "Mensah",
    "Kealoha",
    "Al-Farsi",
    "Haddad",
    "D'Angelo",
    "Van der Berg",
    "Smith-Jones",
    "McAllister",
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Miller",
    "Davis",
    "Wilson",
    "Anderson",
    "Taylor",
    "Thomas",
    "Moore",
    "Martin",
    "Lee",
    "Thompson",
    "White",
    "Harris",
    "Clark",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
)
_CITIES = (
    "Springfield",
    "Riverton",
    "Fairfield",
    "Greenville",
    "Franklin",
    "Clinton",
    "Madison",
    "Georgetown",
)

BASE_TIME = dt.datetime(2026, 8, 1, 12, 0, tzinfo=dt.UTC)


def _ascii(value: str) -> str:
    folded = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    return "".join(c for c in folded.lower() if c.isalnum())


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _when(rng: random.Random) -> dt.datetime:
    return BASE_TIME + dt.timedelta(seconds=rng.randrange(0, 90 * 24 * 3600))


def _school_names(rng: random.Random, count: int) -> list[str]:
    names: list[str] = []
    used: set[str] = set()
    near_duplicates = max(1, count // 20) if count >= 4 else 0
    while len(names) < count:
        base = rng.choice(_BASE_NAMES)
        level = rng.choice(tuple(_LEVELS))
        qualifier = rng.choice(_QUALIFIERS)
        name = f"{qualifier}{base} {rng.choice(_LEVELS[level])}"
        if name in used:
            name = f"{name} {len(names) + 1}"
            if name in used:
                continue
        used.add(name)
        names.append(name)
        if near_duplicates and len(names) < count and rng.random() < 0.3:
            variants = [v for v in _LEVELS[level] if f"{qualifier}{base} {v}" not in used]
            if variants:
                twin = f"{qualifier}{base} {rng.choice(variants)}"
                used.add(twin)
                names.append(twin)
                near_duplicates -= 1
    return names


def generate_district(
    *,
    seed: int,
    tenant_index: int,
    schools: int,
    teachers: int,
    students: int | None = None,
    administrators: int | None = None,
    staff: int = 0,
    staff_twins: bool = False,
    split_rows: bool = False,
) -> District:
    """One district; ``tenant_index`` varies ids, names and credentials between tenants of one seed."""
    rng = random.Random(f"{seed}:{tenant_index}")
    tenant_id = str(4100 + tenant_index)
    city = _CITIES[tenant_index % len(_CITIES)]
    domain = f"{_ascii(city)}{tenant_index}.k12.example.org"
    district_id = _uuid(rng)
    orgs: dict[str, SandboxOrg] = {
        district_id: SandboxOrg(
            district_id,
            f"{city} Unified School District",
            "district",
            f"NCES-{tenant_id}",
            None,
            "active",
            BASE_TIME,
        )
    }
    department_id = _uuid(rng)
    orgs[department_id] = SandboxOrg(
        department_id,
        "Office of Curriculum",
        "department",
        f"DEP-{tenant_id}",
        district_id,
        "active",
        BASE_TIME,
    )
    school_ids: list[str] = []
    for index, name in enumerate(_school_names(rng, schools)):
        sourced_id = _uuid(rng)
        school_ids.append(sourced_id)
        orgs[sourced_id] = SandboxOrg(
            sourced_id, name, "school", f"{tenant_id}{index:05d}", district_id, "active", _when(rng)
        )
    users: dict[str, SandboxUser] = {}
    emails: list[str] = []

    def person(role: str, number: int) -> SandboxUser:
        return _person(rng, role, number, domain, school_ids, district_id)

    for number in range(teachers):
        user = _email_quirks(rng, person("teacher", number), number, emails)
        users[user.sourced_id] = user
    for number in range(students if students is not None else max(1, teachers // 2)):
        user = person("student", number)
        users[user.sourced_id] = user
    for number in range(administrators if administrators is not None else max(1, teachers // 50)):
        user = person("administrator", number)
        users[user.sourced_id] = user
    for role in ("aide", "proctor"):
        for number in range(staff):
            user = person(role, number)
            users[user.sourced_id] = user
    if staff_twins:
        _add_staff_twins(rng, users, district_id)
    if split_rows:
        users = _split_rows(rng, users)
    return District(
        tenant_id=tenant_id,
        name=f"{city} Unified School District",
        orgs=orgs,
        users=users,
        client_id=f"sandbox-{tenant_id}-{rng.getrandbits(32):08x}",
        client_secret=f"{rng.getrandbits(128):032x}",
        bearer_token=f"{rng.getrandbits(160):040x}",
        application_id=str(70000 + tenant_index),
    )


def _person(
    rng: random.Random, role: str, number: int, domain: str, school_ids: list[str], district_id: str
) -> SandboxUser:
    """One generated account of ``role`` (rng draws in a fixed order, so a seed gives one district)."""
    given, family = rng.choice(_GIVEN), rng.choice(_FAMILY)
    local = f"{_ascii(given)}.{_ascii(family)}{number}"
    email = f"{local}@{domain}"
    user_orgs = _user_orgs(rng, role, school_ids, district_id)
    roll = rng.random()
    # A random share plus a fixed rhythm, so even a small district has deleted and disabled rows.
    deleted = roll < 0.02 or (role == "teacher" and number % 43 == 11)
    disabled = 0.02 <= roll < 0.03 or (role == "teacher" and number % 53 == 13)
    return SandboxUser(
        sourced_id=_uuid(rng),
        status="tobedeleted" if deleted else "active",
        enabled_user=not disabled,
        given_name=given,
        family_name=family,
        email=email,
        role=role,
        orgs=user_orgs,
        username=local,
        identifier=f"{role[0].upper()}{number:07d}",
        date_last_modified=_when(rng),
        grades=(str(rng.randint(1, 12)),) if role == "student" else (),
    )


def _email_quirks(rng: random.Random, user: SandboxUser, number: int, emails: list[str]) -> SandboxUser:
    """Some teachers have no email, some another teacher's in capitals; ``emails`` collects them."""
    if rng.random() < 0.01 or number % 61 == 7:
        user = replace(user, email=None)
    elif number % 97 == 5 and emails:
        user = replace(user, email=rng.choice(emails).upper())
    if user.email:
        emails.append(user.email)
    return user


def _user_orgs(rng: random.Random, role: str, school_ids: list[str], district_id: str) -> tuple[str, ...]:
    if role == "teacher":
        count = 1 if rng.random() >= 0.15 or len(school_ids) < 2 else rng.choice((2, 2, 3))
        return tuple(rng.sample(school_ids, min(count, len(school_ids)))) if school_ids else (district_id,)
    if role == "administrator":
        return (district_id,)
    return (rng.choice(school_ids),) if school_ids else (district_id,)


def _add_staff_twins(rng: random.Random, users: dict[str, SandboxUser], district_id: str) -> None:
    """Two administrator accounts that look like teachers.

    One has a teacher's email and name, the other another teacher's email under a different name.
    """
    teachers = [u for u in users.values() if u.role == "teacher" and u.email and u.status == "active"]
    for teacher, renamed in zip(teachers[:2], (False, True), strict=False):
        given = rng.choice([g for g in _GIVEN if g != teacher.given_name]) if renamed else teacher.given_name
        sourced_id = _uuid(rng)
        users[sourced_id] = replace(
            teacher,
            sourced_id=sourced_id,
            given_name=given,
            role="administrator",
            orgs=(district_id,),
            username=f"admin.{teacher.username}",
            identifier=f"A{teacher.identifier[1:]}",
        )


def _split_rows(rng: random.Random, users: dict[str, SandboxUser]) -> dict[str, SandboxUser]:
    """Every teacher of several schools becomes one row per school, each with its own sourcedId."""
    split: dict[str, SandboxUser] = {}
    for user in users.values():
        if user.role != "teacher" or len(user.orgs) < 2:
            split[user.sourced_id] = user
            continue
        for org in user.orgs:
            row = replace(user, sourced_id=_uuid(rng), orgs=(org,))
            split[row.sourced_id] = row
    return split
