"""Bundles: a ``.zip`` holding everything needed to serve a model without its project.

Layout (format version 1)::

    manifest.json             format, format_version, models, sha256 + size per file
    models/0/model.json       the ModelParts fields except the weights, plus lineage
    models/0/weights.pt       the state_dict (torch.save; loaded with weights_only=True)
    models/0/MODEL_CARD.md    data, lineage, hyperparameters, metrics, how to serve
    models/0/model.onnx       the same model in ONNX (when it exported and checked)

One model per bundle today; the layout and :func:`read_bundle` take a list so a
bundle can hold several later.

A bundle comes from anywhere, so :func:`read_bundle` trusts nothing: only the entry
names above, no path traversal, absolute paths, links, encryption or duplicates,
sizes bounded before anything is decompressed (a zip bomb is refused by its declared
sizes; zipfile stops at the declared size and checks the CRC), every file's SHA-256
equal to the manifest's, JSON that has the expected shape, and weights loaded only
with ``weights_only=True`` into the architecture the JSON describes. The manifest
detects damage and tampering of single files; it is not a signature of the author
(whoever rewrites a file can rewrite the manifest): compare the bundle's own SHA-256,
reported by the export, to trust its origin.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import stat
import time
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lepton_desktop import __version__
from lepton_desktop.core.errors import LeptonError
from lepton_desktop.core.inference.predictor import ModelParts
from lepton_desktop.core.preprocessing.check import PipelineError, check_pipeline

FORMAT = "lepton-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MODEL_JSON, WEIGHTS, CARD, ONNX = "model.json", "weights.pt", "MODEL_CARD.md", "model.onnx"
#: Entry names a bundle may hold (besides the manifest).
_ENTRY = re.compile(r"models/(\d{1,3})/(model\.json|weights\.pt|MODEL_CARD\.md|model\.onnx)")
#: Models per bundle, entries per bundle.
MAX_MODELS = 64
MAX_ENTRIES = 1 + 4 * MAX_MODELS
#: Size limits (uncompressed): the text entries, one weights or ONNX file, the total.
MAX_TEXT_BYTES = 64 << 20
MAX_BINARY_BYTES = 4 << 30
MAX_TOTAL_BYTES = 8 << 30
#: A larger entry compressed more than this is a zip bomb (weights compress ~1.1:1,
#: JSON ~10:1; a bomb ~1000:1).
MAX_RATIO = 200
_TASKS = ("classification", "regression", "forecasting")
_ARCHS = ("mlp", "cnn", "rnn")


class InvalidBundleError(LeptonError):
    """The file is not a bundle Lepton can trust; the message names the problem."""


# -- writing -----------------------------------------------------------------------------


def model_document(parts: ModelParts, story: Mapping[str, Any]) -> dict[str, Any]:
    """``model.json``: every ModelParts field but the weights, and the lineage."""
    return {
        "name": parts.name,
        "version": parts.version,
        "arch": parts.arch,
        "task": parts.task,
        "params": parts.params,
        "pipeline": parts.pipeline,
        "signature": parts.signature,
        "metrics": parts.metrics,
        "aliases": list(parts.aliases),
        "lineage": dict(story),
        "lepton_version": __version__,
    }


def write_bundle(path: Path, models: list[tuple[ModelParts, dict[str, bytes]]]) -> str:
    """Write a bundle of ``models`` (each: its parts and its files by name) to ``path``.

    Returns:
        The SHA-256 of the written file.
    """
    files: dict[str, bytes] = {}
    listed = []
    for index, (parts, entries) in enumerate(models):
        folder = f"models/{index}/"
        files |= {folder + name: data for name, data in entries.items()}
        listed.append({"path": folder, "name": parts.name, "version": parts.version})
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": time.time(),
        "lepton_version": __version__,
        "models": listed,
        "files": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
            for name, data in files.items()
        },
    }
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(MANIFEST, json.dumps(manifest, indent=2), zipfile.ZIP_DEFLATED)
        for name, data in files.items():
            binary = name.endswith((WEIGHTS, ONNX))  # floats barely compress: store them
            archive.writestr(name, data, zipfile.ZIP_STORED if binary else zipfile.ZIP_DEFLATED)
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


# -- reading -----------------------------------------------------------------------------


def read_bundle(path: Path | str) -> list[ModelParts]:
    """The models of the bundle at ``path``, after every check in the module docstring.

    Raises:
        InvalidBundleError: the first problem found, named.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidBundleError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        if _starts_like_a_zip(path):
            raise InvalidBundleError(_truncated(path.name))
        raise InvalidBundleError(f"{path}: not a zip file (a bundle is a .zip made by export)")
    try:
        with zipfile.ZipFile(path) as archive:
            _check_directory_is_the_files(archive, path.name)
            return _read(archive, path.name)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise InvalidBundleError(f"{path.name}: damaged zip file ({exc})") from None


def _starts_like_a_zip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == b"PK\x03\x04"


def _truncated(label: str) -> str:
    return (
        f"{label}: the bundle is truncated or damaged (the zip directory at its end is "
        "missing); copy or export it again"
    )


def _check_directory_is_the_files(archive: zipfile.ZipFile, label: str) -> None:
    # A bundle cut short loses the zip directory at its end; zipfile then finds the
    # last directory left in the file, that of weights.pt (itself a zip, stored as it
    # is), and lists ITS entries ("archive/data.pkl"). A bundle's own first entry
    # starts the file, so a directory whose entries start later is not the bundle's.
    infos = archive.infolist()
    if infos and min(info.header_offset for info in infos) > 0:
        raise InvalidBundleError(_truncated(label))


def _read(archive: zipfile.ZipFile, label: str) -> list[ModelParts]:
    entries = _checked_entries(archive, label)
    if MANIFEST not in entries:
        raise InvalidBundleError(f"{label}: missing {MANIFEST}; not a Lepton bundle")
    manifest = _manifest(_json(archive, entries[MANIFEST], label), label)
    contents = _verified_files(archive, entries, manifest, label)
    return [_model(contents, entry, label) for entry in manifest["models"]]


def _checked_entries(archive: zipfile.ZipFile, label: str) -> dict[str, zipfile.ZipInfo]:
    infos = archive.infolist()
    if len(infos) > MAX_ENTRIES:
        raise InvalidBundleError(
            f"{label}: {len(infos)} entries; a bundle holds at most {MAX_ENTRIES}"
        )
    entries: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        _check_name(info, label)
        if info.filename in entries:
            raise InvalidBundleError(f"{label}: entry {info.filename!r} appears twice")
        _check_size(info, label)
        entries[info.filename] = info
    total = sum(i.file_size for i in infos)
    if total > MAX_TOTAL_BYTES:
        raise InvalidBundleError(
            f"{label}: {total:,} bytes uncompressed; the limit is {MAX_TOTAL_BYTES:,}"
        )
    return entries


def _check_name(info: zipfile.ZipInfo, label: str) -> None:
    name = info.filename
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        raise InvalidBundleError(f"{label}: entry {name!r} is an absolute path; refused")
    if ".." in re.split(r"[/\\]", name):
        raise InvalidBundleError(
            f"{label}: entry {name!r} leaves the bundle (path traversal); refused"
        )
    if stat.S_ISLNK(info.external_attr >> 16):
        raise InvalidBundleError(f"{label}: entry {name!r} is a symbolic link; refused")
    if info.flag_bits & 0x1:
        raise InvalidBundleError(f"{label}: entry {name!r} is encrypted; refused")
    if name != MANIFEST and not _ENTRY.fullmatch(name):
        raise InvalidBundleError(
            f"{label}: unexpected entry {name!r}; a bundle holds only "
            f"{MANIFEST} and models/N/{{{MODEL_JSON}, {WEIGHTS}, {CARD}, "
            f"{ONNX}}}"
        )
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise InvalidBundleError(f"{label}: entry {name!r} uses an unsupported compression")


def _check_size(info: zipfile.ZipInfo, label: str) -> None:
    limit = MAX_BINARY_BYTES if info.filename.endswith((WEIGHTS, ONNX)) else MAX_TEXT_BYTES
    if info.file_size > limit:
        raise InvalidBundleError(
            f"{label}: entry {info.filename!r} is {info.file_size:,} bytes; the limit is {limit:,}"
        )
    if info.file_size > (1 << 20) and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        raise InvalidBundleError(
            f"{label}: entry {info.filename!r} expands "
            f"{info.file_size // max(info.compress_size, 1)}-fold (a zip "
            "bomb?); refused"
        )


def _bytes(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    with archive.open(info) as handle:
        return handle.read(info.file_size + 1)  # never more than declared (and checked)


def _json(archive: zipfile.ZipFile, info: zipfile.ZipInfo, label: str) -> Any:
    return _parse_json(_bytes(archive, info), info.filename, label)


def _parse_json(data: bytes, name: str, label: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidBundleError(f"{label}: {name} is not valid JSON ({exc})") from None


def _manifest(document: Any, label: str) -> dict[str, Any]:
    where = f"{label}: {MANIFEST}"
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise InvalidBundleError(f"{where} does not describe a Lepton bundle")
    version = document.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise InvalidBundleError(f"{where}: format_version must be a positive integer")
    if version > FORMAT_VERSION:
        raise InvalidBundleError(
            f"{where}: bundle format {version} comes from a newer Lepton "
            f"Desktop; this one reads format {FORMAT_VERSION}"
        )
    files, models = document.get("files"), document.get("models")
    if not isinstance(files, dict) or not all(_is_digest(v) for v in files.values()):
        raise InvalidBundleError(f"{where}: 'files' must map names to sha256 and bytes")
    if not isinstance(models, list) or not models or len(models) > MAX_MODELS:
        raise InvalidBundleError(f"{where}: 'models' must list 1 to {MAX_MODELS} models")
    for entry in models:
        if not isinstance(entry, dict) or not re.fullmatch(
            r"models/\d{1,3}/", str(entry.get("path"))
        ):
            raise InvalidBundleError(f"{where}: each model needs a 'path' like models/0/")
    return document


def _is_digest(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("sha256"), str)
        and re.fullmatch(r"[0-9a-f]{64}", value["sha256"]) is not None
        and isinstance(value.get("bytes"), int)
    )


def _verified_files(
    archive: zipfile.ZipFile,
    entries: dict[str, zipfile.ZipInfo],
    manifest: dict[str, Any],
    label: str,
) -> dict[str, bytes]:
    listed: dict[str, dict[str, Any]] = manifest["files"]
    unlisted = sorted(set(entries) - set(listed) - {MANIFEST})
    if unlisted:
        raise InvalidBundleError(f"{label}: {unlisted[0]} is not in {MANIFEST}; refused")
    absent = sorted(set(listed) - set(entries))
    if absent:
        raise InvalidBundleError(f"{label}: {absent[0]} is listed in {MANIFEST} but missing")
    contents = {}
    for name, digest in listed.items():
        data = _bytes(archive, entries[name])
        if len(data) != digest["bytes"] or hashlib.sha256(data).hexdigest() != digest["sha256"]:
            raise InvalidBundleError(
                f"{label}: {name} does not match its SHA-256 in "
                f"{MANIFEST} (damaged or tampered with); refused"
            )
        contents[name] = data
    return contents


def _model(contents: dict[str, bytes], entry: dict[str, Any], label: str) -> ModelParts:
    folder = entry["path"]
    for needed in (MODEL_JSON, WEIGHTS):
        if folder + needed not in contents:
            raise InvalidBundleError(f"{label}: {folder}{needed} is missing")
    document = _parse_json(contents[folder + MODEL_JSON], folder + MODEL_JSON, label)
    parts = _parts(document, contents[folder + WEIGHTS], f"{label}: {folder}{MODEL_JSON}")
    _check_weights(parts, f"{label}: {folder}{WEIGHTS}", f"{label}: {folder}{MODEL_JSON}")
    return parts


#: model.json's fields and their JSON types.
_FIELDS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "version": int,
    "arch": str,
    "task": str,
    "params": dict,
    "pipeline": list,
    "signature": dict,
    "metrics": dict,
    "aliases": list,
}


def _parts(document: Any, weights: bytes, where: str) -> ModelParts:
    if not isinstance(document, dict):
        raise InvalidBundleError(f"{where} must be a JSON object")
    for field, kind in _FIELDS.items():
        if not isinstance(document.get(field), kind) or isinstance(document.get(field), bool):
            raise InvalidBundleError(
                f"{where}: field {field!r} is missing or not a {getattr(kind, '__name__', kind)}"
            )
    spec = document["params"].get("spec")
    if not isinstance(spec, dict) or not isinstance(spec.get("input_shape"), list):
        raise InvalidBundleError(f"{where}: params.spec must describe the architecture")
    if document["arch"] not in _ARCHS or document["task"] not in _TASKS:
        raise InvalidBundleError(
            f"{where}: unknown arch {document['arch']!r} or task {document['task']!r}"
        )
    if not all(isinstance(s, dict) for s in document["pipeline"]):
        raise InvalidBundleError(f"{where}: pipeline must be a list of steps (objects)")
    try:  # refused here, not reported ready and then failing every request
        check_pipeline(document["pipeline"])
    except PipelineError as exc:
        raise InvalidBundleError(f"{where}: {exc}") from None
    return ModelParts(
        name=document["name"],
        version=document["version"],
        arch=document["arch"],
        task=document["task"],
        params=document["params"],
        pipeline=document["pipeline"],
        signature=document["signature"],
        weights=weights,
        metrics=document["metrics"],
        aliases=tuple(str(a) for a in document["aliases"]),
    )


def _check_model_size(parts: ModelParts, where: str) -> None:
    # Before the model is allocated: the architecture model.json describes is sized
    # from its numbers alone. It must not promise more parameters than weights.pt
    # holds (a huge layer with small weights would be allocated, then refused), and
    # the model must fit in this machine's memory.
    from lepton_desktop.core.system.memory import check_fits, format_bytes
    from lepton_desktop.core.training.models import BYTES_PER_VALUE, footprint

    try:
        size = footprint(parts.params["spec"])
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise InvalidBundleError(
            f"{where}: params.spec does not describe a model ({exc}); refused"
        ) from None
    needed = size.parameters * BYTES_PER_VALUE
    if needed > len(parts.weights):
        raise InvalidBundleError(
            f"{where} describes a model of {size.parameters:,} parameters "
            f"({format_bytes(needed)}), but {WEIGHTS} holds {format_bytes(len(parts.weights))}; "
            "refused"
        )
    try:
        check_fits(size.inference_bytes(), f"{where}: its model", "it cannot be served here")
    except LeptonError as exc:
        raise InvalidBundleError(str(exc)) from None


def _check_weights(parts: ModelParts, where: str, document: str) -> None:
    # The same steps as Predictor: a restricted unpickler (weights_only) and a strict
    # load into the architecture model.json describes; nothing else is executed.
    # (torch.load directly, as Predictor does: training.loop would import pandas, a
    # second that `serve bundle.zip` does not need to spend.)
    import pickle

    import torch

    from lepton_desktop.core.training.models import build

    try:
        with warnings.catch_warnings():
            # torch warns of a raw pickle's protocol before refusing it: the one line
            # below says all there is to say.
            warnings.simplefilter("ignore")
            state = torch.load(io.BytesIO(parts.weights), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, ValueError, EOFError, OSError):
        # (torch's own message advises loading the file unsafely: not repeated here)
        raise InvalidBundleError(
            f"{where} is not a weights-only state dict (torch.load with weights_only=True "
            "refused it: it holds code, other objects or is damaged); refused"
        ) from None
    if not isinstance(state, dict):
        raise InvalidBundleError(f"{where} holds no state dict; refused")
    _check_model_size(parts, document)
    try:
        build(parts.params["spec"]).load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
        raise InvalidBundleError(
            f"{where} does not fit the architecture in model.json "
            f"({str(exc).splitlines()[0][:200]})"
        ) from None
