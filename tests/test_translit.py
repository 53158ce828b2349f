"""Names in Latin letters meet the same names in Arabic through their consonant skeletons."""

from __future__ import annotations

import pytest

from index.translit import arabic_skeletons, latin_skeletons
from qa.scoring import name_coverage


@pytest.mark.parametrize(
    ("english", "arabic"),
    [
        ("When was Omar Mukhtar born?", "ولد عمر المختار"),
        ("What is the capital of Tbilisi?", "عاصمة تبليسي"),
        ("Where was al-Shafi'i born?", "ولد الشافعي"),
        ("Who is Gibran Khalil Gibran?", "جبران خليل جبران"),
        ("Did Erdogan visit Mecca?", "زار أردوغان مكة"),
        ("Who is Muhammad ibn Hasan al-Mahdi?", "محمد بن حسن المهدي"),
        ("How many titles has Liverpool won?", "فاز ليفربول"),
        ("What happened in 2007?", "في عام 2007"),
    ],
)
def test_a_transliterated_name_has_the_skeleton_of_its_arabic_spelling(english, arabic):
    names = frozenset(latin_skeletons(english))
    assert names and name_coverage(names, arabic) == 1.0


def test_question_words_are_not_names_and_other_names_do_not_match():
    assert latin_skeletons("When did it happen? What is it?") == []
    names = frozenset(latin_skeletons("When was Omar Mukhtar born?"))
    assert name_coverage(names, "ولد جمال عبد الناصر في الإسكندرية") == 0.0
    assert name_coverage(names, "قاتل عمر الإيطاليين") == 0.5  # one of the two names
    assert name_coverage(frozenset(), "عمر المختار") == 0.0


def test_arabic_skeletons_drop_diacritics_article_and_short_words():
    assert arabic_skeletons("وَالمُخْتَارُ و في") == ["mXtr"]
    assert arabic_skeletons("") == []
