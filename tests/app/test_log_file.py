"""The log file degrades quietly when it cannot be written (a full disk) and resumes; each
node of a PostgreSQL deployment has its own, and --log-file chooses it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from evcms_desktop.app.cli import build_parser, config_from_args
from evcms_desktop.app.config import log_path
from evcms_desktop.app.log_file import QuietFileHandler

FULL = Path("/dev/full")  # every write fails with ENOSPC, as on a full disk


@pytest.mark.skipif(not FULL.exists(), reason="needs /dev/full")
def test_a_full_disk_stops_the_log_in_one_line_and_it_resumes(tmp_path: Path, capsys):
    """With the disk full every log call printed a "--- Logging error ---" traceback."""
    path = tmp_path / "evcms-desktop.log"
    path.symlink_to(FULL)
    handler = QuietFileHandler(path)
    logger = logging.getLogger("evcms_desktop.test_log_file")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        for i in range(50):
            logger.warning("line %d", i)
        err = capsys.readouterr().err
        assert "Logging error" not in err and "Traceback" not in err
        assert err.count("\n") == 1 and "stopped" in err, err
        path.unlink()  # space again: the same name, now a file that can be written
        logger.warning("after")
        assert "resumed" in capsys.readouterr().err
        handler.flush()
        assert path.read_text(encoding="utf-8") == "after\n"
    finally:
        logger.removeHandler(handler)
        handler.close()


def _config(*args: str):
    return config_from_args(build_parser().parse_args(list(args)))


def test_each_postgresql_node_logs_to_its_own_file(tmp_path: Path):
    """With a postgresql:// --db every node wrote one shared file in the user's folder."""
    one = log_path(_config("--db", "postgresql://u@h/evcms", "--port", "9000", "--headless"))
    two = log_path(_config("--db", "postgresql://u@h/evcms", "--port", "9100", "--headless"))
    assert one != two and one.parent == two.parent
    assert one.name.startswith("evcms-desktop-") and one.name.endswith("-9000.log")
    sqlite = log_path(_config("--db", str(tmp_path / "a.sqlite3")))
    assert sqlite == tmp_path / "evcms-desktop.log"
    chosen = tmp_path / "mine.log"
    assert log_path(_config("--db", "postgresql://u@h/evcms", "--log-file", str(chosen))) == chosen
