"""School name matching: the auto-mapping rule and the ranking administrators see as suggestions."""

from __future__ import annotations

import pytest

from services.sync.planning.matching import (
    Level,
    SuggestionIndex,
    auto_map,
    expand,
    normalise_name,
    school_level,
    suggest,
)

# A district's EW schools, with namesakes of different levels on purpose.
EW_SCHOOLS = {
    f"ew-{number:02d}": name
    for number, name in enumerate(
        [
            "Lincoln Elementary School",
            "Lincoln Middle School",
            "Lincoln High School",
            "Lincoln Park Elementary",
            "Washington High School",
            "Washington Middle School",
            "Washington Elementary School",
            "Saint Marys Academy",
            "Saint Mary Elementary",
            "Public School 123 Manhattan",
            "Public School 12 Manhattan",
            "Martin Luther King Junior Elementary",
            "Martin Luther King Junior High School",
            "Jefferson Junior High",
            "Jefferson Elementary",
            "Roosevelt K-8 School",
            "Roosevelt High School",
            "Mount Vernon Middle School",
            "Mount Vernon High School",
            "Fort Hamilton High School",
            "Hamilton Elementary",
            "Oak Grove Early Learning Center",
            "Oak Grove Elementary",
            "Main Street Elementary",
            "Saint Paul Elementary",
            "International Academy of Science",
            "Riverside Preparatory Academy",
            "Riverside High School",
            "El Camino Real High School",
            "Camino Elementary",
            "Cesar Chavez Middle School",
            "Cesar Chavez High School",
            "Kennedy Senior High",
            "Kennedy Middle School",
            "George Washington Carver Elementary",
            "Sunset Ridge Intermediate",
            "Sunset Ridge Elementary",
            "Northside Technology Center",
            "Northside High School",
            "Garfield Primary School",
        ],
        start=1,
    )
}
NAME_TO_ID = {name: school_id for school_id, name in EW_SCHOOLS.items()}

# (ClassLink name, the EW school that must be the first suggestion, same-stem EW schools of another
# level that must rank below it).
RANKING_CASES = [
    ("Lincoln Elem", "Lincoln Elementary School", ["Lincoln High School", "Lincoln Middle School"]),
    ("Lincoln ES", "Lincoln Elementary School", ["Lincoln High School", "Lincoln Middle School"]),
    ("Lincoln El", "Lincoln Elementary School", ["Lincoln High School"]),
    ("LINCOLN ELEMENTARY", "Lincoln Elementary School", ["Lincoln Park Elementary"]),
    ("Lincoln MS", "Lincoln Middle School", ["Lincoln Elementary School", "Lincoln High School"]),
    ("Lincoln HS", "Lincoln High School", ["Lincoln Elementary School", "Lincoln Middle School"]),
    ("Lincoln Park Elem.", "Lincoln Park Elementary", ["Lincoln High School"]),
    ("Washington HS", "Washington High School", ["Washington Middle School", "Washington Elementary School"]),
    ("Washington Mid School", "Washington Middle School", ["Washington High School"]),
    ("Washington Elem Sch", "Washington Elementary School", ["Washington High School"]),
    ("St. Mary's Academy", "Saint Marys Academy", []),
    ("St Mary's Elem", "Saint Mary Elementary", ["Saint Marys Academy"]),
    ("PS 123 Manhattan", "Public School 123 Manhattan", ["Public School 12 Manhattan"]),
    ("P.S. 123 Manhattan", "Public School 123 Manhattan", ["Public School 12 Manhattan"]),
    (
        "Dr. Martin Luther King Jr. Elem",
        "Martin Luther King Junior Elementary",
        ["Martin Luther King Junior High School"],
    ),
    (
        "Martin Luther King Jr HS",
        "Martin Luther King Junior High School",
        ["Martin Luther King Junior Elementary"],
    ),
    ("Jefferson Jr. High", "Jefferson Junior High", ["Jefferson Elementary"]),
    ("Jefferson JHS", "Jefferson Junior High", ["Jefferson Elementary"]),
    ("Jefferson Elem.", "Jefferson Elementary", ["Jefferson Junior High"]),
    ("Roosevelt K8", "Roosevelt K-8 School", ["Roosevelt High School"]),
    ("Roosevelt Sr. High", "Roosevelt High School", ["Roosevelt K-8 School"]),
    ("Mt. Vernon MS", "Mount Vernon Middle School", ["Mount Vernon High School"]),
    ("Mt Vernon High", "Mount Vernon High School", ["Mount Vernon Middle School"]),
    ("Ft. Hamilton HS", "Fort Hamilton High School", ["Hamilton Elementary"]),
    ("Oak Grove Early Learning Ctr", "Oak Grove Early Learning Center", ["Oak Grove Elementary"]),
    ("Oak Grove Elem", "Oak Grove Elementary", ["Oak Grove Early Learning Center"]),
    ("Main St Elementary", "Main Street Elementary", []),
    ("St. Paul Elementary", "Saint Paul Elementary", []),
    ("Intl Acad of Science", "International Academy of Science", []),
    ("Riverside Prep Academy", "Riverside Preparatory Academy", ["Riverside High School"]),
    ("Riverside HS", "Riverside High School", ["Riverside Preparatory Academy"]),
    ("El Camino Real HS", "El Camino Real High School", ["Camino Elementary"]),
    ("César Chávez Middle", "Cesar Chavez Middle School", ["Cesar Chavez High School"]),
    ("Cesar Chavez H.S.", "Cesar Chavez High School", ["Cesar Chavez Middle School"]),
    ("Kennedy SHS", "Kennedy Senior High", ["Kennedy Middle School"]),
    ("Kennedy M.S.", "Kennedy Middle School", ["Kennedy Senior High"]),
    ("G. W. Carver Elem", "George Washington Carver Elementary", []),
    ("Sunset Ridge Intermediate School", "Sunset Ridge Intermediate", ["Sunset Ridge Elementary"]),
    ("Northside Tech Ctr", "Northside Technology Center", ["Northside High School"]),
    ("Garfield Primary", "Garfield Primary School", []),
]


@pytest.fixture(scope="module")
def index() -> SuggestionIndex:
    return SuggestionIndex(EW_SCHOOLS)


@pytest.mark.parametrize(("classlink_name", "expected_first", "ranked_below"), RANKING_CASES)
def test_the_right_school_is_suggested_first_and_other_levels_below_it(
    index: SuggestionIndex, classlink_name: str, expected_first: str, ranked_below: list[str]
) -> None:
    suggestions = index.suggest(classlink_name, limit=len(EW_SCHOOLS))
    names = [suggestion.name for suggestion in suggestions]
    assert names[0] == expected_first
    for other in ranked_below:
        if other in names:
            assert names.index(other) > 0
            assert suggestions[names.index(other)].score < suggestions[0].score


def test_a_same_level_school_outranks_a_different_level_one_with_a_better_raw_name() -> None:
    ew = {"high": "Lincoln High School", "elementary": "Lincoln Park Elementary"}

    suggestions = suggest("Lincoln Elem", ew)

    assert [suggestion.ew_school_id for suggestion in suggestions] == ["elementary", "high"]


def test_suggestions_are_limited_and_scores_never_increase_down_the_list(index: SuggestionIndex) -> None:
    suggestions = index.suggest("Lincoln", limit=5)

    assert len(suggestions) <= 5
    assert all(0 <= suggestion.score <= 100 for suggestion in suggestions)
    scores = [suggestion.score for suggestion in suggestions]
    assert scores == sorted(scores, reverse=True)


def test_unrelated_names_are_not_suggested(index: SuggestionIndex) -> None:
    assert index.suggest("Zephyr Cove Montessori") == []


def test_excluded_ew_schools_are_not_suggested(index: SuggestionIndex) -> None:
    lincoln_elementary = NAME_TO_ID["Lincoln Elementary School"]

    suggestions = index.suggest("Lincoln Elem", exclude=frozenset({lincoln_elementary}))

    assert lincoln_elementary not in {suggestion.ew_school_id for suggestion in suggestions}
    assert suggestions[0].name == "Lincoln Park Elementary"


def test_suggest_for_one_school_matches_the_index() -> None:
    assert suggest("Washington HS", EW_SCHOOLS) == SuggestionIndex(EW_SCHOOLS).suggest("Washington HS")


@pytest.mark.parametrize(
    ("names", "same"),
    [
        (["Lincoln  Elementary School", "lincoln elementary school", "Lincoln Elementary School."], True),
        (["École Sainte-Thérèse", "ecole sainte therese", "ÉCOLE SAINTE THÉRÈSE"], True),
        (["St. Mary's Academy", "St Marys Academy", "ST. MARY’S ACADEMY"], True),
        (["Lincoln Elementary", "Lincoln Elem"], False),
        (["Saint Mary Academy", "St. Mary Academy"], False),
    ],
)
def test_normalised_names_fold_only_case_accents_punctuation_and_spaces(names: list[str], same: bool) -> None:
    assert (len({normalise_name(name) for name in names}) == 1) is same


@pytest.mark.parametrize(
    ("name", "words", "level"),
    [
        ("Main St Elementary", ("main", "street", "elementary"), Level.ELEMENTARY),
        ("St. Anne School", ("saint", "anne"), Level.OTHER),
        ("El Camino Real High", ("el", "camino", "real", "high"), Level.HIGH),
        ("Jefferson Jr. High", ("jefferson", "junior", "high"), Level.JUNIOR_HIGH),
        ("Washington Sr. High", ("washington", "senior", "high"), Level.HIGH),
        ("High Point Elem", ("high", "point", "elementary"), Level.ELEMENTARY),
        ("Lincoln K-8", ("lincoln", "k-8"), Level.K_8),
        ("Lincoln K12 School", ("lincoln", "k-12"), Level.K_12),
        ("Pre-K Center of the Valley", ("pre-k", "center", "valley"), Level.EARLY),
        ("Oak Early Learning Ctr", ("oak", "early", "learning", "center"), Level.EARLY),
        ("Mid Valley MS", ("mid", "valley", "middle"), Level.MIDDLE),
        ("The Academy", ("academy",), Level.OTHER),
    ],
)
def test_abbreviations_expand_and_the_level_is_read_from_the_name(
    name: str, words: tuple[str, ...], level: Level
) -> None:
    assert expand(name) == words
    assert school_level(name) == level


def test_auto_map_pairs_identical_names_that_are_unique_on_both_sides() -> None:
    classlink = {
        "cl-1": "Lincoln Elementary School.",
        "cl-2": "Twin Oaks School",
        "cl-3": "twin oaks school",
        "cl-4": "Garfield High",
        "cl-5": "Hoover Middle",
        "cl-6": "Lincoln HS",
    }
    ew = {
        "ew-1": "lincoln  elementary school",
        "ew-2": "Twin Oaks School",
        "ew-3": "Garfield High",
        "ew-4": "GARFIELD HIGH",
        "ew-5": "Hoover Middle",
        "ew-6": "Lincoln High School",
    }

    pairs = auto_map(classlink, ew, mapped_classlink_ids=[], mapped_ew_ids=[], blocked_classlink_ids=[])

    # Twin Oaks is ambiguous in ClassLink, Garfield in EW; abbreviations are never auto-mapped.
    assert pairs == [("cl-1", "ew-1"), ("cl-5", "ew-5")]


def test_auto_map_leaves_mapped_and_unmapped_by_an_admin_schools_alone() -> None:
    classlink = {"cl-1": "Lincoln Elementary", "cl-2": "Hoover Middle", "cl-3": "Garfield High"}
    ew = {"ew-1": "Lincoln Elementary", "ew-2": "Hoover Middle", "ew-3": "Garfield High"}

    pairs = auto_map(
        classlink,
        ew,
        mapped_classlink_ids=["cl-1"],
        mapped_ew_ids=["ew-1", "ew-3"],
        blocked_classlink_ids=["cl-2"],
    )

    assert pairs == []


def test_auto_map_uniqueness_counts_only_unmapped_schools() -> None:
    classlink = {"cl-1": "Lincoln Elementary", "cl-2": "Lincoln Elementary"}
    ew = {"ew-1": "Lincoln Elementary", "ew-2": "Lincoln Elementary"}

    pairs = auto_map(
        classlink, ew, mapped_classlink_ids=["cl-1"], mapped_ew_ids=["ew-1"], blocked_classlink_ids=[]
    )

    assert pairs == [("cl-2", "ew-2")]


def test_a_large_district_ranks_its_own_school_first() -> None:
    ew = {f"ew-{n}": f"School Number {n} Elementary" for n in range(2000)}
    ew["target"] = "Lincoln Elementary School"
    index = SuggestionIndex(ew)

    assert index.suggest("Lincoln Elem")[0].ew_school_id == "target"
