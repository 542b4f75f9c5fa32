"""Personal data found in a table's columns: what kind, and in what share of the cells.

A column is scanned on a sample first (its first block of rows): every kind is tried
there, and only the kinds found in at least :data:`SAMPLE_SHARE` of the sample's cells
are then counted on all rows (:class:`PiiCounter`, fed batch by batch by the import),
so a column of prices costs a few regular expressions on its sample and nothing more.
A column is flagged when one kind reaches :data:`MIN_SHARE` of its non-empty cells.

Every test runs on whole Arrow arrays (RE2 through ``pyarrow.compute``, checksums in
numpy), never a Python loop per cell, except where a well-kept library has the last
word on a few values (``phonenumbers`` on a sample of phone-like cells, ``ipaddress``
on IPv6-looking cells):

- ``email``: ``local@domain.tld``.
- ``card``: 12 to 19 digits (spaces or dashes between groups) with an issuer's prefix,
  passing the Luhn check.
- ``iban``: country, check digits and account (ISO 13616), passing the mod-97 check.
- ``national_id``: a US social security number, ``AAA-GG-SSSS`` with its validity
  rules (no area 000, 666 or 9xx, no group 00, no serial 0000); nine bare digits only
  under an ``ssn``-like header.
- ``ip``: an IPv4 address (each part 0..255) or an IPv6 address.
- ``phone``: 7 to 15 digits in a phone's punctuation, which ``phonenumbers`` must find
  possible on the sample.
- ``date_of_birth``: dates (or date-like text) under a birth-like header.
- ``name``: text under a name-like header (``name``, ``first_name``, ``surname``...).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lepton_desktop.core.datasets.pii_found import KINDS, Finding

#: A column is flagged when one kind matches at least this share of its non-empty cells.
MIN_SHARE = 0.5
#: Kinds matching at least this share of the sample are confirmed on all rows.
SAMPLE_SHARE = 0.25
#: Rows of a column's sample.
SAMPLE_ROWS = 20_000
#: Phone-like cells of the sample that ``phonenumbers`` checks.
PHONE_CHECKS = 500

_EMAIL = r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$"
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = rf"^{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}$"
_IPV6_SHAPE = r"^[0-9A-Fa-f]{0,4}(:[0-9A-Fa-f.]{0,15}){2,8}$"
_CARD_SHAPE = r"^[0-9]{4}([ -]?[0-9]{2,6}){2,5}$"
# Issuer prefixes (ISO/IEC 7812 ranges in use): Visa 4, Mastercard 51-55 and 22-27,
# Amex 34/37, Diners 30/36/38/39, JCB 35 (and 1800, 2131), Discover and others 6,
# Maestro 50/56-59 (and 0604).
_CARD_ISSUER = r"^(4|5|6|2[2-7]|3[0456789]|1800|2131|0604)"
_IBAN_SHAPE = r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$"
_SSN_SHAPE = r"^[0-9]{3}-[0-9]{2}-[0-9]{4}$"
_SSN_INVALID = r"^(000|666|9)|^[0-9]{3}-?00|0000$"
_PHONE_SHAPE = r"^\+?[0-9 ().-]{7,24}( ?(x|ext\.?) ?[0-9]{1,6})?$"
_DATE_TEXT = r"^([0-9]{4}-[0-9]{1,2}-[0-9]{1,2}|[0-9]{1,2}[/.][0-9]{1,2}[/.][0-9]{2,4})"
_LETTER = r"[^\W\d_]"

_BIRTH_HEADER = re.compile(r"birth|\bdob\b|^dob|dob$|born|geburt|naissance|nacimiento", re.I)
_SSN_HEADER = re.compile(r"ssn|social.?sec|national.?id|tax.?id|\btin\b", re.I)
_NAME_WORDS = {
    "name", "names", "surname", "surnames", "forename", "firstname", "lastname",
    "fullname", "givenname", "familyname", "middlename", "maidenname", "nachname",
    "vorname", "nom", "prenom", "nombre", "apellido",
}  # fmt: skip
_NOT_NAMES = {
    "file",
    "host",
    "user",
    "product",
    "item",
    "model",
    "table",
    "column",
    "field",
    "class",
    "company",
    "city",
    "street",
    "domain",
    "app",
    "brand",
}


def name_like(header: str) -> bool:
    """Whether a header names people (``name``, ``first_name``, ``Surname``; not ``filename``)."""
    words = [w.lower() for w in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])", header)]
    if not words:
        return False
    joined = "".join(words)
    if joined in _NAME_WORDS:
        return True
    return words[-1] in ("name", "names") and not (set(words[:-1]) & _NOT_NAMES)


def birth_like(header: str) -> bool:
    """Whether a header names a date of birth (``date_of_birth``, ``DOB``, ``born``)."""
    return bool(_BIRTH_HEADER.search(header.replace("_", " ")))


# -- one array: which cells are of which kind ------------------------------------------


def as_text(arr: pa.Array) -> pa.Array:
    """The cells as trimmed text (numbers as written), empty strings as missing."""
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_floating(arr.type):
        # A float column holds no identifier a regular expression could read back.
        return pa.nulls(len(arr), pa.string())
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = pc.cast(arr, pa.string())
    text = pc.utf8_trim_whitespace(arr)
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def kind_masks(
    text: pa.Array, header: str, arrow_type: pa.DataType, kinds: tuple[str, ...] = KINDS
) -> dict[str, np.ndarray]:
    """Per kind in ``kinds``, a boolean mask of the cells of ``text`` of that kind.

    Masks are not exclusive; :func:`classify` resolves overlaps in :data:`KINDS` order.
    """
    masks: dict[str, np.ndarray] = {}
    for kind in kinds:
        test = _TESTS[kind]
        masks[kind] = test(text, header, arrow_type)
    return masks


def classify(
    text: pa.Array, header: str = "", arrow_type: pa.DataType | None = None
) -> np.ndarray:
    """The kind of every cell (``""`` for none): the first of :data:`KINDS` that matches.

    Cell by cell, so each phone-like cell is also checked by ``phonenumbers`` (a column
    checks a sample of them): for labelled data and small tables, not a whole column.
    """
    masks = kind_masks(text, header, arrow_type or text.type)
    phones = np.flatnonzero(masks["phone"])
    for row, value in zip(phones, text.take(pa.array(phones)).to_pylist(), strict=True):
        masks["phone"][row] = phones_possible([value]) == 1.0
    out = np.full(len(text), "", dtype=object)
    for kind in reversed(KINDS):
        out[masks[kind]] = kind
    return out


def _bool(mask: pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)


def _regex(text: pa.Array, pattern: str) -> np.ndarray:
    return _bool(pc.match_substring_regex(text, pattern))


def _email(text: pa.Array, header: str, arrow_type: pa.DataType) -> np.ndarray:
    return _regex(text, _EMAIL)


def _ip(text: pa.Array, header: str, arrow_type: pa.DataType) -> np.ndarray:
    found = _regex(text, _IPV4)
    shaped = np.flatnonzero(_regex(text, _IPV6_SHAPE))
    if shaped.size:
        import ipaddress

        for row, value in zip(shaped, text.take(pa.array(shaped)).to_pylist(), strict=True):
            try:
                ipaddress.IPv6Address(value)
            except ValueError:
                continue
            found[row] = True
    return found


def _card(text: pa.Array, header: str, arrow_type: pa.DataType) -> np.ndarray:
    found = _regex(text, _CARD_SHAPE) & _regex(text, _CARD_ISSUER)
    rows = np.flatnonzero(found)
    digits = pc.replace_substring_regex(text.take(pa.array(rows)), r"[ -]", "")
    length = np.asarray(pc.utf8_length(digits).to_numpy(zero_copy_only=False))
    ok = (length >= 12) & (length <= 19)
    ok[ok] = luhn_valid(digits.filter(pa.array(ok)))
    found[rows] = ok
    return found


def _iban(text: pa.Array, header: str, arrow_type: pa.DataType) -> np.ndarray:
    compact = pc.utf8_upper(pc.replace_substring(text, " ", ""))
    found = _regex(compact, _IBAN_SHAPE)
    rows = np.flatnonzero(found)
    found[rows] = iban_valid(compact.take(pa.array(rows)))
    return found


def _national_id(text: pa.Array, header: str, arrow_type: pa.DataType) -> np.ndarray:
    shaped = _regex(text, _SSN_SHAPE)
    if _SSN_HEADER.search(header):
        shaped |= _regex(text, r"^[0-9]{9}$")
    return shaped & ~_regex(text, _SSN_INVALID)


def _phone(text: pa.Array, header: str, arrow_type: pa.DataType) -> np.ndarray:
    if pa.types.is_integer(arrow_type):
        return np.zeros(len(text), dtype=bool)  # a count or an id, not a number to dial
    # (four dotted groups of up to three digits read as an address or a version, not a
    # number to dial)
    found = _regex(text, _PHONE_SHAPE) & ~_regex(text, r"^[0-9]{1,3}(\.[0-9]{1,3}){3}$")
    count = digit_counts(text)
    extension = _regex(text, r"x[0-9]+$")  # up to 6 more digits after the number's 15
    return found & (count >= 7) & (count <= np.where(extension, 21, 15))


def digit_counts(text: pa.Array) -> np.ndarray:
    """How many ASCII digits each string holds (0 for missing), from the raw bytes."""
    text = pc.cast(text, pa.string())
    if len(text) == 0 or text.buffers()[2] is None:
        return np.zeros(len(text), dtype=np.int64)
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int32)[
        text.offset : text.offset + len(text) + 1
    ]
    data = np.frombuffer(text.buffers()[2], dtype=np.uint8)[: offsets[-1]]
    running = np.concatenate([[0], np.cumsum((data >= 48) & (data <= 57), dtype=np.int64)])
    return running[offsets[1:]] - running[offsets[:-1]]


def phones_possible(values: list[str]) -> float:
    """The share of ``values`` that ``phonenumbers`` finds possible (US rules without a ``+``)."""
    import phonenumbers

    good = 0
    for value in values:
        try:
            # "00" is the international call prefix of most countries: as "+".
            number = phonenumbers.parse(re.sub(r"^\s*00", "+", value), "US")
        except phonenumbers.NumberParseException:
            continue
        good += phonenumbers.is_possible_number(number)
    return good / len(values) if values else 0.0


def _date_of_birth(text: pa.Array, header: str, arrow_type: pa.DataType) -> np.ndarray:
    if not birth_like(header):
        return np.zeros(len(text), dtype=bool)
    if pa.types.is_temporal(arrow_type):
        return _bool(pc.is_valid(text))
    return _regex(text, _DATE_TEXT)


def _name(text: pa.Array, header: str, arrow_type: pa.DataType) -> np.ndarray:
    if not name_like(header):
        return np.zeros(len(text), dtype=bool)
    return _regex(text, _LETTER)


_TESTS: dict[str, Callable[[pa.Array, str, pa.DataType], np.ndarray]] = {
    "email": _email,
    "iban": _iban,
    "card": _card,
    "national_id": _national_id,
    "ip": _ip,
    "date_of_birth": _date_of_birth,
    "phone": _phone,
    "name": _name,
}


# -- checksums on whole arrays -----------------------------------------------------------


def _by_length(text: pa.Array) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(rows, bytes)`` per string length: ``bytes`` is an ``(n, length)`` uint8 matrix.

    Strings of one length, filtered into a fresh array, lie end to end in its data
    buffer: the matrix is a view of it, with no per-cell work.
    """
    text = pc.cast(text, pa.string())
    lengths = np.asarray(pc.binary_length(text).to_numpy(zero_copy_only=False))
    out = []
    for length in np.unique(lengths):
        rows = np.flatnonzero(lengths == length)
        same = text.take(pa.array(rows))
        data = same.buffers()[2]
        if length == 0 or data is None:
            continue
        start = np.frombuffer(same.buffers()[1], dtype=np.int32)[same.offset]
        flat = np.frombuffer(data, dtype=np.uint8, count=len(rows) * int(length), offset=start)
        out.append((rows, flat.reshape(len(rows), int(length))))
    return out


#: A doubled digit's contribution to the Luhn sum (2 * d, minus 9 above 9).
_LUHN_DOUBLED = np.array([0, 2, 4, 6, 8, 1, 3, 5, 7, 9], dtype=np.int32)


def luhn_valid(digits: pa.Array) -> np.ndarray:
    """The Luhn check of strings of 12 to 19 digits, all at once."""
    valid = np.zeros(len(digits), dtype=bool)
    for rows, chars in _by_length(digits):
        values = chars.astype(np.int32) - 48
        length = values.shape[1]
        # From the right, the 2nd, 4th... digits are doubled.
        doubled = np.arange(length)[::-1] % 2 == 1
        total = values[:, ~doubled].sum(axis=1) + _LUHN_DOUBLED[values[:, doubled]].sum(axis=1)
        valid[rows] = total % 10 == 0
    return valid


#: Per byte of an IBAN: its value (digits 0..9, letters 10..35) and how far it shifts
#: the running remainder (10 for one digit, 100 for a letter's two).
_IBAN_VALUE = np.zeros(256, dtype=np.int32)
_IBAN_VALUE[48:58] = np.arange(10)
_IBAN_VALUE[65:91] = np.arange(10, 36)
_IBAN_SHIFT = np.full(256, 10, dtype=np.int32)
_IBAN_SHIFT[65:91] = 100


def iban_valid(compact: pa.Array) -> np.ndarray:
    """ISO 13616's mod-97 check of upper-case IBANs without spaces, all at once."""
    valid = np.zeros(len(compact), dtype=bool)
    for rows, chars in _by_length(compact):
        if chars.shape[1] < 5:
            continue
        # The first four characters move to the end; letters count as 10..35 (two
        # digits), so each step shifts the remainder by 10 or 100.
        # Position-major (each step reads one contiguous row); int32 holds 96 * 100 + 35.
        moved = np.concatenate([chars[:, 4:], chars[:, :4]], axis=1).T
        value, shift = _IBAN_VALUE[moved], _IBAN_SHIFT[moved]
        remainder = np.zeros(len(rows), dtype=np.int32)
        for position in range(moved.shape[0]):
            remainder = (remainder * shift[position] + value[position]) % 97
        valid[rows] = remainder == 1
    return valid


# -- a column over all its rows ------------------------------------------------------------


class PiiCounter:
    """Counts one column's personal data batch by batch (the first batch is the sample)."""

    def __init__(self, name: str, arrow_type: pa.DataType) -> None:
        self.name = name
        self.arrow_type = arrow_type
        self.kinds: tuple[str, ...] | None = None  # decided on the sample
        self.present = 0
        self.counts: dict[str, int] = {}

    def add(self, arr: pa.Array) -> None:
        """Count one batch of the column (as read from the source)."""
        text = as_text(arr)
        if self.kinds is None:
            self.kinds = self._candidates(text)
        present = len(text) - text.null_count
        self.present += present
        if not self.kinds or present == 0:
            return
        masks = kind_masks(text, self.name, self.arrow_type, self.kinds)
        taken = np.zeros(len(text), dtype=bool)
        for kind in self.kinds:  # (in KINDS order: a cell counts for its first kind)
            hit = masks[kind] & ~taken
            self.counts[kind] = self.counts.get(kind, 0) + int(hit.sum())
            taken |= hit

    def _candidates(self, text: pa.Array) -> tuple[str, ...]:
        sample = text.slice(0, SAMPLE_ROWS)
        present = len(sample) - sample.null_count
        if present == 0:
            return ()
        masks = kind_masks(sample, self.name, self.arrow_type)
        found = [k for k in KINDS if masks[k].sum() >= SAMPLE_SHARE * present]
        if "phone" in found:
            rows = np.flatnonzero(masks["phone"])[:PHONE_CHECKS]
            values = sample.take(pa.array(rows)).to_pylist()
            if phones_possible(values) < MIN_SHARE:
                found.remove("phone")
        return tuple(found)

    def finding(self) -> Finding | None:
        """The column's kind when one reaches :data:`MIN_SHARE` of its non-empty cells."""
        if not self.present or not self.counts:
            return None
        kind, count = max(self.counts.items(), key=lambda item: item[1])
        share = count / self.present
        return Finding(self.name, kind, share) if share >= MIN_SHARE else None


def scan_table(table: pa.Table | pa.RecordBatch) -> list[Finding]:
    """Every flagged column of a whole table (the sample, then all rows), in column order."""
    found = []
    for name, column in zip(table.schema.names, table.columns, strict=True):
        counter = PiiCounter(name, column.type)
        chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
        for chunk in chunks:
            counter.add(chunk)
        finding = counter.finding()
        if finding is not None:
            found.append(finding)
    return found


def sample_findings(path: Path) -> list[Finding]:
    """The personal data in a table file's first block of rows (for the Import dialog).

    What the import will confirm on all rows; reads one block (4 MB of a CSV) and
    writes nothing. Raises DataImportError (an unreadable file).
    """
    from lepton_desktop.core.datasets.sources import TableSource

    source = TableSource(path)
    try:
        first = next(iter(source.batches()), None)
    except pa.ArrowInvalid:
        return []  # (a type the import widens later: the import itself will scan)
    finally:
        source.close()
    return scan_table(first) if first is not None else []
