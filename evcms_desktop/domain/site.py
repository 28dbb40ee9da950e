"""What the booking logic needs to know about a station: connectors, tariff, calendar."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from evcms_desktop.domain.peak import PeakCalendar
from evcms_desktop.domain.tariff import Tariff

# The longest a booking may last (the form's and the command line's bound too).
MAX_SESSION = timedelta(hours=24)


@dataclass(frozen=True)
class ConnectorSpec:
    """One bookable connector. `id` is the store's key; `label` is what people read."""

    id: int
    label: str
    max_power_kw: Decimal = Decimal("22")


@dataclass(frozen=True)
class Site:
    name: str
    connectors: tuple[ConnectorSpec, ...]
    tariff: Tariff = field(default_factory=Tariff)
    calendar: PeakCalendar = field(default_factory=PeakCalendar)
    step: timedelta = timedelta(minutes=15)
    horizon: timedelta = timedelta(hours=24)  # the paper's 96 steps of 15 minutes
    max_session: timedelta = MAX_SESSION

    def connector(self, connector_id: int) -> ConnectorSpec | None:
        return next((c for c in self.connectors if c.id == connector_id), None)

    def rate_kw(self, connector: ConnectorSpec) -> Decimal:
        """The charging rate a connector delivers to a battery: its Pmax times Ceff."""
        return connector.max_power_kw * self.tariff.efficiency
