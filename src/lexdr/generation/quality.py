"""What kind of query a generator wrote: a copied span, or a question.

Two per-query measures, written to each row of the generation stage's ``generated.jsonl`` and summed up in
its ``stats.json`` (and the report's generated samples):

* :func:`copy_ratio`: the longest run the query shares with its passage (normalized text, see
  :func:`lexdr.generation.filters.normalize_text`), relative to the *query's* length. 1.0 is a span cut out of
  the passage (what ``passage-cut`` writes by construction); a paraphrased question scores low.
* :func:`is_question`: the query ends with a question mark (``?``, ``？``, ``؟``, Greek ``;``), starts with
  ``¿``, or holds a question word of its language (a short list per language; for scripts written without
  spaces — ja, zh, th — a substring, otherwise whole words, e.g. Vietnamese "bao nhiêu"). A heuristic: it misses a question phrased
  as a statement and counts an "apa" used as a relative word; good enough to tell a generator that asks from
  one that copies.
"""

from __future__ import annotations

import difflib
import re

from lexdr.generation.filters import normalize_text

__all__ = ["copy_ratio", "is_question", "QUESTION_WORDS"]

# Question words by language code: whole words for spaced scripts (lower-cased), substrings for ja/zh/th.
QUESTION_WORDS: dict[str, tuple[str, ...]] = {
    "en": ("what", "who", "whom", "whose", "which", "when", "where", "why", "how"),
    "de": ("was", "wer", "wen", "wem", "wessen", "welche", "welcher", "welches", "welchen", "welchem", "wann",
           "wo", "woher", "wohin", "warum", "wieso", "weshalb", "wie", "wieviel", "wozu", "womit", "wodurch"),
    "es": ("qué", "quién", "quiénes", "cuál", "cuáles", "cuándo", "dónde", "adónde", "cómo", "cuánto", "cuánta",
           "cuántos", "cuántas"),
    "el": ("τι", "ποιος", "ποια", "ποιο", "ποιοι", "ποιες", "ποιον", "ποιας", "ποιου", "ποιων", "πότε", "πού",
           "πώς", "γιατί", "πόσος", "πόση", "πόσο", "πόσα", "πόσοι", "πόσες", "πόσων"),
    "hi": ("क्या", "कौन", "किस", "किसने", "किसका", "किसकी", "किसके", "किसे", "कब", "कहाँ", "कहां", "क्यों", "कैसे",
           "कैसा", "कैसी", "कितना", "कितने", "कितनी", "कौनसा", "कौनसी"),
    "tr": ("ne", "neden", "niçin", "nasıl", "nerede", "nereye", "nereden", "neresi", "kim", "kimin", "kime",
           "hangi", "kaç", "mı", "mi", "mu", "mü", "mıdır", "midir", "mudur", "müdür"),
    "vi": ("gì", "ai", "nào", "đâu", "mấy", "tại sao", "vì sao", "bao nhiêu", "bao giờ", "thế nào", "là sao"),
    "id": ("apa", "apakah", "siapa", "siapakah", "kapan", "kapankah", "mana", "dimana", "manakah", "mengapa",
           "kenapa", "bagaimana", "bagaimanakah", "berapa", "berapakah", "di mana"),
    "ja": ("何", "なに", "なん", "誰", "だれ", "どこ", "いつ", "どの", "どれ", "どう", "なぜ", "幾", "いくつ", "いくら",
           "どんな", "どちら", "か。", "か？"),
    "zh": ("什么", "谁", "哪", "几", "多少", "怎么", "怎样", "为什么", "吗", "呢", "何", "是否", "甚麼", "為什麼", "嗎"),
    "th": ("อะไร", "ใคร", "เมื่อไร", "เมื่อไหร่", "ที่ไหน", "ทำไม", "อย่างไร", "ยังไง", "เท่าไร", "เท่าไหร่", "กี่", "ไหม",
           "หรือไม่", "ใด"),
    "ko": ("무엇", "뭐", "누구", "언제", "어디", "왜", "어떻게", "몇", "얼마", "무슨", "어느", "어떤"),
    "ar": ("ما", "ماذا", "من", "متى", "أين", "لماذا", "كيف", "كم", "هل", "أي", "ماهو", "ماهي"),
    "ru": ("что", "кто", "когда", "где", "почему", "как", "сколько", "какой", "какая", "какое", "какие", "каком",
           "какого", "зачем", "куда", "откуда", "чей", "ли"),
    "fi": ("mikä", "mitä", "mitkä", "kuka", "ketkä", "kenen", "milloin", "missä", "mistä", "mihin", "miksi",
           "miten", "kuinka", "montako", "minkä", "millä", "mille", "kumpi"),
    "bn": ("কি", "কী", "কে", "কোন", "কোনটি", "কখন", "কোথায়", "কেন", "কীভাবে", "কিভাবে", "কত", "কাকে", "কার"),
    "sw": ("nini", "nani", "lini", "wapi", "vipi", "ngapi", "gani", "kwanini", "kwa nini", "je"),
    "te": ("ఏమిటి", "ఏది", "ఎవరు", "ఎప్పుడు", "ఎక్కడ", "ఎందుకు", "ఎలా", "ఎన్ని", "ఎంత", "ఏ"),
}
_UNSPACED = {"ja", "zh", "th"}
_QUESTION_MARKS = ("?", "？", "؟", ";", ";")
_WORD = re.compile(r"\w+", re.UNICODE)


def copy_ratio(query: str, passage: str) -> float:
    """Longest run shared with the passage / query length, on normalized text (0.0 for an empty query)."""
    q, p = normalize_text(query), normalize_text(passage)
    if not q or not p:
        return 0.0
    match = difflib.SequenceMatcher(None, q, p, autojunk=False).find_longest_match(0, len(q), 0, len(p))
    return match.size / len(q)


def is_question(query: str, lang: str | None = None) -> bool:
    """True when ``query`` reads as a question (mark or question word, see the module docstring).

    ``lang`` picks the word list; None (or a language without a list) checks the marks and every list.
    """
    text = query.strip()
    if not text:
        return False
    if text.endswith(_QUESTION_MARKS) or text.startswith("¿"):
        return True
    langs = [lang] if lang in QUESTION_WORDS else list(QUESTION_WORDS)
    lowered = text.casefold()
    padded = f" {' '.join(_WORD.findall(lowered))} "  # whole words (and word sequences) match with spaces around
    for code in langs:
        if code in _UNSPACED:
            if any(w in text for w in QUESTION_WORDS[code]):
                return True
        elif any(f" {w} " in padded for w in QUESTION_WORDS[code]):
            return True
    return False
