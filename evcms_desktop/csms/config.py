"""The central system's settings: where it listens, its limits against abuse, its timers."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from evcms_desktop.csms.protocol import DEFAULT_PATH_PREFIX, DEFAULT_PORT

Clock = Callable[[], datetime]
SET_ASIDE_FILE = "set-aside-rows.jsonl"  # rows the store refused, in the data directory
STORE_TROUBLE_PREFIX = "The store cannot commit"  # how its events begin


@dataclass
class CsmsConfig:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT  # 0: any free port (see CentralSystem.port)
    path_prefix: str = DEFAULT_PATH_PREFIX
    security_profile: int = 0  # 0 none, 1 Basic auth, 2 TLS + Basic auth
    tls_cert: Path | None = None
    tls_key: Path | None = None
    accept_unknown: bool = False
    # Firmware and diagnostics over HTTP (HTTPS with security profile 2), on its own port
    # (0: any free one, see `CentralSystem.transfers.port`); None: not served.
    file_port: int | None = 0
    max_upload_bytes: int = 20 * 1024 * 1024  # a larger diagnostics upload is refused
    strict: bool = False  # refuse what the tolerant reading would repair (per charger too)
    # Limits against abuse.
    max_frame_bytes: int = 64 * 1024  # larger frames get a CALLERROR
    max_websocket_message: int = 1024 * 1024  # larger ones close the connection (1009)
    rate_per_second: float = 20.0
    rate_burst: int = 60
    # A charger refused another burst's worth of messages in a row is disconnected (1008)
    # and refused at the handshake (HTTP 429) for this long.
    rate_cooldown_seconds: float = 60.0
    # Refusals and reports of one charger: this many events per interval, then one event
    # with the count of the rest (the Event table and the log grow by a bounded amount).
    report_interval_seconds: float = 60.0
    reports_per_interval: int = 5
    # Refused handshakes: a few lines per address per interval, the rest summed up; an
    # address refused too often in one is answered 429 until it ends (csms.refusals).
    refusal_interval_seconds: float = 10.0
    max_connections: int = 10_000
    max_pending: int = 50  # unknown chargers waiting for approval (accept_unknown)
    password_checks: int = 2  # passwords checked at once, in threads off the loop
    # Wrong passwords, per (charger id, source address) and per address: after `free`
    # failures each attempt waits a doubling delay (from 1 s, at most `auth_max_delay`);
    # after `lock_after` failures the address is locked out (of that id) for
    # `auth_lockout`. Per id only the delay, for addresses that have failed.
    auth_free_failures: int = 3
    auth_lock_after: int = 10
    auth_address_factor: int = 5  # an address (many chargers behind one router) gets 5x
    auth_max_delay: timedelta = timedelta(seconds=60)
    auth_lockout: timedelta = timedelta(minutes=30)
    auth_forget_after: timedelta = timedelta(minutes=15)  # failures this old are forgotten
    auth_table_size: int = 10_000  # ids and addresses remembered, each (oldest dropped)
    # Timing.
    heartbeat_seconds: int = 300
    pending_retry_seconds: int = 60
    response_timeout: float = 30.0
    ping_interval: float | None = 60.0  # WebSocket pings; None: no dead-connection check
    ping_timeout: float | None = 60.0  # a pong later than this closes the connection
    tick_seconds: float = 5.0
    authorize_grace: timedelta | None = None  # None: the station's setting (15 min)
    stop_grace: timedelta = timedelta(0)  # after the booked end, before RemoteStop
    stop_retry: timedelta = timedelta(minutes=1)
    # After the booked end (and the stop), before a car still plugged in is told to move.
    overstay_grace: timedelta = timedelta(minutes=10)
    reservation_lead: timedelta = timedelta(minutes=15)
    probe_features: bool = True  # ask each booted charger for SupportedFeatureProfiles
    command_poll_seconds: float = 0.5  # how often the command queue is read
    node: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    node_heartbeat_seconds: float = 2.0  # several nodes on PostgreSQL: how often each beats
    node_expiry: timedelta = timedelta(seconds=10)  # a node silent this long is dead
    # The loop waits this long for PostgreSQL's answer to a node's own query (leadership,
    # routing); then that work waits, with a log line, and the chargers are still answered.
    node_store_timeout: float = 5.0
    event_retention_days: int = 90  # older events are pruned
    prune_interval_seconds: float = 3600.0
    # The loop's own store work (the timers' reads) waits no longer for a lock: SQLite's
    # busy timeout, PostgreSQL's lock_timeout; then that step is skipped until the next tick.
    loop_busy_timeout_ms: int = 250
    # The store writer's rounds: each waits this long for a lock, and the next comes this
    # long after one that failed. A message waiting to be stored while the store is locked
    # is answered InternalError once its own round fails: after the rest of the round
    # running when it came, the pause and a round of its own, so within
    # 2 * store_lock_timeout + store_retry_pause (4.5 s) and the machine's scheduling
    # delay (README, "The central system"; benchmarks/store_faults.py measures it).
    store_lock_timeout: float = 2.0
    store_retry_pause: float = 0.5
