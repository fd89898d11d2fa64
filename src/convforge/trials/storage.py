"""Optuna storages as convforge opens them: heartbeats, retries of dead workers' trials, safe SQLite.

A trial whose process stops beating for ``grace_s`` seconds is failed, and a copy of
it is queued again (at most ``max_retry`` times). On SQLite every transaction starts
with ``BEGIN IMMEDIATE``: Optuna takes a waiting trial by reading it and then marking
it running, and SQLite ignores the row lock that makes this safe on PostgreSQL or
MySQL, so without it two processes can both take the same trial.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

from convforge.errors import ConvforgeError, InvalidValueError

SQLITE = "sqlite:///"


def storage_url(storage: str | Path) -> str:
    """A database URL from a URL or a plain file path (which means SQLite, made absolute)."""
    text = str(storage)
    if "://" in text:
        return text
    return f"{SQLITE}{Path(text).resolve()}"


def _retry_callback(max_retry: int) -> dict[str, Any]:
    """The RDBStorage keyword for Optuna's retry of stale trials (its name changed in Optuna 4.9)."""
    import inspect

    import optuna
    from optuna.storages import RDBStorage

    if "heartbeat_stale_trial_callback" in inspect.signature(RDBStorage).parameters:
        return {"heartbeat_stale_trial_callback": optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry)}
    return {"failed_trial_callback": optuna.storages.RetryFailedTrialCallback(max_retry)}


def retry_callback(storage: Any):
    """The storage's callback that queues a copy of a failed trial (None without one)."""
    return getattr(storage, "heartbeat_stale_trial_callback", None) or getattr(storage, "failed_trial_callback", None)


def _serialise_sqlite(engine: Any) -> None:
    """Make every SQLite transaction take the write lock up front (see the module documentation)."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _connect(connection: Any, _record: Any) -> None:
        connection.isolation_level = None  # the driver's own BEGIN is replaced by the one below
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened while the tables were created reopen with the settings above


def check_heartbeat(heartbeat_s: int, grace_s: int) -> None:
    """Heartbeats every ``heartbeat_s`` seconds (a positive integer), judged dead after ``grace_s`` > ``heartbeat_s``
    seconds of silence: a shorter grace would fail live workers' trials."""
    if isinstance(heartbeat_s, bool) or not isinstance(heartbeat_s, int) or heartbeat_s < 1:
        raise InvalidValueError(f"the heartbeat interval must be a positive whole number of seconds, "
                                f"got {heartbeat_s!r}")  # fmt: skip
    if isinstance(grace_s, bool) or not isinstance(grace_s, int) or grace_s <= heartbeat_s:
        raise InvalidValueError(
            f"the grace period ({grace_s!r} s) must be a whole number of seconds longer than the heartbeat interval "
            f"({heartbeat_s} s), or live workers' trials count as dead"
        )


def open_storage(storage: str | Path, heartbeat_s: int = 10, grace_s: int = 30, max_retry: int = 2):
    """An Optuna ``RDBStorage`` at ``storage`` (a URL or an SQLite file path), with heartbeats every
    ``heartbeat_s`` seconds and a dead worker's trial queued again after ``grace_s`` seconds of silence."""
    import optuna
    import sqlalchemy
    from optuna.storages import RDBStorage

    check_heartbeat(heartbeat_s, grace_s)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    url = storage_url(storage)
    sqlite = url.startswith(SQLITE)
    if sqlite:
        Path(url[len(SQLITE) :]).parent.mkdir(parents=True, exist_ok=True)
    engine = {"connect_args": {"timeout": 60}} if sqlite else {"pool_pre_ping": True}
    for attempt in range(3):
        try:
            opened = RDBStorage(url, engine_kwargs=engine, heartbeat_interval=heartbeat_s, grace_period=grace_s,
                                **_retry_callback(max_retry))  # fmt: skip
            break
        except sqlalchemy.exc.DatabaseError as err:
            if attempt < 2 and _created_meanwhile(err):  # another process made the tables first: they are there now
                time.sleep(0.2)
                continue
            raise ConvforgeError(f"could not open the trial storage {url!r}: {err}") from err
        except (
            sqlalchemy.exc.ArgumentError,
            sqlalchemy.exc.NoSuchModuleError,
            ImportError,
            ValueError,
            RuntimeError,
        ) as err:  # fmt: skip - no driver, a bad URL, another schema version
            raise ConvforgeError(f"could not open the trial storage {url!r}: {err}") from err
    if sqlite:
        _serialise_sqlite(opened.engine)
    return opened


def _created_meanwhile(err: Exception) -> bool:
    """Whether ``err`` says that another process created the storage's tables at the same moment."""
    import sqlalchemy

    return isinstance(err, sqlalchemy.exc.IntegrityError) or "already exists" in str(err)


def study_names(storage: Any) -> list[str]:
    """The names of the studies a storage holds."""
    import optuna

    return optuna.get_all_study_names(storage)
