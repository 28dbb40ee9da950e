"""The running console collects cyclic garbage on the GUI thread, never on a worker thread."""

from __future__ import annotations

import gc
import threading

from evcms_desktop.app.console import collected_on_gui_thread


class _Cycle:
    """Records the thread that destroys it (as a Qt object in a cycle would be destroyed)."""

    def __init__(self, seen: list[str]) -> None:
        self.me = self
        self.seen = seen

    def __del__(self) -> None:
        self.seen.append(threading.current_thread().name)


def test_cycles_made_on_a_worker_are_collected_on_the_gui_thread(qtbot) -> None:
    seen: list[str] = []
    kept: list[list[int]] = []
    gui = threading.current_thread().name

    def worker() -> None:
        for _ in range(20):
            _Cycle(seen)
        # Enough live containers to pass the first generation's threshold: with automatic
        # collection on, the collector would run here, on this thread.
        kept.extend([] for _ in range(5 * gc.get_threshold()[0]))

    with collected_on_gui_thread():
        assert not gc.isenabled()
        thread = threading.Thread(target=worker, name="store-writer")
        thread.start()
        thread.join()
        qtbot.waitUntil(lambda: len(seen) == 20, timeout=5000)
    assert gc.isenabled()
    assert set(seen) == {gui}
