"""A confirmation for an action, optionally with one choice (Soft/Hard, ...).

The default button (Enter) is the one that keeps things as they are.
"""

from __future__ import annotations

from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QVBoxLayout,
    QWidget,
)


class ConfirmDialog(QDialog):
    def __init__(
        self,
        title: str,
        text: str,
        action: str,
        choices: list[str] | None = None,
        parent: QWidget | None = None,
        keep: str = "Cancel",
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.text = QLabel(text)
        self.text.setWordWrap(True)
        self.choice = QComboBox()
        self.choice.addItems(choices or [])
        self.choice.setVisible(bool(choices))
        self.buttons = QDialogButtonBox()
        self.keep = self.buttons.addButton(keep, QDialogButtonBox.ButtonRole.RejectRole)
        self.ok = self.buttons.addButton(action, QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(self.choice)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(380)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.ok.setAutoDefault(False)
        self.keep.setDefault(True)
        self.keep.setFocus()

    @property
    def chosen(self) -> str:
        return self.choice.currentText()
