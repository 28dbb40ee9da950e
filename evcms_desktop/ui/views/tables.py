"""A sortable table over a model, as the tabs use it."""

from __future__ import annotations

from PySide6.QtCore import QAbstractItemModel, QSortFilterProxyModel, Qt
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
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
    return table


def selected_record(table: QTableView) -> object | None:
    rows = table.selectionModel().selectedRows()
    return rows[0].data(ROW_ROLE) if rows else None
