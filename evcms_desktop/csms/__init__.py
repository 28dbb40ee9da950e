"""The OCPP 1.6J central system: asyncio code with no Qt in it, run headless or by the console."""
