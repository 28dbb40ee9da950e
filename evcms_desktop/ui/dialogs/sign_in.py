"""Operator sign-in; on first start, setting the operator password."""

from __future__ import annotations

import asyncio
import logging

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from evcms_desktop.ui.roles import MIN_PASSWORD_LENGTH, OPERATOR_KEY, Credentials, Role, Session

log = logging.getLogger(__name__)


def _password_field() -> QLineEdit:
    field = QLineEdit()
    field.setEchoMode(QLineEdit.EchoMode.Password)
    return field


class SignInDialog(QDialog):
    """Accepted once the password checked out (or was set); the session is then operator."""

    failed = Signal()

    def __init__(self, session: Session, reason: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.credentials: Credentials = session.credentials
        self.first_time = not self.credentials.has_operator_password()
        self.task: asyncio.Task[None] | None = None
        self.setWindowTitle("Set the operator password" if self.first_time else "Operator sign-in")
        intro = QLabel(
            "No operator password is set yet. Choose one now: operator actions"
            f" (remote start and stop, reset, settings) need it. At least {MIN_PASSWORD_LENGTH}"
            " characters."
            if self.first_time
            else reason or "Operator actions need the operator password."
        )
        intro.setWordWrap(True)
        self.password = _password_field()
        self.repeat = _password_field()
        self.error = QLabel()
        self.error.setObjectName("fieldError")
        self.error.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Password", self.password)
        if self.first_time:
            form.addRow("Repeat", self.repeat)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok.setText("Set password" if self.first_time else "Sign in")
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(420)

    def submit(self) -> None:
        password = self.password.text()
        if self.first_time:
            if len(password) < MIN_PASSWORD_LENGTH:
                self.error.setText(f"Use at least {MIN_PASSWORD_LENGTH} characters.")
                return
            if password != self.repeat.text():
                self.error.setText("The two passwords differ.")
                return
        self.ok.setEnabled(False)
        self.error.setText("Checking…")
        self.task = asyncio.ensure_future(self._submit(password))

    async def _submit(self, password: str) -> None:
        try:
            if self.first_time:
                await self.credentials.set_secret(OPERATOR_KEY, password)
                log.info("Operator password set")
                good = True
            else:
                good = await self.credentials.check(OPERATOR_KEY, password)
        finally:
            self.ok.setEnabled(True)
        if good:
            self.session.set_role(Role.OPERATOR)
            self.accept()
        else:
            log.warning("Operator sign-in refused")
            self.error.setText("Wrong password.")
            self.password.clear()
            self.failed.emit()
