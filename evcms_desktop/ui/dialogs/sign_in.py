"""Signing in at the console: by name and password once operators exist, else with the
station's one operator password (set at the first start)."""

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

from evcms_desktop.domain.attempts import TRIES, lock_span
from evcms_desktop.store import operators
from evcms_desktop.ui.roles import MIN_PASSWORD_LENGTH, OPERATOR_KEY, Credentials, Role, Session

log = logging.getLogger(__name__)


def _password_field() -> QLineEdit:
    field = QLineEdit()
    field.setEchoMode(QLineEdit.EchoMode.Password)
    return field


class SignInDialog(QDialog):
    """Accepted once the sign-in checked out (or the station password was set).

    Named (the store has operators, or `named`): the session takes the operator's name and
    role, which may be attendant. Otherwise the station's password makes it operator.
    Wrong attempts count on the session: after a few the dialog checks nothing for a while.
    """

    failed = Signal()

    def __init__(
        self,
        session: Session,
        reason: str = "",
        parent: QWidget | None = None,
        *,
        name: str = "",
        named: bool | None = None,
    ) -> None:
        super().__init__(parent)
        self.session = session
        self.credentials: Credentials = session.credentials
        self.named = operators.any_operator() if named is None else named
        self.first_time = not self.named and not self.credentials.has_operator_password()
        self.task: asyncio.Task[None] | None = None
        self.operator_tries: int | None = None  # before the named operator is locked
        if self.named:
            title, text = "Sign in", reason or "Sign in with your name and password."
        elif self.first_time:
            title = "Set the operator password"
            text = (
                "No operator password is set yet. Choose one now: operator actions (remote"
                f" start and stop, reset, settings) need it. At least {MIN_PASSWORD_LENGTH}"
                " characters."
            )
        else:
            title = "Operator sign-in"
            text = reason or "Operator actions need the operator password."
        self.setWindowTitle(title)
        intro = QLabel(text)
        intro.setWordWrap(True)
        self.name = QLineEdit(name or session.operator or "")
        self.name.setMaxLength(operators.MAX_NAME)
        self.password = _password_field()
        self.password.setMaxLength(operators.MAX_PASSWORD)
        self.repeat = _password_field()
        self.error = QLabel()
        self.error.setObjectName("fieldError")
        self.error.setWordWrap(True)
        form = QFormLayout()
        if self.named:
            form.addRow("Name", self.name)
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
        (self.password if self.name.text() or not self.named else self.name).setFocus()
        self._say_locked()

    def _say_locked(self) -> bool:
        """While wrong sign-ins lock this console: say for how long; True then."""
        left = self.session.attempts.seconds_locked()
        if left:
            self.error.setText(f"Too many wrong sign-ins: try again in {lock_span(left)}.")
        return bool(left)

    def submit(self) -> None:
        password = self.password.text()
        if self.first_time:
            if len(password) < MIN_PASSWORD_LENGTH:
                self.error.setText(f"Use at least {MIN_PASSWORD_LENGTH} characters.")
                return
            if password != self.repeat.text():
                self.error.setText("The two passwords differ.")
                return
        elif self._say_locked():
            self.password.clear()
            return
        name = self.name.text().strip()
        if self.named and not operators.NAME.fullmatch(name):
            self.error.setText("Type your operator name (letters, digits, . _ @ -).")
            return
        self.ok.setEnabled(False)
        self.error.setText("Checking…")
        self.task = asyncio.ensure_future(self._submit(name, password))

    async def _submit(self, name: str, password: str) -> None:
        role: Role | None = None
        try:
            if self.first_time:
                await self.credentials.set_secret(OPERATOR_KEY, password)
                log.info("Operator password set")
                role = Role.OPERATOR
            elif self.named:
                now = self.session.attempts.clock()
                if left := operators.seconds_locked(name, now):
                    self.password.clear()
                    self.error.setText(operators.locked_text(name, left))
                    return
                digest = operators.stored_hash(name)  # one row; the hash check is the slow part
                loop = asyncio.get_running_loop()
                matches = await loop.run_in_executor(
                    None, operators.password_matches, digest, password
                )
                self.operator_tries = operators.count_sign_in(name, matches, now)
                if matches:
                    role = operators.role_of(name)
            elif await self.credentials.check(OPERATOR_KEY, password):
                role = Role.OPERATOR
        finally:
            self.ok.setEnabled(True)
        if role is None:
            self._wrong(name)
            return
        if self.named and (refusal := self.session.refuses_site_of(name)) is not None:
            log.warning("Console sign-in refused for %r: another site's", name)
            self.password.clear()
            self.error.setText(refusal)
            return
        self.session.attempts.succeeded()
        if self.named:
            self.session.sign_in_as(name, role)
        else:
            self.session.set_role(role)
        self.accept()

    def _wrong(self, name: str) -> None:
        log.warning("Console sign-in refused%s", f" for {name!r}" if self.named else "")
        self.password.clear()
        left = self.session.attempts.failed()
        if self.named and self.operator_tries == 0:  # the operator's lock, kept in the store
            log.warning("Sign-ins of %r locked after %d wrong tries", name, TRIES)
            now = self.session.attempts.clock()
            self.error.setText(operators.locked_text(name, operators.seconds_locked(name, now)))
        elif left:
            what = "name or password" if self.named else "password"
            self.error.setText(f"Wrong {what}. {left} {'try' if left == 1 else 'tries'} left.")
        else:
            log.warning("Console sign-in locked after %d wrong tries", self.session.attempts.tries)
            self._say_locked()
        self.failed.emit()
