"""Personal data found in a table: how fast the scan is, and how right.

Run from the repository root::

    .venv/bin/python -m bench.pii_scan                      # 1,000,000 rows x 20 columns
    .venv/bin/python -m bench.pii_scan --rows 200000 --labelled 1000

Part 1, ``speed``: a 1,000,000-row x 20-column table in memory (Arrow, in blocks of
65,536 rows as an import reads a file): 8 personal columns (e-mail, phone, card,
IBAN, SSN, IP address, date of birth, full name; values drawn from pools that Faker
made) and 12 others (6 float, 2 integer, a city, a 16-digit order id, a date, a
sentence). **ours**: ``pii.scan_table`` (each column's first block as the sample,
the kinds found there confirmed on every row, all vectorised). **anchor**: the plain
way, a Python loop over every cell with the same rules (``re``, the Luhn and mod-97
checks in Python, ``ipaddress``, ``phonenumbers``), timed on a ``--anchor-rows`` sample
of every column and scaled to the table's rows. Goal: ours <= 10 s.

Part 2, ``quality``: a labelled set Faker makes with another seed: per kind, a column
under a fitting header whose cells are half true values and half look-alikes (an
e-mail without a domain, a 16-digit number failing Luhn, an IBAN with one digit
changed, SSNs with an impossible area, group or serial, out-of-range IPv4s, zip codes
and dates as phones, text under a birth-date header, numbers under a name header),
plus columns with none (cities, dates of shipment, sentences, amounts). Every cell is
classified (``pii.classify``); precision and recall per kind count cells. Goal: >= 0.95
each.
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import re
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from bench._common import machine_line, markdown_table
from lepton_desktop.core.datasets import pii

BLOCK = 65_536
POOL = 20_000


def _faker(seed: int) -> Any:
    from faker import Faker

    fake = Faker("en_US")
    Faker.seed(seed)
    return fake


def pools(seed: int) -> dict[str, tuple[str, Callable[[], Any]]]:
    """Column name -> (kind or "", a maker of one value)."""
    fake = _faker(seed)
    rng = random.Random(seed)
    return {
        "email": ("email", fake.email),
        "phone": ("phone", fake.phone_number),
        "card": ("card", fake.credit_card_number),
        "iban": ("iban", fake.iban),
        "ssn": ("national_id", fake.ssn),
        "ip_address": ("ip", fake.ipv4),
        "date_of_birth": ("date_of_birth", lambda: fake.date_of_birth().isoformat()),
        "full_name": ("name", fake.name),
        "city": ("", fake.city),
        "order_id": ("", lambda: str(rng.randrange(10**15, 10**16))),
        "shipped": ("", lambda: fake.date()),
        "comment": ("", fake.sentence),
    }


def big_table(rows: int, seed: int = 0) -> pa.Table:
    """The 20-column table of part 1, in blocks of :data:`BLOCK` rows."""
    rng = np.random.default_rng(seed)
    columns: dict[str, pa.ChunkedArray] = {}
    for name, (_, make) in pools(seed).items():
        pool = pa.array([make() for _ in range(POOL)])
        columns[name] = _blocks(pool.take(pa.array(rng.integers(0, POOL, rows))))
    for i in range(6):
        columns[f"x{i}"] = _blocks(pa.array(rng.normal(size=rows)))
    for i in range(2):
        columns[f"n{i}"] = _blocks(pa.array(rng.integers(0, 1000, rows)))
    return pa.table(columns)


def _blocks(arr: pa.Array) -> pa.ChunkedArray:
    return pa.chunked_array([arr.slice(i, BLOCK) for i in range(0, len(arr), BLOCK)])


# -- the anchor: one Python call per cell --------------------------------------------------


_EMAIL = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
_CARD = re.compile(r"^[0-9]{4}([ -]?[0-9]{2,6}){2,5}$")
_IBAN = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$")
_SSN = re.compile(r"^(?!000|666|9)[0-9]{3}-(?!00)[0-9]{2}-(?!0000)[0-9]{4}$")
_PHONE = re.compile(r"^\+?[0-9 ().-]{7,24}( ?(x|ext\.?) ?[0-9]{1,6})?$")
_DATE = re.compile(r"^([0-9]{4}-[0-9]{1,2}-[0-9]{1,2}|[0-9]{1,2}[/.][0-9]{1,2}[/.][0-9]{2,4})")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def naive_kind(value: Any, header: str) -> str:
    """The anchor's rules for one cell (the same kinds, written the plain way)."""
    text = str(value).strip()
    if not text or isinstance(value, float):
        return ""
    if _EMAIL.match(text):
        return "email"
    compact = text.replace(" ", "").upper()
    if _IBAN.match(compact) and int("".join(str(int(c, 36)) for c in compact[4:] + compact[:4])) \
            % 97 == 1:
        return "iban"
    digits = re.sub(r"[ -]", "", text)
    if _CARD.match(text) and 12 <= len(digits) <= 19 and _luhn(digits):
        return "card"
    if _SSN.match(text):
        return "national_id"
    try:
        ipaddress.ip_address(text)
        return "ip"
    except ValueError:
        pass
    if pii.birth_like(header) and _DATE.match(text):
        return "date_of_birth"
    if _PHONE.match(text) and pii.phones_possible([text]) == 1.0:
        return "phone"
    if pii.name_like(header) and re.search(r"[^\W\d_]", text):
        return "name"
    return ""


def anchor_seconds(table: pa.Table, sample_rows: int) -> tuple[float, float]:
    """The anchor's wall and CPU time on ``sample_rows`` of every column, scaled to the
    whole table."""
    sample = table.slice(0, sample_rows)
    columns = [(name, sample.column(name).to_pylist()) for name in sample.column_names]
    started, cpu = time.perf_counter(), time.process_time()
    for name, values in columns:
        for value in values:
            if value is not None:
                naive_kind(value, name)
    scale = table.num_rows / sample_rows
    return (time.perf_counter() - started) * scale, (time.process_time() - cpu) * scale


# -- part 2: the labelled set ----------------------------------------------------------------


def labelled(n: int, seed: int) -> list[tuple[str, list[str], list[str]]]:
    """``(header, cells, labels)`` columns: half true values, half look-alikes."""
    fake = _faker(seed)
    rng = random.Random(seed)

    def mixed(header: str, kind: str, good: Callable[[], str], bad: Callable[[], str]):
        cells = [good() for _ in range(n)] + [bad() for _ in range(n)]
        return header, cells, [kind] * n + [""] * n

    def broken_digit(value: str) -> str:
        spots = [i for i, c in enumerate(value) if c.isdigit()]
        i = rng.choice(spots[-6:])
        return value[:i] + str((int(value[i]) + rng.randrange(1, 10)) % 10) + value[i + 1:]

    def bad_ssn() -> str:
        area, group, serial = rng.choice([("000", "12", "3456"), ("666", "45", "1234"),
                                          (f"9{rng.randrange(10, 99)}", "12", "3456"),
                                          ("123", "00", "4567"), ("234", "56", "0000")])
        return f"{area}-{group}-{serial}"

    columns = [
        mixed("email", "email", fake.email, lambda: rng.choice(
            [fake.user_name() + "@", "@" + fake.domain_name(), fake.user_name() + "@localhost",
             fake.user_name() + " at " + fake.domain_name()])),
        mixed("phone", "phone", fake.phone_number, lambda: rng.choice(
            [fake.zipcode(), fake.date(), f"{rng.randrange(1, 99)}-{rng.randrange(1, 99)}",
             str(rng.randrange(100, 99999))])),
        mixed("card_number", "card", fake.credit_card_number,
              lambda: broken_digit(fake.credit_card_number())),
        mixed("iban", "iban", fake.iban, lambda: broken_digit(fake.iban())),
        mixed("ssn", "national_id", fake.ssn, bad_ssn),
        mixed("ip", "ip", lambda: fake.ipv4() if rng.random() < 0.7 else fake.ipv6(),
              lambda: rng.choice([f"{rng.randrange(256, 999)}.1.2.3", "1.2.3",
                                  f"10.0.0.{rng.randrange(256, 999)}", "1.2.3.4.5"])),
        mixed("date_of_birth", "date_of_birth", lambda: fake.date_of_birth().isoformat(),
              lambda: rng.choice(["unknown", "n/a", "see file", "-"])),
        mixed("customer_name", "name", fake.name, lambda: str(rng.randrange(10**6))),
        mixed("shipped", "", fake.date, fake.date),
        mixed("city", "", fake.city, fake.city),
        mixed("comment", "", fake.sentence, fake.sentence),
        mixed("amount", "", lambda: f"{rng.uniform(1, 1e4):.2f}",
              lambda: str(rng.randrange(10**15, 10**16))),
    ]  # fmt: skip
    return columns


def quality(n: int, seed: int) -> dict[str, tuple[float, float, int]]:
    """Per kind: (precision, recall, positives), counted over every cell."""
    truth: list[str] = []
    guess: list[str] = []
    for header, cells, labels in labelled(n, seed):
        truth += labels
        guess += pii.classify(pii.as_text(pa.array(cells)), header, pa.string()).tolist()
    out = {}
    for kind in pii.KINDS:
        tp = sum(t == kind and g == kind for t, g in zip(truth, guess, strict=True))
        fp = sum(t != kind and g == kind for t, g in zip(truth, guess, strict=True))
        fn = sum(t == kind and g != kind for t, g in zip(truth, guess, strict=True))
        out[kind] = (tp / (tp + fp) if tp + fp else 0.0, tp / (tp + fn) if tp + fn else 0.0,
                     tp + fn)  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--anchor-rows", type=int, default=20_000)
    parser.add_argument("--labelled", type=int, default=2_000, help="true cells per kind")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    table = big_table(args.rows, args.seed)
    started, cpu = time.perf_counter(), time.process_time()
    found = pii.scan_table(table)
    ours, ours_cpu = time.perf_counter() - started, time.process_time() - cpu
    anchor, anchor_cpu = anchor_seconds(table, min(args.anchor_rows, args.rows))
    print(f"# PII scan ({args.rows:,} rows x {table.num_columns} columns)\n")
    print(machine_line() + "\n")
    kinds = ", ".join(f"{f.column}={f.kind}" for f in found)
    print(markdown_table(
        ["scan", "ours (vectorised, sample then all rows)",
         f"anchor (per-cell loop, {min(args.anchor_rows, args.rows):,}-row sample scaled)",
         "anchor / ours"],
        [["seconds (wall)", f"{ours:.2f}", f"{anchor:.1f}", f"{anchor / ours:.1f}× faster"],
         ["CPU seconds", f"{ours_cpu:.2f}", f"{anchor_cpu:.1f}",
          f"{anchor_cpu / ours_cpu:.1f}× less"],
         ["rows / s", f"{args.rows / ours:,.0f}", f"{args.rows / anchor:,.0f}", ""]],
    ))  # fmt: skip
    print(f"\nColumns flagged: {len(found)} of {table.num_columns} ({kinds}). "
          f"Goal: ours <= 10 s: {'met' if ours <= 10 else 'NOT met'} on the wall clock, "
          f"{'met' if ours_cpu <= 10 else 'NOT met'} in CPU time.\n")
    scores = quality(args.labelled, args.seed + 1)
    rows = [[kind.replace("_", " "), f"{p:.4f}", f"{r:.4f}", f"{n:,}"]
            for kind, (p, r, n) in scores.items()]  # fmt: skip
    print(markdown_table(["kind (labelled set, cells)", "precision", "recall", "true cells"],
                         rows))  # fmt: skip
    worst = min(min(p, r) for p, r, _ in scores.values())
    print(f"\nLowest precision or recall: {worst:.4f}; goal >= 0.95 each: "
          f"{'met' if worst >= 0.95 else 'NOT met'}.")


if __name__ == "__main__":
    main()
