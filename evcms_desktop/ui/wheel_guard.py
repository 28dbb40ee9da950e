"""Scrolling a long form with the mouse wheel must not change the values under the pointer.

Qt hands a wheel event to the spin box or combo box under the pointer even when it does not
have the focus, so scrolling the Settings page turned whatever passed under the pointer. The
guard lets such a widget take the wheel only once it has the focus (clicked or tabbed into);
otherwise the event goes on to the scroll area.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QAbstractSpinBox, QComboBox, QWidget


class WheelGuard(QObject):
    """An event filter that passes wheel events of unfocused value widgets to their parent."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            event.type() == QEvent.Type.Wheel
            and isinstance(watched, QWidget)
            and not watched.hasFocus()
        ):
            event.ignore()
            return True
        return super().eventFilter(watched, event)


def guard_wheel(form: QWidget) -> WheelGuard:
    """Install one guard on every spin box and combo box inside `form`."""
    guard = WheelGuard(form)
    for widget in (*form.findChildren(QAbstractSpinBox), *form.findChildren(QComboBox)):
        widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        widget.installEventFilter(guard)
    return guard
