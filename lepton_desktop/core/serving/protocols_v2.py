"""KServe V2 / Open Inference Protocol, with Triton's binary tensor extension.

Inputs. A model takes EITHER one tensor per raw column (the columns of the dataset,
``shape [N]`` or ``[N, 1]``; numbers as FP32/FP64/INT*, text as BYTES; an image model
takes ``image`` as BYTES ``[N]`` of encoded files; a forecaster takes its column as
FP32 ``[N, window]``), to which the stored preprocessing is applied, OR one tensor
named ``input``: already-preprocessed FP32 features ``[N, *input_shape]``, what the
exported ONNX / Triton model takes, so one client works against both servers.

Outputs. Classification: ``label`` (BYTES ``[N]``) and ``probabilities`` (FP32
``[N, C]``, classes in the order of the metadata's ``classes``); regression and
forecasting: ``value`` (FP32 ``[N]``, in the target's units).

Binary extension (``tritonclient.http`` uses it by default): the body is a JSON header
of ``Inference-Header-Content-Length`` bytes followed by the raw tensors of the
inputs whose ``parameters.binary_data_size`` is set, in order; outputs come back the
same way when the request asks (``outputs[].parameters.binary_data`` or the request's
``parameters.binary_data_output``). Numbers are little-endian; a BYTES element is a
4-byte little-endian length followed by its bytes.
"""

from __future__ import annotations

import dataclasses
import math
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson

from lepton_desktop.core.inference.predictor import (
    InvalidInputError,
    Predictor,
    parse_json,
    softmax,
)

#: V2 datatype -> numpy dtype (little-endian); BYTES is handled apart.
NUMPY_OF: dict[str, np.dtype] = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
PREPROCESSED_INPUT = "input"
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


@dataclasses.dataclass
class Tensor:
    """One input tensor of a request."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    array: np.ndarray  # numeric, or an object array of bytes for BYTES


@dataclasses.dataclass
class InferRequest:
    """A parsed inference request."""

    id: str | None
    inputs: list[Tensor]
    outputs: dict[str, bool] | None  # requested output -> as binary; None: all
    binary_output: bool  # parameters.binary_data_output


def parse_infer(body: bytes, header_length: str | None) -> InferRequest:
    """Parse a JSON or binary-extension request body.

    Raises:
        InvalidInputError: malformed JSON, a bad header length, a tensor whose data
            does not match its shape or datatype; the message names the tensor.
    """
    json_part, binary = _split(body, header_length)
    header = parse_json(json_part)
    if not isinstance(header, dict):
        raise InvalidInputError('the request must be a JSON object with "inputs"')
    inputs = header.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInputError('"inputs" must be a non-empty list of tensors')
    offset = 0
    tensors = []
    for i, spec in enumerate(inputs):
        tensor, offset = _tensor(spec, i, binary, offset)
        tensors.append(tensor)
    if offset != len(binary):
        raise InvalidInputError(
            f"the body has {len(binary) - offset} bytes of binary data no input claims"
        )
    parameters = _parameters(header.get("parameters"), "the request")
    request_id = header.get("id")
    return InferRequest(
        id=str(request_id) if request_id is not None else None,
        inputs=tensors,
        outputs=_requested_outputs(header.get("outputs")),
        binary_output=bool(parameters.get("binary_data_output", False)),
    )


def _split(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return body, b""
    try:
        length = int(header_length)
    except ValueError:
        raise InvalidInputError(
            f"Inference-Header-Content-Length {header_length!r} is not a number"
        ) from None
    if not 0 < length <= len(body):
        raise InvalidInputError(
            f"Inference-Header-Content-Length {length} does not fit a body of {len(body)} bytes"
        )
    return body[:length], body[length:]


def _parameters(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInputError(f'"parameters" of {where} must be an object')
    return value


def _tensor(spec: Any, index: int, binary: bytes, offset: int) -> tuple[Tensor, int]:
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise InvalidInputError(f'input {index} must be an object with a "name"')
    name = spec["name"]
    datatype = spec.get("datatype")
    if datatype != "BYTES" and datatype not in NUMPY_OF:
        raise InvalidInputError(
            f"input {name!r}: unknown datatype {datatype!r} (use FP32, FP64, INT64, BYTES, ...)"
        )
    shape = _shape(spec.get("shape"), name)
    count = math.prod(shape)
    parameters = _parameters(spec.get("parameters"), f"input {name!r}")
    size = parameters.get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= len(binary):
            raise InvalidInputError(f"input {name!r}: bad binary_data_size {size!r}")
        if offset + size > len(binary):
            raise InvalidInputError(f"input {name!r}: the body ends inside its binary data")
        raw = binary[offset : offset + size]
        array = _from_binary(raw, datatype, count, name)
        offset += size
    elif "data" in spec:
        array = _from_json(spec["data"], datatype, count, name)
    else:
        raise InvalidInputError(f'input {name!r} has neither "data" nor binary data')
    return Tensor(name, datatype, shape, array.reshape(shape)), offset


def _shape(value: Any, name: str) -> tuple[int, ...]:
    ok = isinstance(value, list) and 0 < len(value) <= 8
    ok = ok and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value)
    if not ok:
        raise InvalidInputError(f'input {name!r}: "shape" must be a list of sizes >= 0')
    if math.prod(value) > 10_000_000:
        raise InvalidInputError(f"input {name!r}: shape {value} is too large")
    return tuple(value)


def _from_binary(raw: bytes, datatype: str, count: int, name: str) -> np.ndarray:
    if datatype == "BYTES":
        items = []
        offset = 0
        while offset < len(raw):
            if offset + 4 > len(raw):
                raise InvalidInputError(f"input {name!r}: a BYTES element is cut short")
            (length,) = struct.unpack_from("<I", raw, offset)
            offset += 4
            if offset + length > len(raw):
                raise InvalidInputError(f"input {name!r}: a BYTES element is cut short")
            items.append(raw[offset : offset + length])
            offset += length
        array = np.empty(len(items), dtype=object)
        array[:] = items
    else:
        dtype = NUMPY_OF[datatype]
        if len(raw) != count * dtype.itemsize:
            raise InvalidInputError(
                f"input {name!r}: {len(raw)} bytes of binary data; shape and {datatype} "
                f"need {count * dtype.itemsize}"
            )
        array = np.frombuffer(raw, dtype=dtype)
    if array.size != count:
        raise InvalidInputError(f"input {name!r}: {array.size} values do not fill its shape")
    return array


def _from_json(data: Any, datatype: str, count: int, name: str) -> np.ndarray:
    if not isinstance(data, list):
        data = [data]
    try:
        if datatype == "BYTES":
            flat = np.asarray(data, dtype=object).ravel()
            if any(not isinstance(v, str | int | float) for v in flat):
                raise ValueError("BYTES data must be strings")
            array = flat
        else:
            array = np.asarray(data, dtype=NUMPY_OF[datatype]).ravel()
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInputError(f"input {name!r}: data is not {datatype} ({exc})") from None
    if array.size != count:
        raise InvalidInputError(
            f"input {name!r}: {array.size} values do not match its shape ({count} needed)"
        )
    return array


def _requested_outputs(value: Any) -> dict[str, bool] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise InvalidInputError('"outputs" must be a list')
    requested = {}
    for i, spec in enumerate(value):
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise InvalidInputError(f'output {i} must be an object with a "name"')
        parameters = _parameters(spec.get("parameters"), f"output {spec['name']!r}")
        requested[spec["name"]] = bool(parameters.get("binary_data", False))
    return requested


# -- tensors -> model inputs ----------------------------------------------------------


def model_inputs(
    predictor: Predictor, tensors: list[Tensor]
) -> tuple[np.ndarray, list[dict[str, Any]] | None]:
    """The model's input array, and the raw records when raw columns were sent.

    Raises:
        InvalidInputError: an unknown input, a wrong shape or datatype, a missing
            feature; the message names it.
    """
    by_name = {t.name: t for t in tensors}
    if len(by_name) != len(tensors):
        raise InvalidInputError("an input tensor is given twice")
    raw_names = {r["name"] for r in predictor.raw_inputs}
    if PREPROCESSED_INPUT in by_name and PREPROCESSED_INPUT not in raw_names:
        if len(by_name) > 1:
            raise InvalidInputError(
                'send either the raw columns or one "input" tensor of features, not both'
            )
        tensor = by_name[PREPROCESSED_INPUT]
        if tensor.datatype == "BYTES":
            raise InvalidInputError("input 'input': features must be numbers (FP32), not BYTES")
        return predictor.check_inputs(tensor.array), None
    unknown = sorted(set(by_name) - raw_names)
    if unknown:
        raise InvalidInputError(
            f"unknown input {unknown[0]!r}; this model takes "
            f"{', '.join(sorted(raw_names))} (or one {PREPROCESSED_INPUT!r} tensor)"
        )
    records = _records(predictor, tensors)
    return predictor.encode(records), records


def _records(predictor: Predictor, tensors: list[Tensor]) -> list[dict[str, Any]]:
    if predictor.kind == "timeseries":
        columns = {t.name: _windows(t) for t in tensors}
    else:
        columns = {t.name: _column(t) for t in tensors}
    rows = {len(values) for values in columns.values()}
    if len(rows) > 1:
        sizes = ", ".join(f"{n}: {len(v)}" for n, v in columns.items())
        raise InvalidInputError(f"the input tensors have different numbers of rows ({sizes})")
    count = rows.pop()
    names = list(columns)
    return [{name: columns[name][i] for name in names} for i in range(count)]


def _column(tensor: Tensor) -> list[Any]:
    array = tensor.array
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise InvalidInputError(
            f"input {tensor.name!r}: shape {list(tensor.shape)}; a column is [N] or [N, 1]"
        )
    if tensor.datatype == "BYTES":
        return [_text(v) for v in array]
    return array.tolist()


def _windows(tensor: Tensor) -> list[Any]:
    if tensor.datatype == "BYTES" or tensor.array.ndim not in (2, 3):
        raise InvalidInputError(
            f"input {tensor.name!r}: send the last values as numbers, shape [N, window]"
        )
    return [row.reshape(-1).tolist() for row in tensor.array]


def _text(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value  # an encoded image stays bytes
    return value


# -- outputs -> response --------------------------------------------------------------


def output_specs(predictor: Predictor) -> list[dict[str, Any]]:
    """The model's output tensors: name, datatype, shape."""
    if predictor.classes:
        return [
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(predictor.classes)]},
        ]
    return [{"name": "value", "datatype": "FP32", "shape": [-1]}]


def output_arrays(predictor: Predictor, outputs: np.ndarray) -> dict[str, np.ndarray]:
    """Raw model outputs -> the named output tensors."""
    if predictor.classes:
        probabilities = softmax(outputs).astype(np.float32)
        labels = np.asarray(predictor.classes, dtype=object)[probabilities.argmax(axis=1)]
        return {"label": labels, "probabilities": probabilities}
    return {"value": predictor.values(outputs).astype(np.float32)}


def infer_response(
    predictor: Predictor, request: InferRequest, arrays: Mapping[str, np.ndarray], rid: str
) -> tuple[bytes, dict[str, str]]:
    """The response body and its extra headers (binary outputs when asked).

    Raises:
        InvalidInputError: an output was requested that the model does not have.
    """
    wanted = request.outputs or dict.fromkeys(arrays, request.binary_output)
    unknown = sorted(set(wanted) - set(arrays))
    if unknown:
        raise InvalidInputError(
            f"unknown output {unknown[0]!r}; this model gives {', '.join(arrays)}"
        )
    outputs, buffers = [], []
    for name, binary in wanted.items():
        array = arrays[name]
        spec: dict[str, Any] = {
            "name": name,
            "datatype": "BYTES" if array.dtype == object else "FP32",
            "shape": list(array.shape),
        }
        if binary or request.binary_output:
            raw = _to_binary(array)
            spec["parameters"] = {"binary_data_size": len(raw)}
            buffers.append(raw)
        else:
            spec["data"] = array.ravel().tolist() if array.dtype == object else array.ravel()
        outputs.append(spec)
    header = orjson.dumps(
        {
            "model_name": predictor.name,
            "model_version": str(predictor.version),
            "id": request.id if request.id is not None else rid,
            "outputs": outputs,
        },
        option=_JSON_OPTIONS,
    )
    if not buffers:
        return header, {"content-type": "application/json"}
    return header + b"".join(buffers), {
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(len(header)),
    }


def _to_binary(array: np.ndarray) -> bytes:
    if array.dtype != object:
        return np.ascontiguousarray(array, dtype="<f4").tobytes()
    parts = []
    for value in array.ravel():
        data = value if isinstance(value, bytes) else str(value).encode("utf-8")
        parts.append(struct.pack("<I", len(data)) + data)
    return b"".join(parts)


# -- metadata -------------------------------------------------------------------------

_RAW_DATATYPE = {"numeric": "FP32", "series": "FP32"}


def input_specs(predictor: Predictor) -> list[dict[str, Any]]:
    """The raw inputs a client sends, as V2 tensors."""
    specs = []
    for raw in predictor.raw_inputs:
        shape = [-1, predictor.window or -1] if raw["dtype"] == "series" else [-1]
        specs.append(
            {"name": raw["name"], "datatype": _RAW_DATATYPE.get(raw["dtype"], "BYTES"),
             "shape": shape}
        )  # fmt: skip
    return specs


def model_metadata(predictor: Predictor, versions: list[int]) -> dict[str, Any]:
    """``GET /v2/models/NAME[/versions/V]``."""
    return {
        "name": predictor.name,
        "versions": [str(v) for v in versions],
        "platform": "pytorch_lepton",
        "inputs": input_specs(predictor),
        "outputs": output_specs(predictor),
        "parameters": {
            "task": predictor.task,
            "version": predictor.version,
            "classes": predictor.classes,
            # The alternative input: features already preprocessed, as the exported
            # ONNX / Triton model takes them.
            "preprocessed_input": {
                "name": PREPROCESSED_INPUT,
                "datatype": "FP32",
                "shape": [-1, *predictor.input_shape],
            },
        },
    }
