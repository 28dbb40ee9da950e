"""Running an evaluation in a child process, for front ends that keep using the store.

The runner binds the store's models to scratch files, process-wide; in a child process
that cannot disturb the parent's database. The child reports on a multiprocessing queue:
("progress", done, total), then ("done", EvaluationReport) or ("error", message).
"""

from __future__ import annotations

import multiprocessing
import queue
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from evcms_desktop.evaluation.report import EvaluationReport, evaluate
from evcms_desktop.evaluation.runner import StationSetup
from evcms_desktop.evaluation.scenario import Scenario, ScenarioConfig, ScenarioRequest
from evcms_desktop.store.models import Booking, BookingState, Station


@dataclass(frozen=True)
class EvaluationJob:
    scenario: Scenario
    setup: StationSetup
    site_limit_kw: Decimal | None = None
    frontier: bool = True  # the site schedule's cost–peak frontier as well


def requests_from_bookings(bookings: Iterable[Booking]) -> list[ScenarioRequest]:
    """A station's bookings as the requests that made them (as asked, at their booking time)."""
    requests = []
    for b in bookings:
        requests.append(
            ScenarioRequest(
                tid=0,
                booked_at=min(b.created_at, b.requested_start),
                arrival=b.requested_start,
                duration=b.requested_end - b.requested_start,
                energy_kwh=b.energy_kwh,
                latest_departure=max(b.end, b.requested_end),
            )
        )
    return requests


def bookings_asked_between(station: Station, start: datetime, end: datetime) -> list[Booking]:
    """The station's bookings, cancelled ones aside, asked to start in [start, end)."""
    return list(
        Booking.select()
        .where(
            (Booking.station == station)
            & (Booking.requested_start >= start)
            & (Booking.requested_start < end)
            & (Booking.state != BookingState.CANCELLED.value)
        )
        .order_by(Booking.created_at)
    )


def scenario_config_for(requests: list[ScenarioRequest], connectors: int) -> ScenarioConfig:
    return ScenarioConfig(bookings=len(requests), seed=0, connectors=connectors)


def evaluate_job(job: EvaluationJob, out: Any) -> None:
    """The child process's entry point; `out` is the multiprocessing queue."""
    step = max(1, 2 * len(job.scenario.requests) // 100)

    def progress(done: int, total: int) -> None:
        if done % step == 0 or done == total:
            out.put(("progress", done, total))

    try:
        report = evaluate(
            job.scenario,
            job.setup,
            site_limit_kw=job.site_limit_kw,
            progress=progress,
            frontier=job.frontier,
        )
    except Exception as exc:
        out.put(("error", f"{exc}\n{traceback.format_exc()}"))
        return
    out.put(("done", report))


class EvaluationCancelled(Exception):
    """The run was cancelled; its child process was ended."""


def run_in_child(
    job: EvaluationJob,
    on_progress: Callable[[int, int], None],
    poll_seconds: float = 0.2,
    cancelled: Callable[[], bool] = lambda: False,
) -> EvaluationReport:
    """Run `job` in a spawned process and wait for it; raises RuntimeError when it fails
    and EvaluationCancelled (ending the child at once) when `cancelled()` turns true."""
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    process = context.Process(target=evaluate_job, args=(job, messages), daemon=True)
    process.start()
    try:
        while True:
            if cancelled():
                process.terminate()
                raise EvaluationCancelled
            try:
                message = messages.get(timeout=poll_seconds)
            except queue.Empty:
                if not process.is_alive():
                    raise RuntimeError(
                        f"The evaluation stopped (exit code {process.exitcode})."
                    ) from None
                continue
            kind = message[0]
            if kind == "progress":
                on_progress(message[1], message[2])
            elif kind == "done":
                return message[1]
            else:
                raise RuntimeError(message[1])
    finally:
        process.join(timeout=5)
        if process.is_alive():
            process.terminate()
