"""The console's tabs and panels."""
