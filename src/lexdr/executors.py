"""Where per-shard work runs: in this process (``local``) or on a Ray cluster (``ray``).

The stage functions cut their work into shards and hand them to an :class:`Executor`; the shard files they
write are the same either way, so a stage is done when all its shards exist, whichever executor wrote them, and
a killed run (local or Ray) resumes from the finished shards. Two kinds of per-shard work exist:

* **Tasks** (:meth:`Executor.map_ordered`): a plain function over a stream of argument tuples, at most
  ``in_flight`` at once, results in submission order (BM25 analysis shards of
  :func:`lexdr.sparse.build_out_of_core`). Locally a process pool (the ``initializer`` runs once per worker);
  on Ray, Ray tasks (the ``initializer`` runs once per Ray worker process and is cached there).
* **Stateful actors** (:meth:`Executor.map_actors`): a class built once per worker (it holds a model) and
  called on batches of rows, each row one shard that the call writes to disk (dense encoding, generation).
  Locally one instance in this process; on Ray, Ray Data ``map_batches`` with
  ``compute=ray.data.ActorPoolStrategy(size=actors)`` and ``num_gpus``/``num_cpus`` per actor.

Ray is an optional extra (``pip install 'lexdr[cluster]'``), imported only when ``executor = "ray"``. Every
worker must see the run folder at the same path (one machine, or a shared filesystem on a cluster) and have
lexdr installed; nothing is sent between workers but shard numbers and the shards' text.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Protocol, runtime_checkable

from lexdr.errors import ConfigError
from lexdr.settings import at_least, setting

__all__ = ["ExecutorKind", "ClusterSettings", "ExecutorSpec", "Executor", "LocalExecutor", "RayExecutor",
           "RAY_INSTALL", "QUERIES_PER_SHARD", "require_ray", "resolve_executor"]

logger = logging.getLogger(__name__)

RAY_INSTALL = "pip install 'lexdr[cluster]'"

# Queries per shard when a stage hands queries to a distributed executor (the search of every retriever kind,
# mining). Fewer are handled in the driver, in one batch: a shard boundary changes how a dense retriever
# batches queries, which moves scores in the last float digits.
QUERIES_PER_SHARD = 10_000


class ExecutorKind(str, enum.Enum):
    local = "local"
    ray = "ray"


@dataclass(frozen=True)
class ClusterSettings:
    """The ``[cluster]`` section: resources per kind of shard work on Ray (ignored by the local executor).
    None of them changes a result, so none is fingerprinted."""

    encode_actors: int = setting(1, "Dense encoding: actors, each holding the encoder (one per GPU).",
                                 fingerprint=False)
    encode_num_gpus: float = setting(0.0, "Dense encoding: GPUs per actor (1 on a GPU cluster; 0 = CPU).",
                                     fingerprint=False)
    encode_num_cpus: float = setting(1.0, "Dense encoding: CPUs per actor (tokenization runs on them).",
                                     fingerprint=False)
    generate_actors: int = setting(1, "Generation: actors, each holding the generator.", fingerprint=False)
    generate_num_gpus: float = setting(0.0, "Generation: GPUs per actor.", fingerprint=False)
    generate_num_cpus: float = setting(1.0, "Generation: CPUs per actor.", fingerprint=False)
    analysis_tasks: int = setting(2, "BM25 analysis: shards in flight at once (Ray tasks); the driver's memory "
                                     "bound divides [bm25] max_docs_in_memory by it.", fingerprint=False)
    analysis_num_cpus: float = setting(1.0, "BM25 analysis: CPUs per task.", fingerprint=False)
    ray_temp_dir: str | None = setting(None, "Where a Ray instance this run starts keeps its session files, logs "
                                             "and spilled objects (None: Ray's default, /tmp/ray). A short path: "
                                             "Ray's sockets live under it. A cluster joined with ray_address "
                                             "keeps the one its `ray start --temp-dir` chose.", fingerprint=False)

    def __post_init__(self) -> None:
        at_least(self, ("encode_actors", "generate_actors", "analysis_tasks"), 1)
        at_least(self, ("encode_num_gpus", "generate_num_gpus", "encode_num_cpus", "generate_num_cpus",
                        "analysis_num_cpus"), 0)


@dataclass(frozen=True)
class ExecutorSpec:
    """Which executor the pipeline's stages use: a frozen value the stage graph can carry (the Ray connection
    itself is made by :func:`resolve_executor`, once per process, when a stage first needs it)."""

    kind: ExecutorKind = ExecutorKind.local
    address: str | None = None  # None: start (or join) Ray on this machine; "auto": the running cluster
    cluster: ClusterSettings = field(default_factory=ClusterSettings)


@runtime_checkable
class Executor(Protocol):
    cluster: ClusterSettings

    @property
    def distributed(self) -> bool: ...

    def map_ordered(self, fn: Callable[..., Any], args: Iterable[tuple], *, in_flight: int, num_cpus: float = 1.0,
                    initializer: Callable[..., None] | None = None, initargs: tuple = ()) -> Iterator[Any]: ...

    def map_actors(self, cls: type, rows: Iterable[dict], *, ctor_args: tuple = (), actors: int = 1,
                   num_cpus: float = 1.0, num_gpus: float = 0.0) -> Iterator[dict]: ...


class LocalExecutor:
    """This machine: a process pool for tasks, one instance in this process for stateful work."""

    distributed = False

    def __init__(self, cluster: ClusterSettings | None = None, mp_context: Any = None):
        self.cluster = cluster or ClusterSettings()
        self.mp_context = mp_context

    def map_ordered(self, fn: Callable[..., Any], args: Iterable[tuple], *, in_flight: int, num_cpus: float = 1.0,
                    initializer: Callable[..., None] | None = None, initargs: tuple = ()) -> Iterator[Any]:
        """``fn(*a)`` for each ``a`` in ``args`` (consumed lazily), in a pool of ``in_flight`` processes with at
        most ``in_flight`` calls pending; results in the order of ``args``."""
        pending: deque = deque()
        with ProcessPoolExecutor(max_workers=in_flight, mp_context=self.mp_context, initializer=initializer,
                                 initargs=initargs) as pool:
            for a in args:
                if len(pending) >= in_flight:  # bounded: wait for the oldest before reading more
                    yield pending.popleft().result()
                pending.append(pool.submit(fn, *a))
            while pending:
                yield pending.popleft().result()

    def map_actors(self, cls: type, rows: Iterable[dict], *, ctor_args: tuple = (), actors: int = 1,
                   num_cpus: float = 1.0, num_gpus: float = 0.0) -> Iterator[dict]:
        """One ``cls(*ctor_args)`` here, called on each row as a batch of one."""
        worker = None
        for row in rows:
            worker = worker or cls(*ctor_args)
            yield worker({k: [v] for k, v in row.items()})


# Ray worker processes are reused across tasks: an initializer runs again only when a task needs other initial
# arguments than the last one this process ran (it sets that process's global state, as in a process pool).
_initialized: list[tuple] = []


def _call_in_ray_worker(initializer: Callable[..., None] | None, initargs: tuple, fn: Callable[..., Any],
                        args: tuple) -> Any:
    if initializer is not None:
        key = (initializer.__module__, initializer.__qualname__, repr(initargs))
        if _initialized != [key]:
            initializer(*initargs)
            _initialized[:] = [key]
    return fn(*args)


def require_ray() -> Any:
    """The ``ray`` module, or a ConfigError naming the install line."""
    try:
        import ray
        import ray.data  # noqa: F401  (the Data library is part of the extra)
    except ImportError as e:
        raise ConfigError(f'executor = "ray" needs Ray with Ray Data, which is not installed ({e}); install it with '
                          f"{RAY_INSTALL}, or set [run] executor = \"local\"") from None
    return ray


class RayExecutor:
    """A Ray cluster: Ray tasks for :meth:`map_ordered`, Ray Data actor pools for :meth:`map_actors`.

    Joins the Ray instance this process already started (``ray.init`` in a test or a notebook); otherwise
    connects to ``address`` (``"auto"``: the cluster ``ray start`` made on this node; ``None``: a fresh local
    instance with every CPU and GPU of this machine)."""

    distributed = True

    def __init__(self, address: str | None = None, cluster: ClusterSettings | None = None,
                 show_progress: bool = False):
        self.ray = require_ray()
        self.cluster = cluster or ClusterSettings()
        if not self.ray.is_initialized():
            extra = {"_temp_dir": str(Path(self.cluster.ray_temp_dir).expanduser().resolve())} \
                if self.cluster.ray_temp_dir and address is None else {}
            self.ray.init(address=address, include_dashboard=False, **extra)
            logger.info("Ray: connected to %s (%s)", address or "a new local instance",
                        self.ray.cluster_resources())
        self.ray.data.DataContext.get_current().enable_progress_bars = show_progress

    def map_ordered(self, fn: Callable[..., Any], args: Iterable[tuple], *, in_flight: int, num_cpus: float = 1.0,
                    initializer: Callable[..., None] | None = None, initargs: tuple = ()) -> Iterator[Any]:
        """``fn(*a)`` as Ray tasks (``num_cpus`` each), at most ``in_flight`` pending, results in order."""
        remote = self.ray.remote(_call_in_ray_worker).options(num_cpus=num_cpus)
        pending: deque = deque()
        for a in args:
            if len(pending) >= in_flight:
                yield self.ray.get(pending.popleft())
            pending.append(remote.remote(initializer, initargs, fn, a))
        while pending:
            yield self.ray.get(pending.popleft())

    def map_actors(self, cls: type, rows: Iterable[dict], *, ctor_args: tuple = (), actors: int = 1,
                   num_cpus: float = 1.0, num_gpus: float = 0.0) -> Iterator[dict]:
        """Ray Data ``map_batches(cls, batch_size=1, compute=ActorPoolStrategy(size=actors), num_gpus=...)`` over
        ``rows`` (one row per shard); yields each call's output row. Rows enter Ray's object store in chunks of
        64, so this process never holds more than 64 shards' rows at once (the object store spills to disk)."""
        data = self.ray.data
        parts, chunk = [], []
        for row in rows:
            chunk.append(row)
            if len(chunk) == 64:
                parts.append(data.from_items(chunk))
                chunk = []
        if chunk:
            parts.append(data.from_items(chunk))
        if not parts:
            return
        ds = parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]
        out = ds.map_batches(cls, fn_constructor_args=ctor_args, batch_size=1, batch_format="numpy",
                             compute=data.ActorPoolStrategy(size=actors), num_cpus=num_cpus, num_gpus=num_gpus)
        yield from out.iter_rows()


def resolve_executor(executor: Executor | ExecutorSpec | None = None, show_progress: bool = False) -> Executor:
    """The executor that runs every stage of a run: an :class:`ExecutorSpec` (what the stage graph's config
    carries) made into one, once, by the pipeline (:func:`lexdr.pipeline.run.run_stages`); ``None`` or the
    local kind give a :class:`LocalExecutor`, the ray kind a :class:`RayExecutor` (one Ray connection per
    process). An executor object is returned as it is. Stage functions are always given an object: none of
    them checks for ``None``."""
    if executor is None:
        return LocalExecutor()
    if isinstance(executor, ExecutorSpec):
        if executor.kind is ExecutorKind.local:
            return LocalExecutor(executor.cluster)
        return RayExecutor(executor.address, executor.cluster, show_progress=show_progress)
    return executor
