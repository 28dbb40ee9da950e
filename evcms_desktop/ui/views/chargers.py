"""The Chargers tab: the live table, the actions on the selected connector, its meter chart."""

from __future__ import annotations

from PySide6.QtCore import (
    QItemSelection,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from evcms_desktop.ui.actions import ConnectorActions, Outcome
from evcms_desktop.ui.charts.meter import LiveMeterChart
from evcms_desktop.ui.models import ROW_ROLE, SORT_ROLE
from evcms_desktop.ui.models.chargers import ChargerRow, ChargersModel
from evcms_desktop.ui.sites import SiteChoice
from evcms_desktop.ui.views.tables import fit_columns


class ActionsPanel(QWidget):
    def __init__(self, actions: ConnectorActions, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.actions = actions
        self.row: ChargerRow | None = None
        self.title = QLabel("No connector selected")
        self.title.setObjectName("sectionTitle")
        self.title.setWordWrap(True)
        self.buttons: dict[str, QPushButton] = {}
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        for name, text, handler in (
            ("start", "Remote start…", actions.remote_start),
            ("stop", "Remote stop…", actions.remote_stop),
            ("unlock", "Unlock…", actions.unlock),
            ("reset", "Reset…", actions.reset),
            ("availability", "Change availability…", actions.change_availability),
            ("approve", "Approve charger…", actions.approve),
            ("tools", "Charger tools…", actions.charger_tools),
        ):
            button = QPushButton(text)
            button.clicked.connect(lambda _=False, h=handler: self.row and h(self.row))
            self.buttons[name] = button
            layout.addWidget(button)
        self.result = QLabel("")
        self.result.setObjectName("actionResult")
        self.result.setWordWrap(True)
        self.note = QLabel("Actions need an operator sign-in.")
        self.note.setObjectName("counterTitle")
        self.note.setWordWrap(True)
        layout.addWidget(self.result)
        layout.addStretch(1)
        layout.addWidget(self.note)
        self.setFixedWidth(220)
        self.set_row(None)

    def set_row(self, row: ChargerRow | None) -> None:
        self.row = row
        self.title.setText(row.label if row else "No connector selected")
        live = row is not None and row.connected and not row.pending and row.connector > 0
        self.buttons["start"].setEnabled(live and not row.charging)  # type: ignore[union-attr]
        self.buttons["stop"].setEnabled(live and row.charging)  # type: ignore[union-attr]
        for name in ("unlock", "availability"):
            self.buttons[name].setEnabled(live)
        self.buttons["reset"].setEnabled(row is not None and row.connected and not row.pending)
        self.buttons["approve"].setVisible(row is not None and row.pending)
        self.buttons["tools"].setEnabled(row is not None and not row.pending)

    def show_outcome(self, outcome: Outcome) -> None:
        colour = "#dcf5e3" if outcome.ok else "#ffd9d6"
        self.result.setStyleSheet(f"background: {colour};")
        self.result.setText(outcome.text)


class ChargersFilter(QSortFilterProxyModel):
    """The text filter over every column, and the rows of the chosen sites only."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.sites: set[int] | None = None  # None: every site

    def show_sites(self, sites: list[int]) -> None:
        self.beginFilterChange()
        self.sites = set(sites)
        self.endFilterChange()

    def filterAcceptsRow(
        self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex
    ) -> bool:
        if self.sites is not None:
            row = self.sourceModel().index(source_row, 0, source_parent).data(ROW_ROLE)
            # A Pending charger no site has yet is any site's to approve.
            if row is not None and row.site is not None and row.site not in self.sites:
                return False
        return super().filterAcceptsRow(source_row, source_parent)


class ChargersView(QWidget):
    selection_changed = Signal(object)  # ChargerRow | None

    def __init__(
        self,
        model: ChargersModel,
        actions: ConnectorActions,
        chart: LiveMeterChart,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.model = model
        self.chart = chart
        self.proxy = ChargersFilter(self)
        self.proxy.setSourceModel(model)
        self.proxy.setSortRole(SORT_ROLE)
        self.proxy.setFilterKeyColumn(-1)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.filter = QLineEdit(placeholderText="Filter: charger, status, booking…")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self.proxy.setFilterFixedString)
        self.site_choice = SiteChoice(model.sites)
        self.site_choice.chosen.connect(lambda: self.proxy.show_sites(self.site_choice.site_ids()))
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        fit_columns(self.table)
        self.table.verticalHeader().setDefaultSectionSize(28)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self._kept: tuple[str, int] | None = None
        model.dataChanged.connect(self._refresh_panel)
        model.modelAboutToBeReset.connect(self._keep_selection)
        model.modelReset.connect(self._restore_selection)
        self.panel = ActionsPanel(actions)
        actions.finished.connect(self.panel.show_outcome)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        self.empty = QLabel(
            "No chargers yet. An operator adds them under Settings > Chargers (or lets"
            " unknown ones wait for approval); to try the console without hardware, add one"
            " there (CP-1, with a password) and connect it with Tools > Charge-box simulator."
        )
        self.empty.setObjectName("emptyState")
        self.empty.setWordWrap(True)
        for signal in (model.modelReset, model.rowsInserted, model.rowsRemoved):
            signal.connect(self._show_empty)
        filters = QHBoxLayout()
        filters.addWidget(self.site_choice)
        filters.addWidget(self.filter, 1)
        left_layout.addLayout(filters)
        left_layout.addWidget(self.empty)
        left_layout.addWidget(self.table)
        self._show_empty()
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(left)
        split.addWidget(chart)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout = QHBoxLayout(self)
        layout.addWidget(split, 1)
        layout.addWidget(self.panel)

    def _show_empty(self, *_: object) -> None:
        self.empty.setVisible(self.proxy.sourceModel().rowCount() == 0)

    def selected_row(self) -> ChargerRow | None:
        indexes = self.table.selectionModel().selectedRows()
        return indexes[0].data(ROW_ROLE) if indexes else None

    def select(self, ident: str, connector: int) -> None:
        i = self.model.row_index(ident, connector)
        if i is not None:
            self.table.selectRow(self.proxy.mapFromSource(self.model.index(i, 0)).row())

    def _selection_changed(self, _new: QItemSelection, _old: QItemSelection) -> None:
        row = self.selected_row()
        self.panel.set_row(row)
        self.chart.set_connector(
            None if row is None or row.connector == 0 else row.key, row.label if row else ""
        )
        self.selection_changed.emit(row)

    def _refresh_panel(self) -> None:
        self.panel.set_row(self.selected_row())

    def _keep_selection(self) -> None:
        row = self.selected_row()
        self._kept = row.key if row else None

    def _restore_selection(self) -> None:
        """A new charger resets the model; the operator keeps the connector they chose."""
        if self._kept is not None:
            self.select(*self._kept)
        self._refresh_panel()
