"""A charge-box simulator: one or many OCPP 1.6J charge points, for tests, demos and load."""
