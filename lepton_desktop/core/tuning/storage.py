"""Where a study's trials live, and the Optuna samplers and pruners it uses.

By default a study lives in Optuna's RDB storage inside the project file
(``sqlite:///ABS/PATH.lepton?timeout=30``), so ``optuna.load_study`` and
``optuna-dashboard`` open a project as it is. ``--storage`` moves it to any Optuna
storage that several machines can share: PostgreSQL or MySQL URLs, another SQLite
file, or a journal file (``journal:///path/study.log`` or a path ending in ``.log``).

RDB storages run a heartbeat per trial: a trial whose process died (SIGKILL, power
loss) is failed after :data:`GRACE_PERIOD_S` and retried once, so the study goes on.
Journal files have no heartbeat in Optuna: a killed process's trial stays RUNNING
there (the study still ends when enough other trials finish).
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import os
import re
import socket
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lepton_desktop.core.errors import InvalidOptionError
from lepton_desktop.core.store.db import BUSY_TIMEOUT_S, engine_options, remember_sqlite_file

if TYPE_CHECKING:
    import optuna

#: Seconds between a running trial's heartbeats in an RDB storage.
HEARTBEAT_INTERVAL_S = 2
#: A running trial without a heartbeat for this long is failed (and retried once).
GRACE_PERIOD_S = 8
#: Connecting to a database server gives up after this many seconds.
CONNECT_TIMEOUT_S = 5
#: Tries at opening a storage whose tables another process is creating right now.
SCHEMA_RACE_ATTEMPTS = 5
_PASSWORD = re.compile(r"(://[^:/@]+):[^@/]*@")


def project_url(path: Path) -> str:
    """The Optuna storage URL of a project file's own studies.

    Optuna's connections wait for a lock as long as the project's own do, instead of
    failing with "database is locked".
    """
    return f"sqlite:///{Path(path).resolve().as_posix()}?timeout={BUSY_TIMEOUT_S:g}"


def redact(url: str | None) -> str:
    """A storage URL fit to print: any password replaced by ``***``."""
    if url is None:
        return "project"
    return _PASSWORD.sub(r"\1:***@", url)


def normalize(url: str | None, project_path: Path) -> str | None:
    """``--storage`` as stored: None for the project file itself, else the URL or path.

    Raises:
        InvalidOptionError: not a URL or a ``.log`` journal path.
    """
    if url is None or not url.strip():
        return None
    url = url.strip()
    if url.startswith("sqlite:///"):
        target = url[len("sqlite:///") :].split("?", 1)[0]
        if target and Path(target).resolve() == Path(project_path).resolve():
            return None  # the project file is the default home anyway
    if "://" in url or url.endswith(".log"):
        return url
    raise InvalidOptionError(
        f"--storage {url}: give a URL such as postgresql://user@host/db, mysql://user@host/db, "
        "sqlite:///file.db, journal:///path/study.log, or a journal file path ending in .log"
    )


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence Optuna's experimental and deprecation warnings around our own calls.

    Heartbeats, retries, GPSampler and constant-liar TPE all warn that they are
    experimental; the warnings name our code, and the test suite turns warnings from
    our code into errors.
    """
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


def open_storage(url: str | None, project_path: Path) -> optuna.storages.BaseStorage:
    """The storage of a study (``url`` None: the project file), heartbeat included.

    Raises:
        InvalidOptionError: the storage cannot be reached or opened, in one line.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if url is None:
        # Optuna's connections hold SQLite locks on the file like ours do.
        remember_sqlite_file(project_path)
        # An encrypted project's connections are opened by the store, with its key.
        engine = engine_options(project_path)
        return _project_pragmas(_rdb(project_url(project_path), "the project file", engine))
    if url.startswith("journal://") or (url.endswith(".log") and "://" not in url):
        return _journal(url)
    return _rdb(with_driver(url), redact(url))


def _project_pragmas(storage: optuna.storages.RDBStorage) -> optuna.storages.RDBStorage:
    """Optuna's connections to the project file get the project's ``synchronous=NORMAL``.

    The file is in WAL mode, where NORMAL stays consistent after a crash (DESIGN §3);
    SQLite's default FULL syncs the disk on every commit, and a trial commits several
    times.
    """
    import sqlalchemy

    def on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.execute("PRAGMA synchronous = NORMAL")

    sqlalchemy.event.listen(storage.engine, "connect", on_connect)
    storage.engine.dispose()  # connections opened before the listener: reopened with it
    return storage


def with_driver(url: str) -> str:
    """``postgresql://`` with the PostgreSQL driver that is installed.

    SQLAlchemy 2.1 reads a bare ``postgresql://`` as psycopg 3; many machines have
    psycopg2 (``psycopg2-binary``) instead. A URL naming its driver is left alone.
    """
    if not url.startswith("postgresql://") or importlib.util.find_spec("psycopg"):
        return url
    if importlib.util.find_spec("psycopg2"):
        return "postgresql+psycopg2://" + url[len("postgresql://") :]
    raise InvalidOptionError(
        f"--storage {redact(url)}: no PostgreSQL driver; pip install 'psycopg[binary]' "
        "or psycopg2-binary"
    )


def _rdb(
    url: str, shown: str, options: dict[str, Any] | None = None
) -> optuna.storages.RDBStorage:
    import optuna
    import sqlalchemy.exc

    engine: dict[str, Any] = dict(options or {})
    if url.startswith("postgresql") or url.startswith("mysql"):
        engine["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    for attempt in range(SCHEMA_RACE_ATTEMPTS):
        try:
            with quiet():
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs=engine or None,
                    heartbeat_interval=HEARTBEAT_INTERVAL_S,
                    grace_period=GRACE_PERIOD_S,
                    **_retry_callback(),
                )
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as exc:
            # Processes meeting a fresh database at once race to create Optuna's
            # tables; the loser finds them made on its next try.
            if attempt + 1 == SCHEMA_RACE_ATTEMPTS:
                raise _unreachable(shown, exc) from None
            time.sleep(0.2 * (attempt + 1))
        except Exception as exc:  # SQLAlchemy, the driver, or Optuna's schema check
            raise _unreachable(shown, exc) from None
    raise AssertionError("unreachable")


def _unreachable(shown: str, exc: BaseException) -> InvalidOptionError:
    return InvalidOptionError(f"--storage {shown}: cannot be opened: {_first_line(exc)}")


def _retry_callback() -> dict[str, Any]:
    import optuna

    # Optuna 4.9 renamed the callback and its argument; older releases know the old ones.
    parameters = inspect.signature(optuna.storages.RDBStorage).parameters
    if "heartbeat_stale_trial_callback" in parameters:
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)
        return {"heartbeat_stale_trial_callback": retry}
    return {"failed_trial_callback": optuna.storages.RetryFailedTrialCallback(max_retry=1)}


def _journal(url: str) -> optuna.storages.JournalStorage:
    import optuna
    from optuna.storages.journal import JournalFileBackend

    path = Path(url[len("journal://") :] if url.startswith("journal://") else url)
    if not path.parent.is_dir():
        raise InvalidOptionError(f"--storage {url}: no such folder {path.parent}")
    try:
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    except OSError as exc:
        raise InvalidOptionError(f"--storage {url}: cannot be opened: {exc}") from None


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def has_heartbeat(storage: optuna.storages.BaseStorage) -> bool:
    """Whether dead trials of this storage are failed by a heartbeat."""
    from optuna.storages._heartbeat import is_heartbeat_enabled

    return is_heartbeat_enabled(storage)


def process_seed(seed: int, index: int, external: bool) -> int:
    """The sampler seed of one trial process.

    The first process of a study in the project file uses ``seed`` itself, so a
    one-process study repeats exactly. Other processes (``--jobs``, other machines
    on a shared storage) must not sample the same sequence: they mix in their
    index, and on shared storages their host and process id.
    """
    if not external:
        return seed + 7919 * index
    mixed = f"{seed}:{index}:{socket.gethostname()}:{os.getpid()}"
    return int.from_bytes(mixed.encode(), "little") % (2**31 - 1)


def make_sampler(
    name: str, space: dict[str, dict[str, Any]], seed: int, *, parallel: bool
) -> optuna.samplers.BaseSampler:
    """The Optuna sampler ``name`` (validated already) for ``space``."""
    import optuna

    from lepton_desktop.core.tuning.space import grid

    with quiet():
        if name == "tpe":
            # constant_liar: parallel workers avoid proposing what another is running.
            return optuna.samplers.TPESampler(seed=seed, constant_liar=parallel)
        if name == "gp":
            return optuna.samplers.GPSampler(seed=seed)
        if name == "grid":
            return optuna.samplers.GridSampler(grid(space), seed=seed)
        if name == "cmaes":
            return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
        return optuna.samplers.RandomSampler(seed=seed)


def make_pruner(name: str, epochs: int | None) -> optuna.pruners.BasePruner:
    """The pruner ``name``, fed by per-epoch validation values."""
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=epochs or "auto", reduction_factor=3
        )
    return optuna.pruners.NopPruner()
