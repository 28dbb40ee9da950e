"""`evcms-desktop evaluate` writes the CSVs and the PNGs, with a progress bar on stderr."""

from __future__ import annotations

import csv
import io
import re
import threading
from pathlib import Path

import pytest

from evcms_desktop.app.cli import main
from evcms_desktop.app.evaluate_command import ProgressBar

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_evaluate_writes_the_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], qapp: object
) -> None:
    out = tmp_path / "out"
    code = main(["evaluate", "--bookings", "30", "--seed", "3", "--days", "2", "--out", str(out)])
    assert code == 0
    for name in ("table2.csv", "table3.csv", "comparison.csv", "hourly_demand.csv"):
        assert (out / name).stat().st_size > 0
    with (out / "frontier.csv").open() as fh:
        frontier = list(csv.DictReader(fh))
    assert frontier and frontier[0]["limit_kw"] == "" and frontier[0]["extra_cost"] == "0.00"
    for point in frontier:
        assert float(point["unmet_kwh"]) >= float(point["bound_unmet_kwh"]) - 0.05
        if float(point["unmet_kwh"]) == 0 and point["bound_cost"]:
            assert float(point["cost"]) >= float(point["bound_cost"])
        if float(point["unmet_kwh"]) > 0:  # no saving, no bound of another kind beside it
            assert point["extra_cost"] == point["bound_cost"] == point["gap"] == ""
            forced = float(point["bound_unmet_kwh"]) > 0  # every schedule is short there
            assert ("at least" if forced else "n/a") in point["label"]
        if point["limit_kw"]:
            assert float(point["peak_kw"]) <= float(point["limit_kw"]) + 1e-6
    assert (out / "frontier.png").read_bytes().startswith(PNG_MAGIC)
    with (out / "frontier_power.csv").open() as fh:
        power = list(csv.DictReader(fh))
    assert {int(r["point"]) for r in power} == set(range(len(frontier)))
    for n, point in enumerate(frontier):
        rows = [r for r in power if int(r["point"]) == n]
        assert all(r["limit_kw"] == point["limit_kw"] for r in rows)
        by_slot: dict[str, float] = {}
        for r in rows:
            by_slot[r["slot_start"]] = by_slot.get(r["slot_start"], 0.0) + float(r["kw"])
        assert max(by_slot.values()) == pytest.approx(float(point["peak_kw"]), abs=0.01)
    with (out / "table2.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == 30
    for n in (13, 14, 15, 16):
        data = (out / f"figure{n}.png").read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000
    captured = capsys.readouterr()
    assert "100% 30/30" in captured.err  # each system's bookings, counted apart
    assert "Table 3" in captured.out
    assert "Site schedule" in captured.out
    assert "Cost-peak frontier" in captured.out


@pytest.mark.parametrize("limit", ["-5", "nan", "inf", "-inf", "1e12", "0.001", "10000.1", "x"])
def test_evaluate_refuses_a_bad_site_limit_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], limit: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", "--out", str(tmp_path / "out"), "--site-limit", limit])
    assert exit_.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--site-limit" in error and "Traceback" not in error
    assert not (tmp_path / "out").exists()


def test_one_booking_is_met_at_every_frontier_point_without_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "out"
    args = ["evaluate", "--bookings", "1", "--days", "1", "--no-figures", "--out", str(out)]
    assert main(args) == 0
    with (out / "frontier.csv").open() as fh:
        frontier = list(csv.DictReader(fh))
    # Inside the time its driver is there, its window leaves no lower peak to trade for:
    # the least-cost point meets it, and each lower one says what it must leave short.
    assert frontier and float(frontier[0]["bound_unmet_kwh"]) == 0
    assert float(frontier[0]["unmet_kwh"]) == 0, frontier[0]
    for point in frontier[1:]:
        assert float(point["unmet_kwh"]) >= float(point["bound_unmet_kwh"]) > 0, point
        assert "at least" in point["label"]
    captured = capsys.readouterr()
    assert "HiGHS found no schedule" not in caplog.text + captured.err
    short = [line for line in captured.out.splitlines() if "at least" in line]
    assert len(short) == len(frontier) - 1  # said once, in its label: no "bound" beside it
    assert all("bound" not in line and line == line.rstrip() for line in short)


def test_progress_bar_writes_a_line_per_tenth_when_not_on_a_terminal() -> None:
    stream = io.StringIO()  # as a redirected stderr: no terminal
    bar = ProgressBar(stream)
    for done in range(1001):
        bar.show("booking requests", done, 1000)
    bar.show("site schedule", 0, 1)
    bar.show("site schedule", 1, 1)
    text = stream.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 11 + 2  # 0 %, 10 %, ... 100 %, then the next label's two
    assert lines[0].split() == ["booking", "requests", "0%", "0/1000"]
    assert lines[10].split() == ["booking", "requests", "100%", "1000/1000"]


def test_progress_bar_draws_in_place() -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream, terminal=True)
    bar.show("work", 0, 4)
    bar.show("work", 4, 4)
    text = stream.getvalue()
    assert text.startswith("\rwork")
    assert "[" + "#" * 30 + "] 100% 4/4\n" in text


def test_every_step_is_named_as_it_starts_in_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["evaluate", "--bookings", "12", "--days", "1", "--no-figures"]
    assert main([*args, "--out", str(tmp_path / "out")]) == 0
    lines = capsys.readouterr().err.splitlines()
    expected = [
        r"loading: 12 requests over 1 days$",
        r"booking 12 requests in each system$",
        r"booking, original system +100% 12/12$",
        r"booking, optimized system +100% 12/12$",
        r"scheduling the booked slots$",
        r"frontier point 1 of (up to )?\d+: least cost \(\d+ s given\)$",
        r"writing tables$",
        r"writing tables +100% 8/8$",
    ]
    at = [next(i for i, line in enumerate(lines) if re.match(e, line)) for e in expected]
    assert at == sorted(at), lines
    given = re.compile(r"frontier point (\d+) of (\d+) at [\d.]+ kW \(\d+ s given\)$")
    points = [(lines.index(line), given.match(line)) for line in lines if given.match(line)]
    steps = [(int(m.group(1)), int(m.group(2))) for _, m in points if m]
    assert [n for n, _ in steps] == list(range(2, len(steps) + 2))  # each named once, in turn
    assert all(total == len(steps) + 1 for _, total in steps)
    assert all(at[5] < i < at[6] for i, _ in points)


def test_a_silent_step_ticks_with_the_time_it_has_taken_of_its_budget() -> None:
    class Stream(io.StringIO):
        def __init__(self) -> None:
            super().__init__()
            self.ticked = threading.Event()

        def write(self, text: str) -> int:
            if ": 0 s of 40 s" in text or ": 1 s of 40 s" in text:
                self.ticked.set()
            return super().write(text)

    stream = Stream()
    bar = ProgressBar(stream, tick_s=0.05)
    bar.phase("frontier point 2 of 4 at 80 kW", 40.0)
    assert stream.ticked.wait(timeout=30)
    bar.close()
    after = stream.getvalue()
    bar.show("writing tables", 1, 1)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "frontier point 2 of 4 at 80 kW (40 s given)"
    assert all(
        re.fullmatch(r"frontier point 2 of 4 at 80 kW: \d+ s of 40 s", t) for t in lines[1:-1]
    )
    assert stream.getvalue() == after + "writing tables         100% 1/1\n"  # no tick after close
