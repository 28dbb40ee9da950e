"""EVCMS Desktop: an operator console for EV charging sites, with an OCPP 1.6J central system."""

__version__ = "0.1.0"
APP_NAME = "EVCMS Desktop"
