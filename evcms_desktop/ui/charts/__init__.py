"""pyqtgraph charts: live meter values, demand per hour, the cost–peak frontier."""
