"""pyqtgraph charts: live meter values and demand per hour."""
