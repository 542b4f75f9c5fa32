"""Listing and full-text searching of the request log (``project.serving.list_requests``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lepton_desktop.core.errors import InvalidOptionError, NotFoundError
from lepton_desktop.core.project import Project
from lepton_desktop.core.serving.manager import MAX_LISTED, MAX_SEARCH_CHARS
from lepton_desktop.core.store import serving as serving_store
from tests.helpers import snapshot
from tests.request_log_factory import NEW, OLD, logged_project


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    with Project.open(logged_project(tmp_path / "log.lepton")) as opened:
        yield opened


def _ids(project: Project, **kwargs: object) -> list[str]:
    return [r.request_id for r in project.serving.list_requests(**kwargs)]  # type: ignore[arg-type]


def test_listing_is_newest_first_per_deployment_and_limited(project: Project) -> None:
    assert _ids(project, limit=3) == ["diab-b", "diab-slow", "diab-a"]
    assert _ids(project, deployment_id=OLD) == ["iris-c", "iris-bad", "iris-b", "iris-a"]
    assert _ids(project, deployment_id=OLD, limit=1) == ["iris-c"]
    assert len(_ids(project)) == 7


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("petal_width", ["iris-bad"]),  # error text
        ("timeout", ["diab-slow"]),
        ("504", ["diab-slow"]),  # status
        ("diabetes", ["diab-b", "diab-slow", "diab-a"]),  # model name
        ("bmi AND 72", ["diab-b"]),  # captured inputs
        ("setosa", ["iris-c", "iris-b", "iris-a"]),  # captured outputs
        ('"iris-bad"', ["iris-bad"]),  # request id, as a phrase
        ("iris NOT setosa", ["iris-bad"]),
        ("sepal* OR age", ["diab-b", "diab-slow", "diab-a", "iris-c", "iris-bad", "iris-b",
                           "iris-a"]),
        ("error: missing", ["iris-bad"]),  # one column
        ("nothing_like_this", []),
    ],
)
def test_search_finds_rows_by_what_they_hold(
    project: Project, search: str, expected: list[str]
) -> None:
    assert _ids(project, search=search) == expected


def test_search_within_one_deployment_and_limit(project: Project) -> None:
    assert _ids(project, search="sepal_length OR age", deployment_id=NEW) == [
        "diab-b", "diab-slow", "diab-a",
    ]  # fmt: skip
    assert _ids(project, search="sepal_length OR age", deployment_id=OLD, limit=2) == [
        "iris-c", "iris-bad",
    ]  # fmt: skip


def test_plain_words_are_quoted_prefixes_so_punctuation_is_text(project: Project) -> None:
    assert _ids(project, search="iris-b", plain_words=True) == ["iris-bad", "iris-b"]
    assert _ids(project, search="diab slow", plain_words=True) == ["diab-slow"]
    assert _ids(project, search='"missing', plain_words=True) == ["iris-bad"]
    assert _ids(project, search="NOT", plain_words=True) == []  # a word, not an operator
    assert _ids(project, search="   ", plain_words=True) == _ids(project)
    assert serving_store.words_query('a "b" c-d') == '"a"* """b"""* "c-d"*'


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"search": '"unclosed'}, InvalidOptionError, "unterminated string"),
        ({"search": "AND"}, InvalidOptionError, "fts5: syntax error"),
        ({"search": "colour: red"}, InvalidOptionError, "no such column: colour"),
        ({"search": "x" * (MAX_SEARCH_CHARS + 1)}, InvalidOptionError, "at most 1,000"),
        ({"limit": 0}, InvalidOptionError, "--limit 0: give a number from 1"),
        ({"limit": MAX_LISTED + 1}, InvalidOptionError, "--limit 100001"),
        ({"deployment_id": 9}, NotFoundError, "no deployment 9"),
    ],
)
def test_bad_searches_name_the_problem_and_change_nothing(
    project: Project, kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    before = snapshot(project.path)
    with pytest.raises(error, match=message):
        project.serving.list_requests(**kwargs)  # type: ignore[arg-type]
    assert snapshot(project.path) == before
