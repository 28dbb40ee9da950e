"""The sites a console sees, and the site filter of its Chargers, Bookings and Sessions tabs.

A station PC's console sees its own site and shows no filter. An operator's console (one
attached to a deployment without `--site`) sees every site: each tab then offers "All
sites" and each site, and shows each row in its own site's time zone and currency.
"""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QWidget

from evcms_desktop.domain.peak import PeakCalendar
from evcms_desktop.domain.tariff import Tariff
from evcms_desktop.store.models import Station
from evcms_desktop.store.stations import station_calendar, station_tariff

ALL_SITES = "All sites"


class SiteLookup:
    """The console's own site (`home`) and every site it sees, each one's calendar and
    tariff read once."""

    def __init__(self, home: Station, sites: Sequence[Station] = ()) -> None:
        self.home = home
        self.stations: dict[int, Station] = {home.id: home}
        self.stations.update((site.id, site) for site in sites)
        self._calendars: dict[int, PeakCalendar] = {}
        self._tariffs: dict[int, Tariff] = {}

    @property
    def several(self) -> bool:
        return len(self.stations) > 1

    @property
    def ids(self) -> list[int]:
        return sorted(self.stations)

    def station(self, site: int) -> Station:
        return self.stations.get(site, self.home)

    def calendar(self, site: int) -> PeakCalendar:
        if site not in self._calendars:
            self._calendars[site] = station_calendar(self.station(site))
        return self._calendars[site]

    def tz(self, site: int) -> ZoneInfo:
        return self.calendar(site).tz

    def tariff(self, site: int) -> Tariff:
        if site not in self._tariffs:
            self._tariffs[site] = station_tariff(self.station(site))
        return self._tariffs[site]

    def currency(self, site: int) -> str:
        return str(self.station(site).currency)

    def name(self, site: int | None) -> str:
        """A site's name; a Pending charger that no site has approved yet has none."""
        return "no site yet" if site is None else str(self.station(site).name)


class SiteChoice(QComboBox):
    """ "All sites" and each site by name; hidden when the console sees one site."""

    chosen = Signal()

    def __init__(self, sites: SiteLookup, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.sites = sites
        self.setObjectName("siteFilter")
        self.setToolTip("Show the rows of one site, or of every site this console sees")
        self.addItem(ALL_SITES, None)
        for site in sites.ids:
            self.addItem(sites.name(site), site)
        self.setVisible(sites.several)
        self.currentIndexChanged.connect(lambda _: self.chosen.emit())

    def site_ids(self) -> list[int]:
        """The ids of the sites to show."""
        site = self.currentData()
        return self.sites.ids if site is None else [int(site)]

    def choose(self, site: int | None) -> None:
        """Show one site's rows (None: every site's)."""
        self.setCurrentIndex(max(0, self.findData(site)))
