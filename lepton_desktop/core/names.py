"""The one check of every name a user gives: datasets, models, studies, aliases.

Names are printed by ``info``, listed in the GUI and written into file names and
URLs. A line break, a control character or an invisible formatting character (a
right-to-left override, a zero-width space) in one would garble every listing or
make two different names look alike, so such names are refused where they enter,
before anything is written.
"""

from __future__ import annotations

import unicodedata

from lepton_desktop.core.errors import InvalidOptionError

#: Longest name accepted (characters).
MAX_NAME_LENGTH = 200
#: Unicode categories that never belong in a name: controls (line breaks, tabs,
#: escapes), invisible formatting (bidirectional overrides, zero-width characters),
#: line and paragraph separators, and lone surrogates.
_FORBIDDEN_CATEGORIES = {
    "Cc": "a control character",
    "Cf": "an invisible formatting character",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
    "Cs": "a lone surrogate",
}


def check_name(name: object, what: str) -> str:
    """Return ``name`` if it is a sound name, else refuse it.

    Args:
        name: the name as given.
        what: what it names, as the user calls it (``dataset name``, ``--name``,
            ``alias``); it starts the message.

    Returns:
        The name, unchanged.

    Raises:
        InvalidOptionError: not text, empty, too long, padded with spaces, or holding
            a control or invisible character (the message names the character and
            shows the name with it escaped).
    """
    if not isinstance(name, str):
        raise InvalidOptionError(f"{what} must be text, not {type(name).__name__}")
    if not name.strip():
        raise InvalidOptionError(f"{what} must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidOptionError(
            f"{what} is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}"
        )
    for char in name:
        category = unicodedata.category(char)
        if category in _FORBIDDEN_CATEGORIES:
            raise InvalidOptionError(
                f"{what} {_shown(name)} holds {_FORBIDDEN_CATEGORIES[category]} "
                f"(U+{ord(char):04X}); names may hold letters, digits, spaces and "
                "punctuation only"
            )
    if name != name.strip():
        raise InvalidOptionError(f"{what} {_shown(name)} starts or ends with a space")
    return name


def _shown(name: str) -> str:
    # repr escapes every character that is not printable (controls, U+202E, U+200B),
    # so the message itself cannot be garbled by the name it quotes.
    return repr(name)
