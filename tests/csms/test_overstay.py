"""A car still plugged in after its booked end: the driver and the attendant are told
once (not once per tick), and only about the booking whose car it is."""

from __future__ import annotations

import asyncio

from evcms_desktop.csms.events import EventKind
from evcms_desktop.csms.server import CentralSystem, CsmsConfig
from evcms_desktop.store.bookings import BookingService
from evcms_desktop.store.models import Connector, Event
from evcms_desktop.store.stations import site_ids
from evcms_desktop.ui.kiosk import booking_status
from tests.csms.helpers import FakeClock, Recorder, book, run, running, until
from tests.csms.test_csms_lifecycle import booted


def test_a_car_staying_past_its_booked_end_is_told_once(
    db, station, clock: FakeClock, config: CsmsConfig
):
    assert config.overstay_grace.total_seconds() == 600  # ten minutes after the end
    booking = book(db, station, clock, minutes=30)
    cs = CentralSystem(config, db, clock=clock)
    rec = Recorder(cs)

    async def scenario() -> None:
        async with running(cs):
            box = await booted(cs, clock)
            tx_id, _ = await box.charge(booking.code)
            await box.meter(tx_id, seconds=600)
            clock.advance(minutes=30)
            await rec.wait_for(EventKind.SESSION_STOPPED)  # stopped at the booked end
            await until(lambda: box.connectors[1].status == "Finishing")  # the cable still in
            clock.advance(minutes=9)
            await asyncio.sleep(0.3)  # several ticks inside the grace: nothing
            assert rec.of(EventKind.CAR_OVERSTAYING) == []
            clock.advance(minutes=2)
            await rec.wait_for(EventKind.CAR_OVERSTAYING)
            await asyncio.sleep(0.3)  # more ticks: no second notification
            clock.advance(minutes=30)
            await asyncio.sleep(0.3)
            await box.status(1, "Available")  # the car leaves
            await box.close()

    run(scenario())
    (told,) = rec.of(EventKind.CAR_OVERSTAYING)
    assert told.message == (
        f"Booking {booking.code}: the car at CP-A #1 is still plugged in after its booked"
        " end at 06:30; please move it"
    )
    assert told.is_notification and told.data["booking_code"] == booking.code
    stored = Event.get(Event.kind == "car_overstaying")
    assert stored.booking_code == booking.code
    # The driver sees it in "My booking".
    status = booking_status(BookingService(db, station, clock=clock), booking.code)
    assert "still plugged in after its booked end at 06:30" in status
    # Gone: not told. Back in a central system started again: told before, not again.
    again = CentralSystem(config, db, clock=clock)
    rec_again = Recorder(again)
    again.timers.overstays(clock(), site_ids())
    Connector.update(status="Finishing").execute()
    again.timers.overstays(clock(), site_ids())
    assert rec_again.of(EventKind.CAR_OVERSTAYING) == []
    assert Event.select().where(Event.kind == "car_overstaying").count() == 1
