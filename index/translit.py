"""Consonant skeletons, so a name written in Latin letters meets the same name in Arabic.

An English question over Arabic articles shares no words with them, but its names and numbers
are there, transliterated: "Omar Mukhtar" is «عمر المختار», "Tbilisi" is «تبليسي». Both are
reduced to a common consonant skeleton: vowels, و/ي/ا/ع/ء and a word-final ه dropped (Arabic
leaves short vowels unwritten, English drops ع), letters that transliterations confuse merged
(ج/غ/g/j, ق/ك/k/q/c, ث/ت/th/t, ذ/د/dh/d, ص/س/s, ض/d, ط/t, ظ/ز/z, p/b, v/f), the article ال and
al-/el- dropped, doubled letters collapsed: both names above become "mr mXtr" and "tbls".

`latin_skeletons(question)` takes the capitalised words and the numbers of an English
question (the names, places and years a reader would keep untranslated); `arabic_skeletons`
takes every word of an Arabic text. qa.scoring adds the share of a question's skeletons found
in a sentence to its score (a small weight: many Arabic words share a short skeleton).

What this module does NOT do: transliterate for display, or match words that are translated
rather than transliterated ("Egypt" and «مصر»).
"""

from __future__ import annotations

import re
import unicodedata

from index.lexical import WORD, fold

_ARABIC = {
    **dict.fromkeys("اويىعءآأإؤئ", ""),
    "ب": "b",
    "ت": "t",
    "ث": "t",
    "ج": "j",
    "ح": "h",
    "خ": "X",
    "د": "d",
    "ذ": "d",
    "ر": "r",
    "ز": "z",
    "س": "s",
    "ش": "S",
    "ص": "s",
    "ض": "d",
    "ط": "t",
    "ظ": "z",
    "غ": "j",
    "ف": "f",
    "ق": "k",
    "ك": "k",
    "ل": "l",
    "م": "m",
    "ن": "n",
    "ه": "h",
    "پ": "b",
    "چ": "S",
    "ڤ": "f",
    "گ": "j",
}
_ARABIC_PREFIXES = ("وال", "بال", "فال", "كال", "لل", "ال")
_LATIN_DIGRAPHS = re.compile(r"kh|sh|ch|th|dh|gh|ph|ou|ck")
_DIGRAPH = {
    "kh": "X",
    "sh": "S",
    "ch": "S",
    "th": "t",
    "dh": "d",
    "gh": "j",
    "ph": "f",
    "ou": "",
    "ck": "k",
}
_LATIN = {
    **dict.fromkeys("aeiouyw'", ""),
    "q": "k",
    "c": "k",
    "g": "j",
    "p": "b",
    "v": "f",
    "x": "ks",
}
_DOUBLE = re.compile(r"(.)\1+")
_LATIN_NAME = re.compile(r"[A-Z][A-Za-z'\u00C0-\u024F]+(?:-[A-Za-z'\u00C0-\u024F]+)*|\d+")
MIN_SKELETON = 2
# Capitalised at the start of a question, never names.
_NOT_NAMES = frozenset(
    "what who whom whose when where which why how is are was were did does do can could will "
    "would should has have had in on at from for to by of the a an and or name list give "
    "according during after before since as if tell describe explain".split()
)


def arabic_skeleton(word: str) -> str:
    """The skeleton of one (folded) Arabic word: arabic_skeleton("المختار") == "mXtr"."""
    for p in _ARABIC_PREFIXES:
        if word.startswith(p) and len(word) - len(p) >= 2:
            word = word[len(p) :]
            break
    if word.endswith("ه"):
        word = word[:-1]
    return _DOUBLE.sub(r"\1", "".join(_ARABIC.get(c, c if c.isdigit() else "") for c in word))


def latin_skeleton(word: str) -> str:
    """The skeleton of one Latin word: latin_skeleton("Mukhtar") == "mXtr"."""
    w = unicodedata.normalize("NFKD", word.lower())
    w = "".join(c for c in w if not unicodedata.combining(c))
    w = re.sub(r"^(al|el|ad|an|ar|as|ash|at|az)-", "", w).replace("-", "")
    w = _LATIN_DIGRAPHS.sub(lambda m: _DIGRAPH[m.group()], w)
    return _DOUBLE.sub(r"\1", "".join(_LATIN.get(c, c) for c in w))


def arabic_skeletons(text: str) -> list[str]:
    """Skeletons of the Arabic words and the numbers of `text` (shorter ones dropped)."""
    out = []
    for w in WORD.findall(fold(text)):
        s = w if w.isdigit() else arabic_skeleton(w)
        if len(s) >= MIN_SKELETON:
            out.append(s)
    return out


def latin_skeletons(question: str) -> list[str]:
    """Skeletons of the capitalised words and numbers of an English question, but for
    function words capitalised at the start of it ("When", "In", "Who")."""
    out = []
    for w in _LATIN_NAME.findall(question):
        if w.lower() in _NOT_NAMES:
            continue
        s = w if w.isdigit() else latin_skeleton(w)
        if len(s) >= MIN_SKELETON:
            out.append(s)
    return out
