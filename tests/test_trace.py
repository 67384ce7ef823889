"""Trace files: what parses, what is refused (with FILE:LINE), and how a poll reads one."""

from __future__ import annotations

from pathlib import Path

import pytest

from whitegoodsd import trace


def parse(text: str) -> trace.Trace:
    return trace.parse(text.splitlines(), "t.csv")


def test_rows_in_order_with_comments_and_blank_lines() -> None:
    got = parse("\ufeffseconds,watts\n# a comment\n\n0,1.5\n2,2000\n2,1999\n7.5,-0.4\n")
    assert list(got.seconds) == [0, 2, 2, 7.5]
    assert list(got.watts) == [1.5, 2000, 1999, -0.4]
    assert got.duration == 7.5


def test_times_count_from_the_first_row() -> None:
    assert list(parse("seconds,watts\n100,1\n160,2\n").seconds) == [0, 60]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "t.csv:1: empty"),
        ("time,power\n0,1\n", "t.csv:1: expected the header"),
        ("seconds,watts\n", "t.csv:1: no readings"),
        ("seconds,watts\n0,1\n5\n", "t.csv:3: expected 'seconds,watts'"),
        ("seconds,watts\n0,1,2\n", "t.csv:2: expected 'seconds,watts'"),
        ("seconds,watts\n0,one\n", "t.csv:2: expected two numbers"),
        ("seconds,watts\n0,nan\n", "t.csv:2: implausible watts"),
        ("seconds,watts\n0,1e9\n", "t.csv:2: implausible watts"),
        ("seconds,watts\n-1,1\n", "t.csv:2: seconds must be 0 or more"),
        ("seconds,watts\ninf,1\n", "t.csv:2: seconds must be 0 or more"),
        ("seconds,watts\n5,1\n4,1\n", "t.csv:3: 4 s is before the previous row (5 s)"),
        ("seconds,watts\n0," + "1" * 300 + "\n", "t.csv:2: line longer than"),
    ],
)
def test_bad_traces_name_the_line(text: str, message: str) -> None:
    with pytest.raises(trace.TraceError) as caught:
        parse(text)
    assert str(caught.value).startswith(message)


def test_a_row_holds_until_the_next_for_at_most_hold_seconds() -> None:
    assert trace.HOLD == 30
    got = parse("seconds,watts\n0,10\n30,20\n200,30\n")
    assert [got.reading_at(t) for t in (0, 29, 30, 60, 61, 199, 200, 230, 231)] == [
        10, 10, 20, 20, None, None, 30, 30, None,
    ]  # fmt: skip
    assert got.reading_at(-1) is None


def test_the_energy_a_counter_would_have_counted() -> None:
    got = parse("seconds,watts\n0,3600\n30,7200\n200,-5\n")
    # 3600 W for 30 s, 7200 W held 30 s (then the gap adds nothing), no negative energy.
    assert [got.energy_at(t) for t in (-1, 0, 15, 30, 45, 60, 199, 200, 400)] == [
        0, 0, 15, 30, 60, 90, 90, 90, 90,
    ]  # fmt: skip


def test_rows_written_by_record_read_back(tmp_path: Path) -> None:
    rows = [(0.0, 0.0), (1.25, 1834.2), (60.0, 1.0), (3600.5, 2150.123)]
    path = tmp_path / "r.csv"
    path.write_text(trace.HEADER + "\n" + "".join(trace.row(s, w) + "\n" for s, w in rows))
    got = trace.load(path)
    assert list(zip(got.seconds, got.watts, strict=True)) == rows
    assert trace.row(12.0, 5.0) == "12,5"


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(trace.TraceError, match="cannot read"):
        trace.load(tmp_path / "missing.csv")
    binary = tmp_path / "b.csv"
    binary.write_bytes(b"seconds,watts\n0,\xff\n")
    with pytest.raises(trace.TraceError, match="not UTF-8"):
        trace.load(binary)
    endless = tmp_path / "e.csv"
    endless.write_text("seconds,watts\n" + "9" * 1_000_000)
    with pytest.raises(trace.TraceError, match=r"e\.csv:2: line longer than 200"):
        trace.load(endless)
