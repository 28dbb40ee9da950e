"""One central system, two sites in one database: each charger priced by its own site."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from evcms_desktop.csms.events import EventKind
from evcms_desktop.csms.server import CentralSystem, CsmsConfig
from evcms_desktop.simulator.chargebox import ChargeBox
from evcms_desktop.store.models import ChargePoint, ChargingTransaction, Connector, Station
from evcms_desktop.store.stations import add_station
from tests.csms.helpers import FakeClock, Recorder, book, run, running, url


def test_each_site_prices_its_own_sessions(db, station, clock: FakeClock, config: CsmsConfig):
    paris = add_station("Paris Nord", timezone="Europe/Paris", currency="EUR", energy_price="0.25")
    cp = ChargePoint.create(ident="PAR-1", station=paris)
    Connector.create(charge_point=cp, number=1)
    at_london = book(db, station, clock, minutes=30, energy_kwh="8.8")
    at_paris = book(db, paris, clock, minutes=30, energy_kwh="8.8", ident="PAR-1")
    cs = CentralSystem(config, db, clock=clock)
    recorder = Recorder(cs)

    async def session(ident: str, code: str) -> int:
        box = ChargeBox(ident, url(cs), clock=clock, meter_interval=3600)
        await box.connect()
        assert await box.boot() == "Accepted"
        tx_id, status = await box.charge(code, connector=1)
        assert status == "Accepted"
        clock.advance(seconds=600)
        await box.meter(tx_id, seconds=600)
        assert await box.stop_transaction(tx_id) == "Accepted"
        await box.close()
        return tx_id

    async def scenario() -> tuple[int, int, str]:
        async with running(cs):
            # A booking of one site does not open the other site's charger.
            box = ChargeBox("PAR-1", url(cs), clock=clock, meter_interval=3600)
            await box.connect()
            await box.boot()
            refused = await box.authorize(at_london.code)
            await box.close()
            london_tx = await session("CP-A", at_london.code)
            paris_tx = await session("PAR-1", at_paris.code)
            await recorder.wait_for(EventKind.SESSION_STOPPED)
            return london_tx, paris_tx, refused

    london_tx, paris_tx, refused = run(scenario(), timeout=60)
    assert refused != "Accepted"
    london = ChargingTransaction.get_by_id(london_tx)
    paris_session = ChargingTransaction.get_by_id(paris_tx)
    assert london.energy_kwh == paris_session.energy_kwh > 0

    def eq8(price: str, acm: Decimal) -> Decimal:
        total = Decimal(price) * london.energy_kwh + acm * Decimal("3.00") + Decimal("0.20")
        return total.quantize(Decimal("0.01"), ROUND_HALF_UP)

    assert london.price_total == eq8("0.50", at_london.acm)
    assert paris_session.price_total == eq8("0.25", at_paris.acm)
    currencies = {e.data["currency"] for e in recorder.of(EventKind.SESSION_STOPPED) if e.data}
    assert currencies == {"GBP", "EUR"}
    # The notice shows the bill as every page does (it read "2.70 GBP" beside "£2.70").
    told = [e.message for e in recorder.of(EventKind.SESSION_STOPPED)]
    assert any(f"£{london.price_total}" in m for m in told), told
    assert any(f"€{paris_session.price_total}" in m for m in told), told
    assert Station.select().count() == 2
