"""The gradient cache (Gao et al. 2021, "Scaling deep contrastive learning batch size under memory limited
setup"): embed a batch in chunks without a graph, compute the loss on the embeddings, then re-embed each chunk
with a graph and back-propagate its cached embedding gradient. Peak memory is one chunk of ``chunk`` sequences
whatever the batch size; the gradient equals the full-batch gradient (dropout masks are replayed by restoring
the RNG state recorded for each chunk).

When a slice fits in one chunk, :meth:`GradientCache.embed` with ``keep_graph=True`` keeps the graph of the only
forward pass instead: the cache's second forward would cost a third of the step for nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["GradientCache", "Embedded", "encode"]


def _rng_state(device) -> tuple:
    # Dropout draws from the generator of the device the model runs on: on a GPU that is the CUDA
    # generator, which torch.get_rng_state() does not cover; replaying only the CPU state would give the
    # second (graph) pass different dropout masks than the cached first pass.
    import torch

    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return torch.get_rng_state(), cuda


def _set_rng_state(device, state: tuple) -> None:
    import torch

    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)


def encode(model, features: dict, bf16: bool):
    """Sentence embeddings (float32, with a graph unless under ``no_grad``) of model-ready ``features``, the
    forward under bfloat16 autocast when ``bf16``."""
    import torch

    features = {k: (v.to(model.device, non_blocking=True) if hasattr(v, "to") else v) for k, v in features.items()}
    with torch.autocast(device_type=model.device.type, dtype=torch.bfloat16, enabled=bf16):
        emb = model(features)["sentence_embedding"]
    return emb.float()


@dataclass
class Embedded:
    """One slice's embeddings: ``value`` (with its graph when kept) and what replaying it needs."""

    value: object
    keys: list
    inputs: object
    graph: bool
    rng_states: list = field(default_factory=list)


class GradientCache:
    def __init__(self, model, chunk: int, bf16: bool):
        self.model, self.chunk, self.bf16 = model, chunk, bf16

    def _empty(self):
        import torch

        dim = (getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension)()
        return torch.zeros((0, dim), device=self.model.device)

    def embed(self, keys: list, inputs, keep_graph: bool) -> Embedded:
        """Embed the texts ``keys`` name in ``inputs`` (:mod:`lexdr.training.tokens`: ``features(keys)``): in one
        forward with its graph (``keep_graph``), else chunk by chunk without a graph, recording each chunk's RNG
        state for :meth:`backward`."""
        import torch

        if not keys:
            return Embedded(self._empty(), keys, inputs, graph=False)
        if keep_graph:
            return Embedded(encode(self.model, inputs.features(keys), self.bf16), keys, inputs, graph=True)
        out = Embedded(None, keys, inputs, graph=False)
        chunks = []
        for start in range(0, len(keys), self.chunk):
            out.rng_states.append(_rng_state(self.model.device))
            with torch.no_grad():
                part = inputs.features(keys[start:start + self.chunk])
                chunks.append(encode(self.model, part, self.bf16).detach())
        out.value = torch.cat(chunks)
        return out

    def backward(self, pairs: list[tuple[Embedded, object]]) -> None:
        """Back-propagate each slice's embedding gradient into the model: kept graphs in one call, cached slices
        by re-embedding each chunk with a graph under its recorded RNG state."""
        import torch

        graphs = [(e.value, g) for e, g in pairs if e.graph and e.value.requires_grad]
        if graphs:
            torch.autograd.backward([v for v, _ in graphs], [g for _, g in graphs])
        for e, grad in pairs:
            if e.graph or not e.rng_states:
                continue
            for n, start in enumerate(range(0, len(e.keys), self.chunk)):
                part = e.keys[start:start + self.chunk]
                _set_rng_state(self.model.device, e.rng_states[n])
                encode(self.model, e.inputs.features(part), self.bf16).backward(gradient=grad[start:start + len(part)])
