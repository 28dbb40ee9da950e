"""Qt item models over the store and the central system's events."""

from PySide6.QtCore import Qt

SORT_ROLE = Qt.ItemDataRole.UserRole
ROW_ROLE = Qt.ItemDataRole.UserRole + 1
