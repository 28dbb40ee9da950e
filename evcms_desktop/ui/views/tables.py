"""A sortable table over a model, as the tabs use it."""

from __future__ import annotations

from PySide6.QtCore import QAbstractItemModel, QSortFilterProxyModel, Qt, QTimer
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget

from evcms_desktop.ui.models import ROW_ROLE, SORT_ROLE


def sortable_table(
    model: QAbstractItemModel,
    parent: QWidget | None = None,
    sort_column: int = -1,
    order: Qt.SortOrder = Qt.SortOrder.AscendingOrder,
) -> QTableView:
    """A table over `model` sorted by `sort_column` (-1: in the model's order) until clicked."""
    proxy = QSortFilterProxyModel(parent)
    proxy.setSourceModel(model)
    proxy.setSortRole(SORT_ROLE)
    table = QTableView(parent)
    table.setModel(proxy)
    table.horizontalHeader().setSortIndicator(sort_column, order)
    table.setSortingEnabled(True)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setAlternatingRowColors(True)
    table.verticalHeader().hide()
    fit_columns(table)
    return table


FIT_DELAY_MS = 1000


def fit_columns(table: QTableView) -> None:
    """Every column as wide as its header and values (never clipped, never wrapped); the
    last one takes what is left, and a scroll bar appears when the view is too narrow.

    Measuring is not free with hundreds of live rows, so it looks at the rows in view
    only, and follows live changes at most once a second rather than on each (as
    ResizeToContents would); a reset (a newly loaded set of rows) is fitted at once.
    """
    table.setWordWrap(False)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.setStretchLastSection(True)
    header.setResizeContentsPrecision(0)  # the visible rows
    timer = QTimer(table, interval=FIT_DELAY_MS, singleShot=True)
    timer.timeout.connect(table.resizeColumnsToContents)

    def soon(*_: object) -> None:
        if not timer.isActive():
            timer.start()

    model = table.model()
    model.modelReset.connect(table.resizeColumnsToContents)  # a new set of rows: fit at once
    for signal in (model.rowsInserted, model.dataChanged, model.layoutChanged):
        signal.connect(soon)
    table.verticalScrollBar().valueChanged.connect(soon)  # other rows came into view
    table.resizeColumnsToContents()


def selected_record(table: QTableView) -> object | None:
    rows = table.selectionModel().selectedRows()
    return rows[0].data(ROW_ROLE) if rows else None
