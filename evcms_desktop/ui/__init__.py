"""The Qt front end: windows, dialogs, table models and charts."""
