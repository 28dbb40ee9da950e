"""A confirmation for an action on a charger, optionally with one choice (Soft/Hard, ...)."""

from __future__ import annotations

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
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        label = QLabel(text)
        label.setWordWrap(True)
        self.choice = QComboBox()
        self.choice.addItems(choices or [])
        self.choice.setVisible(bool(choices))
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.ok = self.buttons.addButton(action, QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(label)
        layout.addWidget(self.choice)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(380)

    @property
    def chosen(self) -> str:
        return self.choice.currentText()
