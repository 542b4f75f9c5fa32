"""``lepton-desktop explain``: why a model version gave one answer."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from lepton_desktop.cli.common import Command, open_project, print_json
from lepton_desktop.core.errors import InvalidOptionError

#: A ``--record`` longer than this is refused before it is parsed.
MAX_RECORD_CHARS = 1_000_000


def _add_explain(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("explain", help="explain one prediction (attributions, a heat map)")
    p.add_argument("project", type=Path)
    p.add_argument("model", help="NAME, NAME:VERSION or NAME@ALIAS")
    given = p.add_mutually_exclusive_group(required=True)
    given.add_argument("--row", type=int, metavar="N", help="the N-th row of the test split")
    given.add_argument("--record", metavar="JSON", help="a raw record, as /predict takes it")
    given.add_argument("--image", type=Path, metavar="FILE", help="an image file (CNNs)")
    given.add_argument("--request", metavar="ID", help="a logged request's captured inputs")
    p.add_argument("--method", default="ig", metavar="ig|gradcam|occlusion",
                   help="Integrated Gradients (default), Grad-CAM (CNNs), occlusion")  # fmt: skip
    p.add_argument("--out", type=Path, metavar="PNG", help="draw the explanation into a PNG")
    p.add_argument("--json", action="store_true")
    return p


def cmd_explain(args: argparse.Namespace) -> None:
    """``explain PROJECT MODEL (--row N | --record JSON | --image FILE | --request ID)``."""
    record = _record(args.record) if args.record is not None else None
    with open_project(args.project) as project:
        explanation = project.explain(
            args.model, row=args.row, record=record, image=args.image,
            request_id=args.request, method=args.method,
        )  # fmt: skip
    if args.out is not None:
        from lepton_desktop.core.explain.render import save_png

        save_png(explanation, args.out)
    if args.json:
        payload = explanation.to_dict()
        payload["out"] = str(args.out) if args.out is not None else None
        print_json(payload)
        return
    for line in _lines(explanation):
        print(line)


def _record(text: str) -> dict[str, Any]:
    if len(text) > MAX_RECORD_CHARS:
        raise InvalidOptionError(f"--record is longer than {MAX_RECORD_CHARS:,} characters")
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidOptionError(f"--record is not JSON: {exc}") from None
    if not isinstance(record, dict):
        raise InvalidOptionError('--record must be one JSON object: {"column": value, ...}')
    return record


def _lines(explanation: Any) -> list[str]:
    answer = explanation.prediction
    said = answer.get("label", answer.get("value"))
    lines = [
        f"{explanation.model} answered {said!r}",
        f"method: {explanation.method_name} of the {explanation.target}",
        f"baseline: {explanation.baseline}",
    ]
    if explanation.baseline_output is not None:
        lines.append(f"output {explanation.output:.6g} vs baseline "
                     f"{explanation.baseline_output:.6g}; attributions sum to "
                     f"{explanation.total:.6g}")  # fmt: skip
    if explanation.kind == "tabular":
        width = max(len(f["column"]) for f in explanation.features)
        lines += [f"  {f['column']:<{width}}  {f['attribution']:+.4g}  (value {f['value']!r})"
                  for f in explanation.features]  # fmt: skip
    elif explanation.kind == "timeseries":
        count = len(explanation.steps)
        lines += [f"  t{i - count + 1:+d}  {v:.6g}  {a:+.4g}"
                  for i, (v, a) in enumerate(zip(explanation.values, explanation.steps,
                                                strict=True))]  # fmt: skip
    else:
        heat = explanation.heatmap
        top = divmod(int(abs(heat).argmax()), heat.shape[1])
        lines.append(f"  heat map {heat.shape[1]}x{heat.shape[0]}; strongest at x={top[1]}, "
                     f"y={top[0]} (--out FILE.png draws it)")  # fmt: skip
    return lines


#: This group's subcommands, for ``entry.build_parser``.
COMMANDS = (Command("explain", _add_explain, cmd_explain),)
