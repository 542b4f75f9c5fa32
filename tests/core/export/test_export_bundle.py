"""read_bundle trusts nothing: each kind of bad bundle is refused with a message naming it."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import stat
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from lepton_desktop.core.inference.bundle import InvalidBundleError, read_bundle
from lepton_desktop.core.project import Project
from tests.cli.test_cli import cli
from tests.export_factory import export_project  # noqa: F401


@pytest.fixture(scope="module")
def good(export_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    out = tmp_path_factory.mktemp("bundle") / "good.zip"
    with Project.open(export_project) as project:
        project.export("iris:1", "bundle", out)
    return out


def _entries(bundle: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(bundle) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _write(path: Path, entries: dict[str, bytes], extra: Callable | None = None) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns of duplicate names
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in entries.items():
                archive.writestr(name, data)
            if extra is not None:
                extra(archive)
    return path


def _rehashed(entries: dict[str, bytes]) -> dict[str, bytes]:
    """The entries with a manifest that matches them (so only the content is wrong)."""
    manifest = json.loads(entries["manifest.json"])
    manifest["files"] = {
        name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        for name, data in entries.items()
        if name != "manifest.json"
    }
    return entries | {"manifest.json": json.dumps(manifest).encode()}


def _refused(path: Path, message: str) -> None:
    with pytest.raises(InvalidBundleError, match=message):
        read_bundle(path)


def test_the_good_bundle_reads(good: Path) -> None:
    (parts,) = read_bundle(good)
    assert parts.ref == "iris:1" and parts.aliases == ("champion",)


def test_not_a_zip_and_a_missing_file(tmp_path: Path) -> None:
    text = tmp_path / "model.zip"
    text.write_text("name,value\n")
    _refused(text, "not a zip file")
    _refused(tmp_path / "absent.zip", "no such file")


def test_missing_manifest(good: Path, tmp_path: Path) -> None:
    entries = _entries(good)
    del entries["manifest.json"]
    _refused(_write(tmp_path / "b.zip", entries), "missing manifest.json")


def test_path_traversal_entry(good: Path, tmp_path: Path) -> None:
    entries = _entries(good) | {"models/0/../../evil.py": b"print('owned')"}
    _refused(_write(tmp_path / "b.zip", entries), r"'models/0/../../evil.py' leaves the bundle")


def test_absolute_path_entry(good: Path, tmp_path: Path) -> None:
    def absolute(archive: zipfile.ZipFile) -> None:
        archive.writestr(zipfile.ZipInfo("/etc/cron.d/evil"), b"* * * * * root true")

    _refused(_write(tmp_path / "b.zip", _entries(good), absolute), "is an absolute path")


def test_symbolic_link_entry(good: Path, tmp_path: Path) -> None:
    def link(archive: zipfile.ZipFile) -> None:
        info = zipfile.ZipInfo("models/0/MODEL_CARD.md")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, b"/etc/passwd")

    entries = _entries(good)
    del entries["models/0/MODEL_CARD.md"]
    _refused(_write(tmp_path / "b.zip", entries, link), "is a symbolic link")


def test_unexpected_and_duplicate_entries(good: Path, tmp_path: Path) -> None:
    extra = _rehashed(_entries(good) | {"models/0/loader.py": b"import os"})
    _refused(_write(tmp_path / "a.zip", extra), "unexpected entry 'models/0/loader.py'")

    def twice(archive: zipfile.ZipFile) -> None:
        archive.writestr("models/0/weights.pt", b"other weights")

    _refused(_write(tmp_path / "b.zip", _entries(good), twice), "appears twice")


def test_tampered_weights_fail_the_manifest_hash(good: Path, tmp_path: Path) -> None:
    entries = _entries(good)
    weights = bytearray(entries["models/0/weights.pt"])
    weights[-100] ^= 0xFF
    entries["models/0/weights.pt"] = bytes(weights)
    _refused(
        _write(tmp_path / "b.zip", entries),
        r"models/0/weights.pt does not match its SHA-256 in manifest.json \(damaged or "
        "tampered with\\)",
    )


def test_unlisted_and_missing_files(good: Path, tmp_path: Path) -> None:
    entries = _entries(good)
    manifest = json.loads(entries["manifest.json"])
    del manifest["files"]["models/0/model.onnx"]
    unlisted = entries | {"manifest.json": json.dumps(manifest).encode()}
    _refused(_write(tmp_path / "a.zip", unlisted), "model.onnx is not in manifest.json")
    entries.pop("models/0/model.onnx")
    _refused(_write(tmp_path / "b.zip", entries), "model.onnx is listed in manifest.json but")


def test_a_pickle_with_code_is_never_run(good: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))  # creates the marker file if ever run

    entries = _rehashed(
        _entries(good) | {"models/0/weights.pt": pickle.dumps(Payload(), protocol=2)}
    )
    _refused(_write(tmp_path / "b.zip", entries), "not a weights-only state dict")
    assert not marker.exists()


def test_weights_of_another_architecture(good: Path, tmp_path: Path) -> None:
    entries = _entries(good)
    document = json.loads(entries["models/0/model.json"])
    document["params"]["spec"]["hidden"] = [7]
    entries["models/0/model.json"] = json.dumps(document).encode()
    _refused(
        _write(tmp_path / "b.zip", _rehashed(entries)),
        "weights.pt does not fit the architecture in model.json",
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"models/0/model.json": b"{not json"}, "models/0/model.json is not valid JSON"),
        ({"models/0/model.json": b'{"name": "x"}'}, "field 'version' is missing"),
        ({"models/0/model.json": b"[1, 2]"}, "must be a JSON object"),
    ],
    ids=["broken", "incomplete", "not-an-object"],
)
def test_malformed_model_json(good: Path, tmp_path: Path, change: dict, message: str) -> None:
    entries = _rehashed(_entries(good) | change)
    _refused(_write(tmp_path / "b.zip", entries), message)


def test_manifest_of_a_newer_format_or_another_kind(good: Path, tmp_path: Path) -> None:
    entries = _entries(good)
    manifest = json.loads(entries["manifest.json"])
    newer = entries | {"manifest.json": json.dumps(manifest | {"format_version": 2}).encode()}
    _refused(_write(tmp_path / "a.zip", newer), "bundle format 2 comes from a newer Lepton")
    other = entries | {"manifest.json": b'{"format": "mlflow"}'}
    _refused(_write(tmp_path / "b.zip", other), "does not describe a Lepton bundle")


def test_zip_bomb_is_refused_by_its_declared_sizes(good: Path, tmp_path: Path) -> None:
    entries = _entries(good) | {"models/0/model.onnx": bytes(8 << 20)}  # 8 MiB -> ~8 KiB
    _refused(_write(tmp_path / "b.zip", _rehashed(entries)), r"expands \d+-fold \(a zip bomb")


def test_a_pipeline_step_this_release_does_not_know(good: Path, tmp_path: Path) -> None:
    """Refused when read, not reported ready and then failing every request."""
    entries = _entries(good)
    document = json.loads(entries["models/0/model.json"])
    document["pipeline"].append({"step": "quantile_clip", "columns": ["sepal_length"]})
    entries["models/0/model.json"] = json.dumps(document).encode()
    _refused(
        _write(tmp_path / "b.zip", _rehashed(entries)),
        r"models/0/model.json: preprocessing step \d+ is 'quantile_clip', which this release",
    )


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.999])
def test_a_truncated_bundle_is_called_truncated(good: Path, tmp_path: Path, keep: float) -> None:
    # Cut short, a bundle loses its zip directory; the one found instead is that of
    # weights.pt (a zip itself), whose "archive/data.pkl" was reported as unexpected.
    data = good.read_bytes()
    cut = tmp_path / "cut.zip"
    cut.write_bytes(data[: int(len(data) * keep)])
    _refused(cut, "cut.zip: the bundle is truncated or damaged")


def test_a_raw_pickle_is_refused_in_one_message_without_torch_warnings(
    good: Path, tmp_path: Path
) -> None:
    import torch

    state = torch.load(io.BytesIO(_entries(good)["models/0/weights.pt"]), weights_only=True)
    raw = pickle.dumps(state, protocol=4)  # torch warns of protocol 4 before refusing
    bundle = _write(tmp_path / "b.zip", _rehashed(_entries(good) | {"models/0/weights.pt": raw}))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        _refused(bundle, "not a weights-only state dict")
    assert [str(w.message) for w in seen] == []
    proc = cli("serve", bundle, "--port", "0", check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("error: b.zip: models/0/weights.pt is not a weights-only")


def test_a_huge_layer_in_model_json_is_refused_before_it_is_allocated(
    good: Path, tmp_path: Path
) -> None:
    entries = _entries(good)
    document = json.loads(entries["models/0/model.json"])
    document["params"]["spec"]["hidden"] = [1_000_000_000]  # 32 GB if allocated
    entries["models/0/model.json"] = json.dumps(document).encode()
    _refused(
        _write(tmp_path / "b.zip", _rehashed(entries)),
        r"model.json describes a model of 8,000,000,003 parameters \(29.8 GB\), but "
        r"weights.pt holds",
    )
