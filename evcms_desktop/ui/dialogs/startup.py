"""At the start of a console on a deployment's PostgreSQL database: run the central system
on this computer, or attach to the nodes that already run it. The choice may be
remembered per database (QSettings), and asked again with `--choose`."""

from __future__ import annotations

import asyncio
import enum
import hashlib
import logging

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from evcms_desktop import APP_NAME

log = logging.getLogger(__name__)


class StartupChoice(enum.StrEnum):
    RUN_HERE = "run-here"
    ATTACH = "attach"


def console_settings() -> QSettings:
    """The console's own settings for this user (Qt's place for them on each system)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, APP_NAME, "console")


def _key(database: str) -> str:
    """Per database, by a digest: a URL's slashes would nest QSettings groups."""
    return "startup/" + hashlib.sha256(database.encode()).hexdigest()[:24]


def remembered_choice(settings: QSettings, database: str) -> StartupChoice | None:
    value = settings.value(_key(database))
    try:
        return StartupChoice(str(value)) if value is not None else None
    except ValueError:  # a hand-edited or foreign value: ask again
        return None


def remember_choice(settings: QSettings, database: str, choice: StartupChoice | None) -> None:
    if choice is None:
        settings.remove(_key(database))
    else:
        settings.setValue(_key(database), choice.value)
    settings.sync()


class StartupDialog(QDialog):
    """Asks how this console works with `database` (shown without its password)."""

    def __init__(self, database: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Start {APP_NAME}")
        intro = QLabel(
            f"<b>{database}</b> is a deployment's database. How should this console work with it?"
        )
        intro.setWordWrap(True)
        self.run_here = QRadioButton("Run the central system here")
        here_text = QLabel(
            "This computer is a node: chargers connect to it, and the console shows them."
        )
        self.attach = QRadioButton("Attach to the deployment")
        attach_text = QLabel(
            "Sign in as an operator and watch and command every site from this desk; the"
            " nodes that run the central system carry out the commands."
        )
        for text in (here_text, attach_text):
            text.setWordWrap(True)
            text.setIndent(24)
            text.setObjectName("hint")
        group = QButtonGroup(self)
        group.addButton(self.run_here)
        group.addButton(self.attach)
        self.attach.setChecked(True)
        self.remember = QCheckBox("Remember my choice for this database")
        self.remember.setToolTip(
            "Start the same way next time; `evcms-desktop --choose` asks again."
        )
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok.setText("Continue")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        for widget in (self.run_here, here_text, self.attach, attach_text, self.remember):
            layout.addWidget(widget)
        layout.addWidget(buttons)
        self.setMinimumWidth(480)

    @property
    def choice(self) -> StartupChoice:
        return StartupChoice.RUN_HERE if self.run_here.isChecked() else StartupChoice.ATTACH


async def shown(dialog: QDialog) -> bool:
    """Open `dialog` (window-modal, without a nested event loop) and wait: True if accepted."""
    done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    dialog.finished.connect(lambda result: done.done() or done.set_result(result))
    dialog.open()
    return await done == QDialog.DialogCode.Accepted.value


async def startup_choice(
    database: str, settings: QSettings, *, ask_again: bool = False
) -> StartupChoice | None:
    """The remembered choice, else the person's (None: they cancelled)."""
    if ask_again:
        remember_choice(settings, database, None)
    elif (choice := remembered_choice(settings, database)) is not None:
        return choice
    log.info("Asking whether this console runs the central system or attaches")
    dialog = StartupDialog(database)
    if not await shown(dialog):
        return None
    if dialog.remember.isChecked():
        remember_choice(settings, database, dialog.choice)
    return dialog.choice
