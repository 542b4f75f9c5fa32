"""Schemathesis against every route of the OpenAPI document, with and without a token.

The document (``/openapi.json``) is narrowed to the served models and describes every
answer a route can give, so schemathesis generates valid and invalid requests for each
operation and checks every answer: never a 5xx, a documented status, a documented
media type, the X-Request-ID header, and a body that conforms to its schema. A few
examples per operation and mode keep the run short; the checks run on every answer.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.serving_factory import copy_project, running, serving_project

__all__ = ["serving_project"]
pytestmark = pytest.mark.slow

TOKEN = "fuzz-token-of-24-chars!!"
#: Examples per operation and generation mode (positive, negative).
EXAMPLES = 6
OPEN = {"/v2/health/live", "/v2/health/ready", "/ping", "/health"}


@pytest.fixture(scope="module")
def project(serving_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(serving_project, tmp_path_factory.mktemp("fuzz"))


def _checks() -> list[Any]:
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    return [not_a_server_error, status_code_conformance, content_type_conformance,
            response_headers_conformance, response_schema_conformance]  # fmt: skip


def fuzz(
    url: str, headers: dict[str, str], document_headers: dict[str, str] | None = None,
    modes: tuple[str, ...] = ("POSITIVE", "NEGATIVE"),
) -> Counter[tuple[str, str, int]]:  # fmt: skip
    """Every operation of the server's document, in each generation mode, calling with
    ``headers``; the answers' ``(mode, path template, status)`` counted. A failed check
    raises."""
    import requests
    import schemathesis

    answers: Counter[tuple[str, str, int]] = Counter()
    with requests.Session() as session:
        schema = schemathesis.openapi.from_url(
            url + "/openapi.json", headers=document_headers or headers, timeout=30
        )
        for result in schema.get_all_operations():
            for mode in modes:
                mode_ = getattr(schemathesis.GenerationMode, mode)
                _run(result.ok(), mode_, url, headers, session, answers)
    return answers


def _run(
    operation: Any, mode: Any, url: str, headers: dict[str, str], session: Any,
    answers: Counter[tuple[str, str, int]],
) -> None:  # fmt: skip
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable

    checks = _checks()

    @settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
              derandomize=True, suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(operation.as_strategy(mode))
    def call(case: Any) -> None:
        response = case.call(base_url=url, session=session, headers=headers, timeout=30)
        answers[(mode.name, operation.path, response.status_code)] += 1
        case.validate_response(response, checks=checks, headers=headers)

    with contextlib.suppress(Unsatisfiable):  # nothing invalid to generate for it
        call()


@pytest.fixture(scope="module")
def open_server(project: Path) -> Iterator[Any]:
    with running(project, log=False) as runner:
        yield runner


@pytest.fixture(scope="module")
def guarded_server(project: Path) -> Iterator[Any]:
    with running(project, log=False, token=TOKEN, host="127.0.0.1") as runner:
        yield runner


def test_every_route_without_a_token(open_server: Any) -> None:
    answers = fuzz(open_server.url, {})
    statuses = {status for _, _, status in answers}
    print(f"{sum(answers.values())} fuzzed requests: {sorted(answers.items())}")
    assert statuses >= {200, 400, 404}  # the cases reached the models, valid and not
    reached = {path for _, path, _ in answers}
    assert reached >= {"/predict", "/invocations", "/v2/models/{model_name}/infer"}


def test_every_route_with_the_token(guarded_server: Any) -> None:
    answers = fuzz(guarded_server.url, {"Authorization": f"Bearer {TOKEN}"})
    assert {status for _, _, status in answers} >= {200, 400, 404}
    # Valid cases carry the token; invalid ones may leave it out (then a 401).
    assert not [key for key in answers if key[0] == "POSITIVE" and key[2] == 401]


def test_every_route_of_a_guarded_server_without_the_token(guarded_server: Any) -> None:
    import requests

    # The document itself needs the token: read it with it, then call without.
    assert requests.get(guarded_server.url + "/openapi.json", timeout=30).status_code == 401
    with_token = {"Authorization": f"Bearer {TOKEN}"}
    answers = fuzz(guarded_server.url, {}, with_token, modes=("POSITIVE",))
    assert {path for _, path, _ in answers} >= OPEN | {"/predict"}
    for _, path, status in answers:
        assert (status == 401) != (path in OPEN), (path, status)
