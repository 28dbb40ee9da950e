"""Commands to chargers (central system to charge point), one async method each.

Every method returns a CommandResult and never raises for what a charger does: offline,
a CALLERROR, a timeout or a refusal all come back as a status the UI can show.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ocpp.exceptions import OCPPError
from ocpp.v16 import call

from evcms_desktop.csms.protocol import OcppEndpoint, format_timestamp, to_payload

log = logging.getLogger(__name__)

OFFLINE = "Offline"
TIMED_OUT = "TimedOut"
ERROR = "Error"
NO_DIAGNOSTICS = "NoDiagnostics"
# Answers that mean the charger does (or has done) what was asked.
OK_STATUSES = frozenset({"Accepted", "Unlocked", "Scheduled", "RebootRequired"})


@dataclass(frozen=True)
class CommandResult:
    status: str  # the charger's status, or Offline / TimedOut / Error
    ok: bool
    detail: str = ""
    payload: dict[str, Any] = field(default_factory=dict)


# The connected charger of an id, or None when it is offline.
SessionLookup = Callable[[str], OcppEndpoint | None]


# Passes a command to the node holding a charger that is not connected here (None: none
# does); see csms.nodes.
Route = Callable[[str, Any, float], Awaitable["CommandResult | None"]]


class CommandService:
    def __init__(
        self, lookup: SessionLookup, timeout: float = 30.0, route: Route | None = None
    ) -> None:
        self._lookup = lookup
        self._route = route
        self.timeout = timeout

    async def send(self, cp_id: str, payload: Any, timeout: float | None = None) -> CommandResult:
        """Send any 1.6 call dataclass to a charger and describe the outcome."""
        action = type(payload).__name__
        session = self._lookup(cp_id)
        if session is None:
            routed = None
            if self._route is not None:
                routed = await self._route(cp_id, payload, timeout or self.timeout)
            return routed or CommandResult(OFFLINE, False, f"{cp_id} is not connected")
        try:
            answer = await session.call(payload, timeout=timeout or self.timeout)
        except TimeoutError:
            return CommandResult(TIMED_OUT, False, f"{cp_id} did not answer {action} in time")
        except OCPPError as exc:
            return CommandResult(
                ERROR, False, f"{cp_id} answered {action} with {exc.code}: {exc.description}"
            )
        except ConnectionError as exc:
            return CommandResult(OFFLINE, False, f"{cp_id} disconnected: {exc}")
        except Exception as exc:
            log.exception("%s to %s failed", action, cp_id)
            return CommandResult(ERROR, False, f"{action} to {cp_id} failed: {exc}")
        body = to_payload(answer)
        if action == "GetDiagnostics" and "fileName" not in body:
            # 1.6: no fileName means the charger has no diagnostics to upload.
            return CommandResult(NO_DIAGNOSTICS, False, f"{cp_id} has no diagnostics to upload")
        status = body.get("status", "Accepted")
        ok = status in OK_STATUSES
        log.info("%s to %s: %s", action, cp_id, status)
        return CommandResult(status, ok, "" if ok else f"{cp_id} answered {status}", body)

    async def remote_start(
        self,
        cp_id: str,
        id_tag: str,
        connector_id: int | None = None,
        charging_profile: dict[str, Any] | None = None,
    ) -> CommandResult:
        return await self.send(
            cp_id,
            call.RemoteStartTransaction(
                id_tag=id_tag, connector_id=connector_id, charging_profile=charging_profile
            ),
        )

    async def remote_stop(self, cp_id: str, transaction_id: int) -> CommandResult:
        return await self.send(cp_id, call.RemoteStopTransaction(transaction_id=transaction_id))

    async def reset(self, cp_id: str, kind: str = "Soft") -> CommandResult:
        return await self.send(cp_id, call.Reset(type=kind))

    async def unlock_connector(self, cp_id: str, connector_id: int) -> CommandResult:
        return await self.send(cp_id, call.UnlockConnector(connector_id=connector_id))

    async def change_availability(self, cp_id: str, connector_id: int, kind: str) -> CommandResult:
        """kind: "Operative" or "Inoperative"; connector 0 is the whole charger."""
        return await self.send(cp_id, call.ChangeAvailability(connector_id=connector_id, type=kind))

    async def get_configuration(self, cp_id: str, keys: list[str] | None = None) -> CommandResult:
        return await self.send(cp_id, call.GetConfiguration(key=keys))

    async def change_configuration(self, cp_id: str, key: str, value: str) -> CommandResult:
        return await self.send(cp_id, call.ChangeConfiguration(key=key, value=value))

    async def clear_cache(self, cp_id: str) -> CommandResult:
        return await self.send(cp_id, call.ClearCache())

    async def trigger_message(
        self, cp_id: str, message: str, connector_id: int | None = None
    ) -> CommandResult:
        return await self.send(
            cp_id, call.TriggerMessage(requested_message=message, connector_id=connector_id)
        )

    async def reserve_now(
        self,
        cp_id: str,
        connector_id: int,
        expiry: datetime,
        id_tag: str,
        reservation_id: int,
        parent_id_tag: str | None = None,
    ) -> CommandResult:
        return await self.send(
            cp_id,
            call.ReserveNow(
                connector_id=connector_id,
                expiry_date=format_timestamp(expiry),
                id_tag=id_tag,
                reservation_id=reservation_id,
                parent_id_tag=parent_id_tag,
            ),
        )

    async def send_local_list(
        self, cp_id: str, version: int, entries: list[dict[str, Any]]
    ) -> CommandResult:
        """Replace the charger's local authorization list (`entries` in camelCase)."""
        return await self.send(
            cp_id,
            call.SendLocalList(
                list_version=version, update_type="Full", local_authorization_list=entries
            ),
        )

    async def cancel_reservation(self, cp_id: str, reservation_id: int) -> CommandResult:
        return await self.send(cp_id, call.CancelReservation(reservation_id=reservation_id))

    async def set_charging_profile(
        self, cp_id: str, connector_id: int, profile: dict[str, Any]
    ) -> CommandResult:
        """`profile` is a csChargingProfiles object in the wire's camelCase."""
        return await self.send(
            cp_id,
            call.SetChargingProfile(connector_id=connector_id, cs_charging_profiles=profile),
        )

    async def clear_charging_profile(
        self,
        cp_id: str,
        profile_id: int | None = None,
        connector_id: int | None = None,
        purpose: str | None = None,
        stack_level: int | None = None,
    ) -> CommandResult:
        return await self.send(
            cp_id,
            call.ClearChargingProfile(
                id=profile_id,
                connector_id=connector_id,
                charging_profile_purpose=purpose,
                stack_level=stack_level,
            ),
        )

    async def get_composite_schedule(
        self, cp_id: str, connector_id: int, duration: int, unit: str | None = None
    ) -> CommandResult:
        return await self.send(
            cp_id,
            call.GetCompositeSchedule(
                connector_id=connector_id, duration=duration, charging_rate_unit=unit
            ),
        )

    async def data_transfer(
        self, cp_id: str, vendor_id: str, message_id: str | None = None, data: str | None = None
    ) -> CommandResult:
        return await self.send(
            cp_id, call.DataTransfer(vendor_id=vendor_id, message_id=message_id, data=data)
        )
