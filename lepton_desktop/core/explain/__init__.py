"""Explaining single predictions with Captum (see :mod:`.explainer`).

:func:`explain` is what ``Project.explain`` and ``lepton-desktop explain`` call: it
resolves the model version (an archived one is refused), finds the input (a test row,
a raw record, an image file or a logged request's captured inputs) and explains it.
Nothing is written to the project.

Loading a version to explain it (its weights, its test rows, the encoded training mean)
takes 0.4-0.7 s on a 4,000-row table, 20 times the explanation itself; a ``Project``
keeps the last :data:`CACHED_VERSIONS` loaded (a version's weights and data never
change; archiving is checked on every call).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from lepton_desktop.core.errors import InvalidOptionError, NotFoundError
from lepton_desktop.core.explain.data import NoTrainingDataError, RowSet, load_rows
from lepton_desktop.core.explain.explainer import Explainer, Explanation
from lepton_desktop.core.explain.methods import METHODS, check_method
from lepton_desktop.core.inference.predictor import ModelParts, Predictor
from lepton_desktop.core.store import models as model_store
from lepton_desktop.core.store import serving as serving_store

if TYPE_CHECKING:
    from lepton_desktop.core.context import ProjectContext
    from lepton_desktop.core.entities import ModelVersion

#: Test rows predicted per forward pass (bounded memory for a large test split).
PREDICT_BATCH = 256
#: An image file larger than this is refused before it is read.
MAX_IMAGE_BYTES = 32 * 1024 * 1024
#: Versions a Project keeps loaded for explaining (the most recently explained).
CACHED_VERSIONS = 4

#: Loaded versions by id: their test rows (None until needed) and explainer.
Loaded = dict[int, tuple[RowSet | None, Explainer]]

__all__ = ["METHODS", "Explainer", "Explanation", "explain", "explainer_for", "test_rows"]


def explain(
    ctx: ProjectContext,
    model: str,
    *,
    row: int | None = None,
    record: dict[str, Any] | None = None,
    image: Path | str | None = None,
    request_id: str | None = None,
    request_row: int = 0,
    method: str = "ig",
    loaded: Loaded | None = None,
) -> Explanation:
    """Explain ``model``'s answer to one input; exactly one of the inputs is given.

    Args:
        ctx: the open project.
        model: ``name``, ``name:N`` or ``name@alias``.
        row: a test-split row (the N-th table row, image or window of the series).
        record: a raw record, as ``/predict`` takes it.
        image: an image file (image models).
        request_id: a logged request whose captured inputs are explained
            (``request_row``: which of its records).
        method: ig (Integrated Gradients, the default), gradcam (images) or occlusion.
        loaded: the versions kept loaded between calls (see the module docstring).

    Raises:
        InvalidOptionError: no input or several, an unknown method, an archived model,
            a row out of range, a request logged without its inputs.
        NotFoundError: no such model version or request.
        InvalidInputError: an input the model cannot read (the message names why).
    """
    given = [n for n, v in (("row", row), ("record", record), ("image", image),
                            ("request", request_id)) if v is not None]  # fmt: skip
    if len(given) != 1:
        got = ", ".join(given) or "none"
        raise InvalidOptionError(
            f"give one input to explain: a row, a record, an image or a request (got {got})"
        )
    version = _active_version(ctx, model)
    check_method(method, _kind(version))
    if image is not None and _kind(version) != "images":
        raise InvalidOptionError(f"{version.ref} reads {_kind(version)} data, not images: "
                                 "give a row or a record")  # fmt: skip
    rows, explainer = _load(ctx, version, loaded, needed=row is not None)
    if row is not None:
        assert rows is not None
        source: Any = rows.record(row)
    elif record is not None:
        source = record
    elif image is not None:
        source = {"image": _read_image(Path(image))}
    else:
        source = _logged_record(ctx, str(request_id), request_row)
    return explainer.explain(source, method)


def explainer_for(
    ctx: ProjectContext, version: ModelVersion, rows: RowSet | None = None
) -> Explainer:
    """A loaded explainer of ``version`` (tables: baseline from its training rows)."""
    predictor = Predictor(
        ModelParts.from_version(version, model_store.weights(ctx.conn, version.id))
    )
    if predictor.kind == "tabular" and rows is None:
        rows = _rows_or_none(ctx, version, needed=False)
    return Explainer.with_training_rows(predictor, rows.train_records if rows else [])


def test_rows(ctx: ProjectContext, model: str) -> RowSet:
    """The test rows of ``model`` as raw records, with their true answers."""
    return load_rows(ctx, _active_version(ctx, model))


def predicted_test_rows(
    ctx: ProjectContext, model: str, loaded: Loaded | None = None
) -> tuple[RowSet, list[Any], Explainer]:
    """:func:`test_rows`, the model's answer (a label or a value) to each, and an
    explainer of the version loaded once (``explainer.explain(rows.record(n), method)``
    explains row ``n`` as ``explain(..., row=n)`` does)."""
    rows_or_none, explainer = _load(ctx, _active_version(ctx, model), loaded, needed=True)
    assert rows_or_none is not None  # needed: loaded or NoTrainingDataError
    rows = rows_or_none
    answers: list[Any] = []
    for start in range(0, len(rows.records), PREDICT_BATCH):
        for answer in explainer.predictor.predict(rows.records[start : start + PREDICT_BATCH]):
            answers.append(answer.get("label", answer.get("value")))
    return rows, answers, explainer


def _load(
    ctx: ProjectContext, version: ModelVersion, loaded: Loaded | None, *, needed: bool
) -> tuple[RowSet | None, Explainer]:
    """The version's rows (when ``needed``, or a table's) and explainer, from ``loaded``
    when it has them; ``loaded`` keeps the :data:`CACHED_VERSIONS` used last."""
    entry = loaded.pop(version.id, None) if loaded is not None else None
    if entry is None or (needed and entry[0] is None):
        rows = _rows_or_none(ctx, version, needed=needed)
        entry = (rows, explainer_for(ctx, version, rows))
    if loaded is not None:
        loaded[version.id] = entry  # the most recent last
        while len(loaded) > CACHED_VERSIONS:
            del loaded[next(iter(loaded))]
    return entry


def _active_version(ctx: ProjectContext, model: str) -> ModelVersion:
    version = model_store.resolve(ctx.conn, model)
    if version.archived:
        raise InvalidOptionError(f"model {version.ref} is archived; unarchive it to explain it")
    return version


def _kind(version: ModelVersion) -> str:
    steps = {s.get("step") for s in version.pipeline}
    return "images" if "image" in steps else "timeseries" if "window" in steps else "tabular"


def _rows_or_none(ctx: ProjectContext, version: ModelVersion, *, needed: bool) -> RowSet | None:
    if not needed and _kind(version) != "tabular":
        return None
    try:
        return load_rows(ctx, version)
    except NoTrainingDataError:
        if needed:
            raise
        return None


def _read_image(path: Path) -> bytes:
    if not path.is_file():
        raise InvalidOptionError(f"{path}: no such image file")
    size = path.stat().st_size
    if size > MAX_IMAGE_BYTES:
        raise InvalidOptionError(
            f"{path}: {size:,} bytes is larger than an image explained here may be "
            f"({MAX_IMAGE_BYTES:,})"
        )
    return path.read_bytes()


def _logged_record(ctx: ProjectContext, request_id: str, row: int) -> Any:
    logged = serving_store.find_request(ctx.conn, request_id)
    if logged is None:
        raise NotFoundError(f"no logged request with id {request_id!r}")
    if logged.inputs is None:
        raise InvalidOptionError(
            f"request {request_id} was logged without its inputs (its server ran with "
            "--no-capture): there is nothing to explain"
        )
    records = logged.inputs.get("records") if isinstance(logged.inputs, dict) else logged.inputs
    if not isinstance(records, list) or not records:
        raise InvalidOptionError(
            f"request {request_id} ({logged.path}) captured no records to explain; "
            "explain a request to /predict or /explain"
        )
    if not 0 <= row < len(records):
        raise InvalidOptionError(f"request {request_id} had {len(records)} records; "
                                 f"row {row} is not one")  # fmt: skip
    return records[row]
