"""The OCPP log tab: messages in and out, filtered by charger and action."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from evcms_desktop.ui.models.ocpp_log import OcppLogFilter, OcppLogModel

ANY = "Any"


class OcppLogView(QWidget):
    def __init__(self, model: OcppLogModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.proxy = OcppLogFilter(self)
        self.proxy.setSourceModel(model)
        self.charger = QComboBox(minimumContentsLength=14)
        self.action = QComboBox(minimumContentsLength=18)
        for combo in (self.charger, self.action):
            combo.addItem(ANY)
            combo.currentTextChanged.connect(self._filter)
        model.rowsInserted.connect(self._update_choices)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        header = self.table.horizontalHeader()
        for column in range(4):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        top = QHBoxLayout()
        top.addWidget(QLabel("Charger"))
        top.addWidget(self.charger)
        top.addWidget(QLabel("Action"))
        top.addWidget(self.action)
        top.addStretch(1)
        note = QLabel(
            "Messages since this console started; they are not kept across restarts (the"
            " notifications and each charger's deviations are)."
        )
        note.setObjectName("counterTitle")
        top.addWidget(note)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table)

    def _update_choices(self) -> None:
        for combo, values in (
            (self.charger, self.model.chargers),
            (self.action, self.model.actions),
        ):
            known = {combo.itemText(i) for i in range(combo.count())}
            for value in sorted(values - known):
                if value:
                    combo.addItem(value)

    def _filter(self) -> None:
        charger, action = self.charger.currentText(), self.action.currentText()
        self.proxy.set_filter("" if charger == ANY else charger, "" if action == ANY else action)

    def select_filter(self, charger: str = ANY, action: str = ANY) -> None:
        self.charger.setCurrentText(charger)
        self.action.setCurrentText(action)
