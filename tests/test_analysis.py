"""Language analyzers: hand-checked terms on real sentences, the registry, config round trips, batching."""

from __future__ import annotations

import json

import pytest

from lexdr.analysis import (
    SUPPORTED_LANGUAGES,
    Analyzer,
    analyzer_from_config,
    default_analyzer_name,
    get_analyzer,
    list_analyzers,
)
from lexdr.analysis import batch as batch_mod
from lexdr.analysis.arabic import normalize_arabic, stem_arabic_light
from lexdr.analysis.indic import normalize_bengali, normalize_hindi, normalize_indic, stem_hindi, stem_telugu
from lexdr.analysis.normalize import decimal_digits, turkish_lower
from lexdr.analysis.tokenizers import cjk_bigram_tokens, word_tokens
from lexdr.errors import ConfigError, LexdrError

# One real sentence per language (used for the round-trip test over every analyzer).
SENTENCES = {
    "ar": "ذَهَبَ الطالبُ إلى المكتبة والمدرسة وكتبها بالقلم",
    "bn": "বাংলাদেশের রাজধানী ঢাকা শহরে অনেক মানুষ বাস করেন।",
    "en": "The cats' owners were running; John's car isn't here.",
    "fi": "Suomen pääkaupunki on Helsinki, ja taloissa asuu ihmisiä.",
    "id": "Ibu kota Indonesia adalah Jakarta dan mereka bermain di pantai.",
    "ja": "東京都に住んでいます。コンピューターを買った。",
    "ko": "한국어 형태소 분석기를 사용합니다.",
    "ru": "Столица России — Москва, где живут миллионы людей.",
    "sw": "Nairobi ni mji mkuu wa Kenya na watu wengi wanaishi huko.",
    "te": "తెలుగు భాష దక్షిణ భారతదేశంలో మాట్లాడతారు",
    "th": "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย",
    "de": "Die Hauptstadt Deutschlands ist Berlin; Häuser und Bäume.",
    "el": "Η πρωτεύουσα της Ελλάδας είναι η Αθήνα.",
    "es": "La capital de España es Madrid y las ciudades son grandes.",
    "hi": "भारत की राजधानी नई दिल्ली है और लड़कियाँ किताबें पढ़ती हैं।",
    "tr": "Türkiye'nin başkenti Ankara ve İstanbul'da kitaplar var.",
    "vi": "Thủ đô của Việt Nam là Hà Nội.",
    "zh": "中华人民共和国的首都是北京。",
}


# --------------------------------------------------------------------------------------- hand-checked terms
@pytest.mark.parametrize(
    "lang, text, expected",
    [
        # Lucene EnglishAnalyzer: possessive removed, 'the' stopped, Porter stemming.
        ("en", "The cats' owners were running; John's car", ["cat", "owner", "were", "run", "john", "car"]),
        # Arabic: diacritics dropped, teh marbuta -> heh, prefixes ال/وال/بال/و and suffixes ه/ها stripped,
        # 'إلى' is a stop word.
        ("ar", SENTENCES["ar"], ["ذهب", "طالب", "مكتب", "مدرس", "كتب", "قلم"]),
        # Japanese (default): CJK unigrams + bigrams, the run broken at the full stop.
        ("ja", "東京都に住む。", ["東", "東京", "京", "京都", "都", "都に", "に", "に住", "住", "住む", "む"]),
        # Korean: content morphemes only (particle 를, verb suffix 하 and ending ㅂ니다 dropped).
        ("ko", SENTENCES["ko"], ["한국어", "형태소", "분석기", "사용"]),
        # Thai: dictionary words; เป็น and ของ are stop words.
        ("th", SENTENCES["th"], ["กรุงเทพมหานคร", "เมืองหลวง", "ประเทศ", "ไทย"]),
        # Russian Snowball; 'где' is a stop word.
        ("ru", SENTENCES["ru"], ["столиц", "росс", "москв", "живут", "миллион", "люд"]),
        # German: stop words die/ist/und, Snowball folds umlauts.
        ("de", SENTENCES["de"], ["hauptstadt", "deutschland", "berlin", "haus", "baum"]),
        # Greek: accents and final sigma folded before stop words and Snowball.
        ("el", SENTENCES["el"], ["πρωτευ", "ελλαδ", "αθην"]),
        # Indonesian: derivational prefix ber- removed, 'adalah'/'dan'/'mereka'/'di' stopped.
        ("id", SENTENCES["id"], ["ibu", "kota", "indonesia", "jakarta", "main", "panta"]),
        ("fi", SENTENCES["fi"], ["suome", "pääkaupunk", "helsink", "talo", "asu", "ihmis"]),
        # Hindi: nukta and virama removed, long -> short vowels, candrabindu -> anusvara, light stemming.
        ("hi", "लड़कियाँ किताबें पढ़ती हैं", ["लडक", "किताब", "पढत"]),
        # Chinese: character unigrams + overlapping bigrams; 'Beijing' passes through lowercased.
        ("zh", "北京市 Beijing", ["北", "北京", "京", "京市", "市", "beijing"]),
        # Vietnamese: syllables.
        ("vi", SENTENCES["vi"], ["thủ", "đô", "của", "việt", "nam", "là", "hà", "nội"]),
    ],
)
def test_language_default_terms(lang, text, expected):
    assert get_analyzer(lang)(text) == expected


def test_japanese_segmenter_analyzer():
    # particles/auxiliaries dropped, verbs to dictionary form, katakana long-vowel mark stemmed
    assert get_analyzer("ja", "fugashi")(SENTENCES["ja"]) == ["東京", "都", "住む", "コンピュータ", "買う"]
    assert get_analyzer("zh", "cjk-bigram")("中华人民共和国") == ["中华", "华人", "人民", "民共", "共和", "和国"]


def test_turkish_casing_apostrophe_and_stemming():
    terms = get_analyzer("tr")(SENTENCES["tr"])
    assert "istanbul" in terms and "kitap" in terms  # İ -> i (not i + U+0307), "'da" dropped, -lar stemmed
    assert "ve" not in terms
    assert turkish_lower("IĞDIR İzmir") == "ığdır izmir"


def test_stopword_removal_is_switchable():
    with_stop = get_analyzer("es", "snowball")(SENTENCES["es"])
    without = get_analyzer("es", "snowball-keepstop")(SENTENCES["es"])
    assert "la" not in with_stop and "de" not in with_stop
    assert "la" in without and "de" in without


def test_arabic_normalizer_and_stemmer_rules():
    assert normalize_arabic("أإآى") == "اااي"
    assert normalize_arabic("كـتـاب") == "كتاب"  # tatweel
    assert normalize_arabic("مَدْرَسَة") == "مدرسه"  # harakat removed, teh marbuta -> heh
    assert stem_arabic_light("وقت") == "وقت"  # the one-letter prefix و needs a 4-letter word
    assert stem_arabic_light("ولد") == "ولد"
    assert stem_arabic_light("الكتابات") == "كتاب"  # ال + ات


def test_indic_normalizers_and_stemmers():
    assert normalize_indic("\u0915\u093c") == "\u0958"  # KA + nukta -> QA
    assert normalize_indic("\u09a4\u09cd\u200d") == "\u09ce"  # Bengali khanda ta
    assert normalize_hindi("\u0958") == "\u0915"  # QA -> KA (nukta folded)
    assert normalize_hindi("हिन्दी") == "हिंदि"  # dead NA -> anusvara, long i -> short
    assert normalize_bengali("শহর") == "সহর"  # all sibilants -> sa
    assert stem_hindi("लडकियां") == "लडक"
    assert stem_telugu("తెలుగు") == "తెలుగ"
    assert get_analyzer("bn")("বাংলাদেশের মানুষ") == ["বাংলাদেস", "মানুস"]


def test_tokenizer_keeps_marks_joins_and_splits_cjk():
    assert word_tokens("नमस्ते दुनिया") == ["नमस्ते", "दुनिया"]  # vowel signs/virama stay in the word
    assert word_tokens("don't U.S. 3.14 1,000 a,b") == ["don't", "U.S", "3.14", "1,000", "a", "b"]
    assert word_tokens("東京タワー") == ["東", "京", "タワー"]
    assert cjk_bigram_tokens("東京 x 中") == ["東京", "x", "中"]
    assert decimal_digits("١٩٩٠ ৫") == "1990 5"


# --------------------------------------------------------------------------------------- registry
def test_every_supported_language_has_a_working_default():
    assert set(SUPPORTED_LANGUAGES) >= {"ar", "bn", "en", "fi", "id", "ja", "ko", "ru", "sw", "te", "th",
                                        "de", "el", "es", "hi", "tr", "vi", "zh"}
    for lang in SUPPORTED_LANGUAGES:
        analyzer = get_analyzer(lang)
        assert analyzer.name == default_analyzer_name(lang) == list_analyzers(lang)[0]
        assert analyzer(SENTENCES[lang]), lang


def test_unknown_language_error_lists_codes_and_fallbacks():
    with pytest.raises(LexdrError) as err:
        get_analyzer("xx")
    msg = str(err.value)
    for code in ("ar", "ja", "sw", "zh"):
        assert code in msg
    assert "unicode" in msg and "subword" in msg
    with pytest.raises(LexdrError, match="available"):
        get_analyzer("en", "no-such-analyzer")


def test_generic_unicode_analyzer_works_for_any_language():
    assert get_analyzer("qu", "unicode")("Allillanchu, Mamá!") == ["allillanchu", "mamá"]
    assert get_analyzer("PT-br", "unicode").lang == "pt"


@pytest.mark.parametrize("lang", sorted(SENTENCES))
def test_to_config_round_trip(lang):
    for name in list_analyzers(lang):
        if name == "subword":
            continue
        analyzer = get_analyzer(lang, name)
        config = json.loads(json.dumps(analyzer.to_config()))
        rebuilt = analyzer_from_config(config)
        assert rebuilt == analyzer
        assert rebuilt(SENTENCES[lang]) == analyzer(SENTENCES[lang])


def test_from_config_rejects_bad_configs():
    config = get_analyzer("en").to_config()
    with pytest.raises(ConfigError, match="unknown analyzer config keys"):
        Analyzer.from_config({**config, "colour": "blue"})
    with pytest.raises(ConfigError, match="unknown token filter"):
        Analyzer.from_config({**config, "token_filters": ["nope"]})
    with pytest.raises(ConfigError, match="newer"):
        Analyzer.from_config({**config, "config_version": 99})


# --------------------------------------------------------------------------------------- subword fallback
@pytest.fixture(scope="module")
def tiny_tokenizer_dir(tmp_path_factory):
    """A real (tiny) Hugging Face tokenizer folder: WordPiece over a handful of pieces."""
    tokenizers = pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    vocab = {"[UNK]": 0, "hel": 1, "##lo": 2, "world": 3, "!": 4, "x": 5}
    tok = tokenizers.Tokenizer(tokenizers.models.WordPiece(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.BertPreTokenizer()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]")
    path = tmp_path_factory.mktemp("tok")
    fast.save_pretrained(path)
    return str(path)


def test_subword_analyzer_from_a_tokenizer_folder(tiny_tokenizer_dir):
    analyzer = get_analyzer("yo", "subword", tokenizer=tiny_tokenizer_dir)
    assert analyzer("Hello world!") == ["hel", "##lo", "world"]  # lowercased; '!' dropped
    assert analyzer.analyze_batch(["Hello world!", "x"]) == [["hel", "##lo", "world"], ["x"]]
    texts = [f"Hello world {i}! x" if i % 3 else "" for i in range(2100)]  # more than one chunk of the batch path
    assert analyzer._analyze_many(texts) == [analyzer(t) for t in texts]
    rebuilt = analyzer_from_config(json.loads(json.dumps(analyzer.to_config())))
    assert rebuilt.tokenizer_path == tiny_tokenizer_dir and rebuilt("hello") == ["hel", "##lo"]


def test_subword_analyzer_missing_tokenizer_says_how_to_fix(tmp_path):
    analyzer = get_analyzer("yo", "subword", tokenizer=str(tmp_path / "nope"))
    with pytest.raises(LexdrError, match="tokenizer folder"):
        analyzer("hello")


# --------------------------------------------------------------------------------------- batches
def test_analyze_batch_in_worker_processes_keeps_order(monkeypatch):
    monkeypatch.setattr(batch_mod, "MIN_PARALLEL_CHARS", 0)
    analyzer = get_analyzer("ja", "fugashi")
    texts = [f"{i}番目の文書は東京について書かれています。" if i % 2 else "猫が好きです。" for i in range(40)]
    assert analyzer.analyze_batch(texts, n_jobs=2, chunk_size=7) == [analyzer(t) for t in texts]


@pytest.mark.parametrize("lang", sorted(SENTENCES))
def test_batch_analysis_equals_one_text_at_a_time(lang):
    """The batch path (each distinct token analyzed once, in chunks) gives every analyzer's terms exactly as a
    call on one text does, stop words and empty texts included."""
    texts = [SENTENCES[lang], SENTENCES[lang].upper(), "", SENTENCES["en"], "U.S. 1,000 don't 3.14",
             *(" ".join(SENTENCES[lang].split()[: i % 5 + 1]) for i in range(7))]
    for name in list_analyzers(lang):
        if name == "subword":
            continue
        analyzer = get_analyzer(lang, name)
        expected = [analyzer(t) for t in texts]
        assert analyzer._analyze_many(texts) == expected, name
        memo: dict = {}
        chunks = list(analyzer.token_chunks(texts, size=3))
        for chunk in chunks:
            analyzer.learn_terms(chunk, memo)
        assert [[memo[t] for t in tokens if memo[t]] for chunk in chunks for tokens in chunk] == expected, name


def test_batch_analysis_stems_each_distinct_token_once(monkeypatch):
    from lexdr.analysis.stemmers import Stemmer

    stemmed: list[str] = []
    real = Stemmer.__call__
    monkeypatch.setattr(Stemmer, "__call__", lambda self, tokens: stemmed.extend(tokens) or real(self, tokens))
    analyzer = get_analyzer("en")
    texts = ["running cats and running dogs", "the dogs were running", "cats"] * 50
    terms = analyzer._analyze_many(texts)
    assert terms[0] == ["run", "cat", "run", "dog"]
    assert sorted(stemmed) == ["cats", "dogs", "running", "were"]  # once each; stop words never reach it


@pytest.mark.parametrize("text", ["The cats' owners don't run; U.S. 3.14 and 1,000 or 1,a a.b.c 'x' _y_ z99",
                                  SENTENCES["en"], SENTENCES["id"], "a''b a..b ,1,2, 12,34,56 .5 x."])
def test_ascii_fast_path_matches_the_unicode_word_pattern(text):
    from lexdr.analysis.tokenizers import _word_re

    assert text.isascii()
    assert word_tokens(text) == _word_re().findall(text)
