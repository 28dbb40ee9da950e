"""The words an empty chart shows in its middle, so that it is not read as a flat line."""

from __future__ import annotations

import pyqtgraph as pg

HINT_COLOUR = "#6b7280"


class EmptyHint:
    """A centred note on a plot ("No meter values yet"), kept in the middle of whatever
    range the plot shows and never counted in its auto-range."""

    def __init__(self, plot: pg.PlotItem, text: str) -> None:
        self.plot = plot
        self.item = pg.TextItem(text, color=HINT_COLOUR, anchor=(0.5, 0.5))
        plot.addItem(self.item, ignoreBounds=True)
        plot.vb.sigRangeChanged.connect(self._centre)
        self._centre()

    def _centre(self) -> None:
        (x0, x1), (y0, y1) = self.plot.vb.viewRange()
        self.item.setPos((x0 + x1) / 2, (y0 + y1) / 2)

    def show(self, visible: bool, text: str | None = None) -> None:
        if text is not None:
            self.item.setText(text)
        self.item.setVisible(visible)

    @property
    def text(self) -> str:
        return self.item.textItem.toPlainText()

    def isVisible(self) -> bool:
        return self.item.isVisible()
