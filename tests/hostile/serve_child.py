"""A central system in a process of its own, for the hard-kill test: prints its port."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from evcms_desktop.csms.server import CentralSystem, CsmsConfig
from evcms_desktop.store.database import open_database


async def serve(path: Path) -> None:
    db = open_database(path)
    config = CsmsConfig(
        data_dir=path.parent,
        port=0,
        security_profile=0,
        probe_features=False,
        rate_per_second=10_000,
        rate_burst=10_000,
    )
    cs = CentralSystem(config, db)
    await cs.start()
    sys.stdout.write(f"PORT {cs.port}\n")
    sys.stdout.flush()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve(Path(sys.argv[1])))
