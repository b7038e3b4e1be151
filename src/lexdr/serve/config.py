"""``lexdr serve`` settings: where it listens and the limits every request is held to."""

from __future__ import annotations

from dataclasses import dataclass

from lexdr.errors import ConfigError
from lexdr.settings import at_least, setting

__all__ = ["ServeConfig"]


@dataclass(frozen=True)
class ServeConfig:
    host: str = setting("127.0.0.1", "Address to bind (127.0.0.1: this machine only; 0.0.0.0: every interface).")
    port: int = setting(8000, "Port to listen on (0: any free port; the startup line names it).")
    max_k: int = setting(100, "Largest k a request may ask for (more is refused with 422).")
    query_char_limit: int = setting(1000, "Longest query, in characters (longer is refused with 422).")
    max_batch_queries: int = setting(256, "Most queries in one /api/search/batch request.")
    max_body_bytes: int = setting(1_000_000, "Largest request body (larger is refused with 413 before it is parsed).")
    max_batch: int = setting(64, "Most queries encoded (or searched) together in one micro-batch.")
    encode_batch: int = setting(16, "Queries per encoder forward inside a micro-batch: the micro-batch is sorted by "
                                    "length and cut into forwards of this many, so short queries are not padded to "
                                    "the longest (7 % less CPU a query than one forward of 32 on e5-small, "
                                    "benchmarks/results/serve_load.md).")
    max_wait_ms: float = setting(5.0, "How long a micro-batch waits for more queries after its first one.")
    torch_threads: int | None = setting(None, "Threads per encoder forward (torch.set_num_threads); None: torch's "
                                               "default. On a machine shared with other work, 1 can be several times "
                                               "faster (benchmarks/results/serve_load.md).")
    compare_depth: int = setting(100, "The page's side-by-side view: how deep each system is searched to give "
                                      "the rank of the other systems' top hits.")

    def __post_init__(self) -> None:
        at_least(self, ("max_k", "query_char_limit", "max_batch_queries", "max_batch", "encode_batch", "compare_depth"), 1)
        at_least(self, ("port",), 0)
        at_least(self, ("torch_threads",), 1, optional=True)
        at_least(self, ("max_body_bytes",), 1024)
        at_least(self, ("max_wait_ms",), 0)
        if self.port > 65535:
            raise ConfigError(f"port must be <= 65535, got {self.port}")
