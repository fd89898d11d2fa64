"""A store of trials for sweeps: SQLite on one machine, PostgreSQL across many.

Each trial is a row: its study, a key, its configuration, a status (``pending``,
``running``, ``done``, ``failed``), the worker that owns it, a heartbeat and, once
finished, its result. Workers claim trials with a compare-and-set update, so two
workers never run the same trial, whichever database holds the table. A trial whose
worker died (its process is gone, or its heartbeat stopped) is claimed again; a
finished one never is. Results are written in one transaction, so none is lost or half
written. A trial whose worker died ``max_attempts`` times is marked failed rather than
handed on again.

Staleness compares the clocks of the machines involved: keep them in sync (NTP) to
well within ``stale_after_s``. Workers are told apart by ``host:pid``, so containers
that share a host name but not a process namespace need distinct host names.

The URL is an SQLAlchemy one: ``sqlite:///path/to/trials.db`` (a plain file path works
too) or ``postgresql+psycopg://user:pass@host/db`` for many machines.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convforge.errors import ConvforgeError

STATUSES = ("pending", "running", "done", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS convforge_trials (
    study TEXT NOT NULL,
    key TEXT NOT NULL,
    position INTEGER NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL,
    owner TEXT,
    heartbeat DOUBLE PRECISION,
    attempts INTEGER NOT NULL DEFAULT 0,
    started DOUBLE PRECISION,
    finished DOUBLE PRECISION,
    result TEXT,
    error TEXT,
    PRIMARY KEY (study, key)
)
"""


@dataclass
class Trial:
    """One row of the store."""

    key: str
    config: dict[str, Any]
    status: str
    attempts: int
    owner: str | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    started: float | None = None
    finished: float | None = None


def worker_id() -> str:
    """This process's owner tag: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _process_gone(owner: str | None) -> bool:
    """Whether ``owner`` (host:pid) names a process on this host that no longer exists."""
    if not owner or owner.count(":") != 1:
        return False
    host, pid = owner.split(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:  # a zombie (exited, not yet reaped) is gone too
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def database_url(storage: str | Path) -> str:
    """An SQLAlchemy URL from a URL or a plain file path (which means SQLite)."""
    text = str(storage)
    return text if "://" in text else f"sqlite:///{Path(text).resolve()}"


class TrialStore:
    """Trials of any number of studies in one database (see the module documentation)."""

    def __init__(self, storage: str | Path, stale_after_s: float = 120.0, max_attempts: int = 3) -> None:
        import sqlalchemy as sa

        self.url = database_url(storage)
        self.stale_after_s = stale_after_s
        self.max_attempts = max_attempts
        self._sa = sa
        try:
            if self.url.startswith("sqlite:///"):
                Path(self.url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
                self.engine = sa.create_engine(self.url, connect_args={"timeout": 60})
                sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            else:
                self.engine = sa.create_engine(self.url, pool_pre_ping=True)
            self._create_table()
        except (sa.exc.ArgumentError, sa.exc.OperationalError, sa.exc.NoSuchModuleError, ImportError) as err:
            raise ConvforgeError(f"could not open the trial store {self.url!r}: {err}") from None

    def _create_table(self) -> None:
        sa = self._sa
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.text(_SCHEMA))
        except (sa.exc.IntegrityError, sa.exc.ProgrammingError):
            # several machines creating the table at once: one wins, the others find it there
            if not sa.inspect(self.engine).has_table("convforge_trials"):
                raise

    def _run(self, sql: str, **params: Any):
        with self.engine.begin() as conn:
            return conn.execute(self._sa.text(sql), params)

    # ------------------------------------------------------------ writing

    def add(self, study: str, configs: dict[str, dict[str, Any]]) -> int:
        """Add the trials ``{key: config}`` that the study lacks; returns how many were new.

        A key already stored with a different configuration is refused: the study's
        results would otherwise silently mix two settings.
        """
        rows = self._run("SELECT key, config FROM convforge_trials WHERE study = :s", s=study).all()
        existing = {row.key: json.loads(row.config) for row in rows}
        for key, config in configs.items():
            old = existing.get(key)
            if old is not None and old != json.loads(json.dumps(config)):
                changed = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
                detail = ", ".join(f"{k}: {old.get(k)!r} → {config.get(k)!r}" for k in changed)
                raise ConvforgeError(
                    f"study {study!r} in {self.url} already has trial {key} with other settings ({detail}); "
                    "use another output folder or database, or name the grid differently"
                )
        new = [(k, c) for k, c in configs.items() if k not in existing]
        if not new:
            return 0
        start = self._run("SELECT COALESCE(MAX(position), -1) FROM convforge_trials WHERE study = :s", s=study)
        first = int(start.scalar()) + 1
        rows = [
            {"s": study, "k": key, "p": first + i, "c": json.dumps(config, sort_keys=True)}
            for i, (key, config) in enumerate(new)
        ]
        with self.engine.begin() as conn:
            conn.execute(
                self._sa.text(
                    "INSERT INTO convforge_trials (study, key, position, config, status, attempts) "
                    "VALUES (:s, :k, :p, :c, 'pending', 0) ON CONFLICT (study, key) DO NOTHING"
                ),
                rows,
            )
        return len(new)

    def claim(self, study: str, owner: str, scope: tuple[str, ...] | None = None) -> Trial | None:
        """Take the next trial to run (pending, or abandoned by a dead worker); None when there is none.

        ``scope`` limits the choice to keys starting with one of the given prefixes.
        """
        while True:
            now = time.time()
            candidates = [
                c
                for c in self._run(
                    "SELECT key, status, owner, heartbeat, attempts FROM convforge_trials WHERE study = :s "
                    "AND status IN ('pending', 'running') ORDER BY position",
                    s=study,
                ).all()
                if _in_scope(c.key, scope)
            ]
            chosen = next((c for c in candidates if c.status == "pending"), None)
            if chosen is None:
                chosen = next((c for c in candidates if self._abandoned(c.owner, c.heartbeat, now)), None)
            if chosen is None:
                return None
            same = (
                "WHERE study = :s AND key = :k AND status = :status AND COALESCE(owner, '') = :old "
                "AND COALESCE(heartbeat, -1) = :hb"  # unchanged since it was judged: no live owner loses it
            )
            params = dict(s=study, k=chosen.key, status=chosen.status, old=chosen.owner or "",
                          hb=chosen.heartbeat if chosen.heartbeat is not None else -1)  # fmt: skip
            if chosen.status == "running" and chosen.attempts >= self.max_attempts:
                self._run(
                    "UPDATE convforge_trials SET status = 'failed', finished = :t, error = :e " + same,
                    t=now, e=f"its worker died {chosen.attempts} times while running it", **params,
                )  # fmt: skip
                continue
            claimed = self._run(
                "UPDATE convforge_trials SET status = 'running', owner = :o, heartbeat = :t, started = :t, "
                "attempts = attempts + 1 " + same,
                o=owner, t=now, **params,
            )  # fmt: skip
            if claimed.rowcount == 1:
                return self.get(study, chosen.key)
            # another worker took it first: look again

    def _abandoned(self, owner: str | None, heartbeat: float | None, now: float) -> bool:
        return heartbeat is None or now - heartbeat > self.stale_after_s or _process_gone(owner)

    def beat(self, study: str, key: str, owner: str) -> bool:
        """Tell the others that ``owner`` still works on ``key``; False when the trial is no longer its own."""
        return self._run(
            "UPDATE convforge_trials SET heartbeat = :t WHERE study = :s AND key = :k AND owner = :o "
            "AND status = 'running'",
            t=time.time(), s=study, k=key, o=owner,
        ).rowcount == 1  # fmt: skip

    def finish(self, study: str, key: str, owner: str, result: dict[str, Any]) -> None:
        """Record ``result`` and mark the trial done (a trial already done keeps its first result)."""
        self._run(
            "UPDATE convforge_trials SET status = 'done', result = :r, finished = :t, owner = :o, error = NULL "
            "WHERE study = :s AND key = :k AND status <> 'done'",
            r=json.dumps(result, sort_keys=True), t=time.time(), o=owner, s=study, k=key,
        )  # fmt: skip

    def fail(self, study: str, key: str, owner: str, error: str) -> None:
        """Mark the trial failed with the error's text, unless another worker has taken it over."""
        self._run(
            "UPDATE convforge_trials SET status = 'failed', error = :e, finished = :t WHERE study = :s AND key = :k "
            "AND status = 'running' AND owner = :o",
            e=error[-4000:], t=time.time(), s=study, k=key, o=owner,
        )  # fmt: skip

    def retry_failed(self, study: str, scope: tuple[str, ...] | None = None) -> list[str]:
        """Put failed trials back to pending, with their attempts reset; returns their keys."""
        keys = [t.key for t in self.trials(study, "failed") if _in_scope(t.key, scope)]
        for key in keys:
            self._run(
                "UPDATE convforge_trials SET status = 'pending', owner = NULL, attempts = 0, heartbeat = NULL "
                "WHERE study = :s AND key = :k AND status = 'failed'",
                s=study, k=key,
            )  # fmt: skip
        return keys

    # ------------------------------------------------------------ reading

    def get(self, study: str, key: str) -> Trial:
        row = self._run("SELECT * FROM convforge_trials WHERE study = :s AND key = :k", s=study, k=key).one()
        return _trial(row)

    def trials(self, study: str, status: str | None = None) -> list[Trial]:
        """Every trial of ``study`` (or those with ``status``), in the order they were added."""
        sql = "SELECT * FROM convforge_trials WHERE study = :s"
        params: dict[str, Any] = {"s": study}
        if status is not None:
            sql += " AND status = :st"
            params["st"] = status
        return [_trial(r) for r in self._run(sql + " ORDER BY position", **params).all()]

    def counts(self, study: str, scope: tuple[str, ...] | None = None) -> dict[str, int]:
        """How many trials are in each status."""
        found = dict.fromkeys(STATUSES, 0)
        for row in self._run("SELECT key, status FROM convforge_trials WHERE study = :s", s=study):
            if _in_scope(row.key, scope):
                found[row.status] += 1
        return found

    def busy_elsewhere(self, study: str, scope: tuple[str, ...] | None = None) -> int:
        """Trials that live workers are running now (neither finished nor abandoned)."""
        now = time.time()
        rows = self._run(
            "SELECT key, owner, heartbeat FROM convforge_trials WHERE study = :s AND status = 'running'", s=study
        ).all()
        return sum(_in_scope(r.key, scope) and not self._abandoned(r.owner, r.heartbeat, now) for r in rows)


def _in_scope(key: str, scope: tuple[str, ...] | None) -> bool:
    return scope is None or key.startswith(tuple(scope))


def _trial(row: Any) -> Trial:
    return Trial(
        key=row.key,
        config=json.loads(row.config),
        status=row.status,
        attempts=int(row.attempts),
        owner=row.owner,
        result=json.loads(row.result) if row.result else None,
        error=row.error,
        started=row.started,
        finished=row.finished,
    )


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.close()
