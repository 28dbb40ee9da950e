"""Dialogs of the console. Each is shown with open() and answers with signals."""
