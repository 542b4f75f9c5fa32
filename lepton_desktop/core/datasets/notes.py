"""What a user should know about a new dataset version, in sentences.

An import or a preparation records facts in the version's ``operations`` (cells that
were not finite numbers and became missing, repeated timestamps, a split that could
not be stratified). :func:`version_warnings` turns them into the warnings the
command line prints and the GUI shows beside the import summary.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lepton_desktop.core.entities import DatasetVersion


def version_warnings(version: DatasetVersion) -> list[str]:
    """The warnings of ``version``'s own operations (not its parents'), in order."""
    from lepton_desktop.core.datasets.pii_found import describe, findings_of

    found: list[str] = []
    for operation in version.operations:
        found += _operation_warnings(operation)
    personal = findings_of(version.columns)
    if personal:
        found.append(describe(personal))
    return found


def _operation_warnings(operation: Mapping[str, Any]) -> list[str]:
    found = []
    nonfinite = operation.get("nonfinite")
    if isinstance(nonfinite, Mapping) and nonfinite:
        found.append(nonfinite_warning(nonfinite))
    repeated = operation.get("repeated_times")
    if isinstance(repeated, Mapping) and repeated.get("count"):
        found.append(
            f"time column {repeated.get('column')!r} repeats {repeated['count']:,} "
            f"timestamp(s) (the first: "
            f"{repeated.get('example')}): a series needs one row per time; merge the "
            "rows of each time before training a forecast (training refuses it)"
        )
    warning = operation.get("warning")
    if isinstance(warning, str) and warning:
        found.append(warning)
    return found


def nonfinite_warning(counts: Mapping[str, int]) -> str:
    """The sentence for cells that held ``inf``, ``-inf`` or an overflow, by column."""
    total = sum(counts.values())
    columns = ", ".join(f"{name} ({count:,})" for name, count in counts.items())
    return (
        f"{total:,} value(s) that are not finite numbers (inf, -inf, or too large, like "
        f"1e309) were treated as missing: {columns}"
    )
