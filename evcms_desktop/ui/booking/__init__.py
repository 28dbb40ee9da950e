"""The booking flow (request, plans, confirmation), shared by the console dialog and the kiosk."""
