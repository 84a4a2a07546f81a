#!/usr/bin/env python3
"""Golden data for the runtime's tokenizer (test/Tokenizer, docs/tokenizer.md).

Writes test/fixtures/tokenizer/:
  corpus.txt                 ~150 kB test corpus (see build_corpus)
  specials.txt               lines with added tokens in the middle of text
  <name>/tokenizer.json      small byte-level BPE tokenizers trained here:
      falcon       Falcon's pre-tokenizer (Punctuation, ByteLevel, Digits,
                   Split "[0-9][0-9][0-9]"), decoder and 12 added tokens;
                   merges as "a b" strings (as in Falcon's own file)
      gpt2         GPT-2's ByteLevel(add_prefix_space=false), <|endoftext|>,
                   ByteLevel post-processor; merges as ["a", "b"] arrays
      gpt2-prefix  gpt2's model with add_prefix_space=true, ignore_merges,
                   and a TemplateProcessing "<|endoftext|> $A <|endoftext|>"
  <name>/corpus.ids          ids of the whole corpus encoded at once (one line)
  <name>/corpus-lines.ids    ids of each corpus line (its "\\n" included)
  <name>/specials.ids        ids of each specials.txt line
  <name>/specials-added.ids  the same with add_special_tokens=True
  <name>/random.ids, random.txt  random id sequences and Hugging Face's
                   decoding of each (lossy UTF-8: a character split across
                   ids becomes U+FFFD); one sequence per line, texts joined
                   with "\\x00\\n" so that they can be told apart

The corpus mixes: English prose (the GPL-3 and Apache-2.0 texts from Debian
12's /usr/share/common-licenses), Python code (Debian 12's
/usr/lib/python3.11/textwrap.py and json/decoder.py), Makefile-style tab
indentation, digit runs, whitespace runs, punctuation, emoji (ZWJ sequences,
skin tones, flags, keycaps) and text in CJK, Cyrillic, Arabic, Devanagari,
Greek, Hebrew, Thai, Korean and Japanese synthesized from the fixed word
lists below with a fixed seed. Offline and deterministic: run it twice and
every file is identical.

Usage: /opt/goldenvenv/bin/python tools/gen_tokenizer_golden.py [--out DIR]
"""
import argparse
import json
import os
import random

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from tokenizers import AddedToken

SOURCES = [
    "/usr/share/common-licenses/GPL-3",
    "/usr/share/common-licenses/Apache-2.0",
    "/usr/lib/python3.11/textwrap.py",
    "/usr/lib/python3.11/json/decoder.py",
]

# Falcon's added tokens (tiiuae/falcon-7b, ids 0-11).
FALCON_SPECIALS = [">>TITLE<<", ">>ABSTRACT<<", ">>INTRODUCTION<<", ">>SUMMARY<<",
                   ">>COMMENT<<", ">>ANSWER<<", ">>QUESTION<<", ">>DOMAIN<<",
                   ">>PREFIX<<", ">>SUFFIX<<", ">>MIDDLE<<", "<|endoftext|>"]

WORDS = {
    "cjk": ["中国", "北京", "我们", "学习", "计算机", "语言", "模型", "数据", "天气", "今天",
            "非常", "好", "的", "是", "在", "有", "人工智能", "东京", "大学", "研究"],
    "japanese": ["こんにちは", "ありがとう", "カタカナ", "ひらがな", "東京", "日本語", "です",
                 "ます", "の", "を", "コンピュータ", "テスト"],
    "korean": ["안녕하세요", "감사합니다", "한국어", "서울", "컴퓨터", "언어", "모델", "학교"],
    "cyrillic": ["привет", "мир", "Москва", "язык", "модель", "данные", "и", "в", "не",
                 "что", "компьютер", "Ёлка", "съешь", "ещё", "этих", "мягких"],
    "arabic": ["مرحبا", "العالم", "اللغة", "العربية", "كتاب", "في", "من", "على", "نموذج",
               "بيانات", "٣٤٥", "١٢"],
    "devanagari": ["नमस्ते", "दुनिया", "भाषा", "हिन्दी", "मॉडल", "और", "है", "में", "क्षत्रिय",
                   "विज्ञान", "१२३"],
    "greek": ["Γειά", "σου", "κόσμε", "γλώσσα", "μοντέλο", "και", "το", "η", "Αθήνα",
              "ψυχή", "ΑΒΓΔ"],
    "hebrew": ["שלום", "עולם", "שפה", "עברית", "מודל", "ו", "של", "ירושלים"],
    "thai": ["สวัสดี", "ภาษา", "ไทย", "โลก", "แบบจำลอง", "ข้อมูล", "กรุงเทพ"],
}
PUNCTUATION = ["«", "»", "„", "“", "”", "—", "–", "…", "¿", "¡", "·", "、", "。", "，",
               "！", "？", "؟", "।", "॥", "(", ")", "[", "]", "{", "}", "'", "\"", "§",
               "¶", "†", "‰", "@", "#", "$", "%", "^", "&", "*", "~", "`", "|", "\\"]
EMOJI = ["😀", "😂", "🥲", "❤️", "👍", "👍🏻", "👍🏽", "👍🏿", "👋🏼", "🧑‍💻", "👩‍❤️‍👨",
         "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇩🇪", "🇯🇵", "🇺🇸", "1️⃣", "#️⃣", "🦅", "🚀", "✨", "🤷🏾‍♀️",
         "🧑🏿‍🦱", "😶‍🌫️", "☕", "©", "™"]
ENGLISH = ["the", "falcon", "model", "token", "quick", "brown", "fox", "jumps", "over",
           "lazy", "dog", "I'm", "you're", "we've", "they'll", "it's", "don't", "she'd",
           "O'Neil", "rock'n'roll", "'quoted'", "''", "'S", "HELLO", "naïve", "café",
           "coöperate", "Straße", "ﬁne"]


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def sentence(rng, words, count, separator=" "):
    return separator.join(rng.choice(words) for _ in range(count))


def build_corpus(rng):
    parts = []
    parts.append(read(SOURCES[0])[:9000])
    parts.append(read(SOURCES[1]))
    parts.append(read(SOURCES[2]))
    parts.append(read(SOURCES[3]))
    # Makefile-style tabs, CRLF lines and trailing whitespace.
    lines = []
    for i in range(120):
        lines.append("target%d: dep%d.o\tdep%d.o  " % (i, i, i + 1))
        lines.append("\t$(CC) -o $@ $^ -O%d\r" % (i % 4))
        lines.append("\t\t# indented  comment with   runs   of spaces \t " + " " * (i % 7))
    parts.append("\n".join(lines) + "\n")
    # Digit runs of every length, numbers in context.
    lines = []
    for length in range(1, 25):
        for _ in range(8):
            digits = "".join(rng.choice("0123456789") for _ in range(length))
            lines.append(rng.choice(["%s", " %s", "x%s", "%s.", "(%s)", "$%s", "%s%%", "v%s.2",
                                     "a %s b", "%s,%s"]).replace("%s", digits, 2))
    for _ in range(150):
        lines.append("%d,%03d.%02d  +%d-%03d-%04d  %d/%d/%d  3.14159265358979  1e-%d  0x%X" % (
            rng.randrange(1000), rng.randrange(1000), rng.randrange(100), rng.randrange(100),
            rng.randrange(1000), rng.randrange(10000), rng.randrange(1, 13), rng.randrange(1, 29),
            rng.randrange(1900, 2100), rng.randrange(20), rng.randrange(1 << 32)))
    lines.append("x²y³ ½ ¼ ¾ ¹ ٣٤٥ ١٢٣٤ १२३ １２３４５ Ⅻ ⅷ ① ⑳ 𝟘𝟙𝟚 ۱۲۳")
    parts.append("\n".join(lines) + "\n")
    # Whitespace: runs of spaces, tabs, blank lines, other Unicode spaces.
    spaces = [" ", "  ", "   ", "    ", "\t", "\t\t", " \t", "\u00a0", "\u3000", "\u2003",
              "\u200b", "\x0b", "\x0c", "\u2028", "\x1c", "\u0085", "\n", "\n\n", "\r\n"]
    lines = []
    for _ in range(300):
        lines.append(sentence(rng, ENGLISH, rng.randrange(1, 6), rng.choice(spaces)) +
                     rng.choice(spaces) * rng.randrange(0, 4))
    parts.append("\n".join(lines) + "\n   \n\t\n\n\n")
    # Punctuation, contractions, emoji.
    lines = []
    for _ in range(400):
        tokens = []
        for _ in range(rng.randrange(3, 12)):
            kind = rng.random()
            if kind < 0.4:
                tokens.append(rng.choice(ENGLISH))
            elif kind < 0.7:
                tokens.append(rng.choice(PUNCTUATION) * rng.randrange(1, 4))
            else:
                tokens.append("".join(rng.choice(EMOJI) for _ in range(rng.randrange(1, 4))))
        lines.append(sentence(rng, tokens, len(tokens), rng.choice(["", " ", " ", "  "])))
    parts.append("\n".join(lines) + "\n")
    # Other scripts.
    lines = []
    for _ in range(60):
        for script, words in WORDS.items():
            separator = "" if script in ("cjk", "japanese", "thai") else " "
            text = sentence(rng, words, rng.randrange(3, 12), separator)
            end = rng.choice(["。", ".", "!", "?", "", " 42", "؟", "।"])
            lines.append(text + end)
    parts.append("\n".join(lines) + "\n")
    return "".join(parts)


def build_specials():
    lines = [
        "Hello<|endoftext|>world",
        "Hello <|endoftext|> world",
        "<|endoftext|>",
        "<|endoftext|><|endoftext|>",
        "text at the end<|endoftext|>",
        "<|endoftext|>text at the start",
        "<|endoftext| not a token <|endoftext",
        ">>TITLE<<A story>>ABSTRACT<<about 123456 falcons",
        "a >>TITLE<< b >>QUESTION<<Why?>>ANSWER<<Because.",
        ">>TITLE<<<<ABSTRACT<< >>TITLE>> >>title<<",
        ">>INTRODUCTION<<>>SUMMARY<<>>COMMENT<<>>DOMAIN<<>>PREFIX<<>>SUFFIX<<>>MIDDLE<<",
        "emoji 👍🏽<|endoftext|>中文<|endoftext|>  spaces  ",
    ]
    return "".join(line + "\n" for line in lines)


def train(corpus, specials, pre_tokenizer, vocab_size):
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2,
                                  special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    # Chunks of 16 lines, newlines kept, so that whitespace across lines is
    # learnt too.
    lines = corpus.splitlines(keepends=True)
    chunks = ["".join(lines[i:i + 16]) for i in range(0, len(lines), 16)]
    tokenizer.train_from_iterator(chunks, trainer=trainer)
    return tokenizer


def falcon_pre_tokenizer():
    return pre_tokenizers.Sequence([
        pre_tokenizers.Punctuation("contiguous"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
        pre_tokenizers.Digits(individual_digits=False),
        pre_tokenizers.Split(pattern=__import__("tokenizers").Regex("[0-9][0-9][0-9]"),
                             behavior="isolated", invert=False),
    ])


def save(tokenizer_json, directory):
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "tokenizer.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(tokenizer_json, f, ensure_ascii=False, indent=None, separators=(",", ":"))
    return Tokenizer.from_file(path)


def ids_line(ids):
    return " ".join(str(i) for i in ids) + "\n"


def write_goldens(tokenizer, directory, corpus, specials, rng):
    def write(name, text):
        with open(os.path.join(directory, name), "w", encoding="utf-8", newline="") as f:
            f.write(text)

    write("corpus.ids", ids_line(tokenizer.encode(corpus, add_special_tokens=False).ids))
    lines = corpus.split("\n")
    lines = [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
    write("corpus-lines.ids", "".join(
        ids_line(tokenizer.encode(line, add_special_tokens=False).ids) for line in lines))
    special_lines = specials.splitlines(keepends=True)
    write("specials.ids", "".join(
        ids_line(tokenizer.encode(line, add_special_tokens=False).ids) for line in special_lines))
    write("specials-added.ids", "".join(
        ids_line(tokenizer.encode(line, add_special_tokens=True).ids) for line in special_lines))
    vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
    random_ids, random_texts = [], []
    for _ in range(200):
        ids = [rng.randrange(vocab_size) for _ in range(rng.randrange(1, 12))]
        random_ids.append(ids_line(ids))
        random_texts.append(tokenizer.decode(ids, skip_special_tokens=False) + "\x00\n")
    write("random.ids", "".join(random_ids))
    write("random.txt", "".join(random_texts))
    return sum(1 for _ in tokenizer.encode(corpus, add_special_tokens=False).ids)


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(repo, "test", "fixtures", "tokenizer"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    rng = random.Random(20240607)
    corpus = build_corpus(rng)
    specials = build_specials()
    for name, text in (("corpus.txt", corpus), ("specials.txt", specials)):
        with open(os.path.join(args.out, name), "w", encoding="utf-8", newline="") as f:
            f.write(text)

    # Falcon: its pre-tokenizer, its added tokens, "a b" merges.
    falcon = train(corpus, FALCON_SPECIALS, falcon_pre_tokenizer(), 2500)
    falcon_json = json.loads(falcon.to_str())
    falcon_json["model"]["merges"] = [" ".join(m) for m in falcon_json["model"]["merges"]]
    falcon = save(falcon_json, os.path.join(args.out, "falcon"))

    # GPT-2: ByteLevel alone, one special token, array merges.
    gpt2 = train(corpus, ["<|endoftext|>"],
                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True), 2500)
    gpt2.post_processor = processors.ByteLevel(trim_offsets=False)
    gpt2_json = json.loads(gpt2.to_str())
    gpt2 = save(gpt2_json, os.path.join(args.out, "gpt2"))

    # The same model with a prefix space, ignore_merges and a template.
    prefix_json = json.loads(json.dumps(gpt2_json))
    prefix_json["pre_tokenizer"]["add_prefix_space"] = True
    prefix_json["model"]["ignore_merges"] = True
    eot = gpt2.token_to_id("<|endoftext|>")
    prefix_json["post_processor"] = json.loads(processors.TemplateProcessing(
        single="<|endoftext|> $A <|endoftext|>", pair="<|endoftext|> $A $B <|endoftext|>",
        special_tokens=[("<|endoftext|>", eot)]).__getstate__())
    prefix = save(prefix_json, os.path.join(args.out, "gpt2-prefix"))

    for name, tokenizer in (("falcon", falcon), ("gpt2", gpt2), ("gpt2-prefix", prefix)):
        count = write_goldens(tokenizer, os.path.join(args.out, name), corpus, specials, rng)
        print("%s: vocab %d, corpus %d bytes -> %d ids" % (
            name, tokenizer.get_vocab_size(with_added_tokens=True),
            len(corpus.encode("utf-8")), count))


if __name__ == "__main__":
    main()
