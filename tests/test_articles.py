import json
import os
from pathlib import Path

import pytest

from index.articles import (
    READS,
    Article,
    ArticleError,
    content_hash,
    covered,
    load_articles,
    make_title,
    title_from_lead,
)

ARABIC = "وَقَالَ الْمُتَحَدِّثُ بِاسْمِ الْوِزَارَةِ إِنَّ الْاِجْتِمَاعَ انْتَهَى"
TATWEEL = "الاقتصـــاد السوري نما بنسبة 3.5% في عام 2024، بحسب التقرير."
EMOJI = "Family day 👨‍👩‍👧 and flags 🇸🇾 in the news."


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def jsonl(path: Path, *lines: object) -> Path:
    text = "\n".join(x if isinstance(x, str) else json.dumps(x, ensure_ascii=False) for x in lines)
    return write(path, text + "\n")


def reasons(skipped, source_part: str) -> list[str]:
    return [s.reason for s in skipped if source_part in s.source]


def test_txt_text_round_trips_exactly(tmp_path):
    body = f"  {ARABIC}\n\n{TATWEEL}\n{EMOJI}\n   \n"
    write(tmp_path / "a.txt", body)
    articles, skipped = load_articles([tmp_path / "a.txt"])
    assert skipped == []
    (a,) = articles
    assert a.id == "a.txt"
    assert a.text == body  # nothing stripped or normalised
    assert a.title == ARABIC
    assert a.text.index("👨‍👩‍👧") == body.index("👨‍👩‍👧")


def test_crlf_lone_cr_and_bom_become_plain_text(tmp_path):
    write(tmp_path / "crlf.txt", f"{ARABIC}\r\nline two\rline three\r\n".encode())
    write(tmp_path / "bom.txt", b"\xef\xbb\xbf" + f"{TATWEEL}\n".encode())
    articles, skipped = load_articles([tmp_path])
    assert skipped == []
    by_id = {a.id: a for a in articles}
    assert by_id["crlf.txt"].text == f"{ARABIC}\nline two\nline three\n"
    assert by_id["bom.txt"].text == f"{TATWEEL}\n"
    assert by_id["bom.txt"].title == TATWEEL


def test_markdown_title_drops_hashes_and_text_keeps_them(tmp_path):
    write(tmp_path / "n.md", f"\n\n##  {ARABIC}\n\nbody")
    (a,), _ = load_articles([tmp_path / "n.md"])
    assert a.title == ARABIC
    assert a.text.startswith(f"\n\n##  {ARABIC}")


def test_long_title_is_cut_at_a_word_boundary():
    line = " ".join(["كلمة"] * 30) + "؟"  # a 149-character headline
    assert make_title(f"\n{line}\nmore") == line
    # over 150 characters it reads as body text: cut to 90 at a word boundary
    assert make_title(f"{line[:-1]} كلمة") == " ".join(["كلمة"] * 18) + "…"
    assert make_title(" \n\t\n") == ""


def test_a_lead_paragraph_is_not_taken_for_a_title(tmp_path):
    # as in the bundled seed article: no headline, the first line is a 379-character lead
    lead = (
        "أعلنت وزارة الدفاع التركية، اليوم الأربعاء، أن الإدارة السورية طلبت دعماً رسمياً "
        "من أنقرة لتعزيز قدراتها الدفاعية (داعش).وأوضحت مصادر في وزارة الدفاع أن تركيا "
        "تواصل جهودها من أجل تقديم التدريب والاستشارات والدعم الفني لسوريا."
    )
    write(tmp_path / "lead.txt", f"{lead}\nوأضافت المصادر.")
    (a,), _ = load_articles([tmp_path / "lead.txt"])
    assert a.text.startswith(lead)  # the lead stays body text
    assert a.title == lead[: lead.index(" لتعزيز")] + "…"  # its first sentence, cut
    assert len(a.title) <= 90
    # a short first line ending in a full stop is a sentence too, not a headline
    assert (
        make_title("انتهى الاجتماع بعد ساعتين. ثم غادر الوفد.\nنص") == "انتهى الاجتماع بعد ساعتين"
    )
    assert make_title("هل ينجح الاتفاق؟\nنص") == "هل ينجح الاتفاق؟"  # a question is a headline


def test_folder_is_walked_recursively_sorted_with_relative_ids(tmp_path):
    root = tmp_path / "corpus"
    write(root / "politics" / "2025-07-syria.txt", ARABIC)
    write(root / "b.md", "# B\ntext b")
    write(root / "a.txt", "text a")
    write(root / "economy" / "deep" / "c.txt", TATWEEL)
    write(root / ".hidden.txt", "hidden")
    write(root / ".git" / "x.txt", "hidden folder")
    write(root / "report.pdf", b"%PDF-1.4")
    articles, skipped = load_articles([root])
    assert [a.id for a in articles] == [
        "a.txt",
        "b.md",
        "economy/deep/c.txt",
        "politics/2025-07-syria.txt",
    ]
    assert skipped == [
        type(skipped[0])(str(root / "report.pdf"), "unsupported file type .pdf; " + READS)
    ]
    assert load_articles([root]) == (articles, skipped)  # deterministic


def test_jsonl_records_meta_and_titles(tmp_path):
    path = jsonl(
        tmp_path / "dump.jsonl",
        {"id": 7, "text": f"{ARABIC}\r\nثانياً", "url": "https://x.example/7", "published": 2025},
        "",
        {"id": "b", "title": "  عنوان  ", "text": EMOJI, "category": "tech", "source": ""},
    )
    articles, skipped = load_articles([path])
    assert skipped == []
    a, b = articles
    assert (a.id, a.title, a.text) == ("7", ARABIC, f"{ARABIC}\nثانياً")
    assert a.meta == {"url": "https://x.example/7", "published": "2025"}
    assert (b.id, b.title, b.text, b.meta) == ("b", "عنوان", EMOJI, {"category": "tech"})


def test_bad_jsonl_lines_are_skipped_with_their_line_number(tmp_path):
    path = jsonl(
        tmp_path / "dump.jsonl",
        {"id": "ok1", "text": "first"},
        '{"id": "broken", "text": ',
        {"id": "no-text"},
        ["not", "an", "object"],
        {"text": "no id"},
        {"id": "empty", "text": "  \n "},
        {"id": "ok2", "text": "second"},
    )
    articles, skipped = load_articles([path])
    assert [a.id for a in articles] == ["ok1", "ok2"]
    lines = {s.source.rsplit(":", 1)[1]: s.reason for s in skipped}
    assert set(lines) == {"2", "3", "4", "5", "6"}
    assert lines["2"].startswith("not valid JSON")
    assert 'missing "text"' in lines["3"]
    assert "expected a JSON object, got list" in lines["4"]
    assert 'missing "id"' in lines["5"]
    assert "empty" in lines["6"]
    assert all(s.source.startswith(str(path) + ":") for s in skipped)


def test_jsonl_line_with_bad_utf8_skips_only_that_line(tmp_path):
    good = json.dumps({"id": 1, "text": ARABIC}, ensure_ascii=False).encode()
    write(tmp_path / "d.jsonl", good + b'\n{"id": 2, "text": "\xff"}\n')
    articles, skipped = load_articles([tmp_path / "d.jsonl"])
    assert [a.id for a in articles] == ["1"]
    assert skipped[0].source.endswith("d.jsonl:2")
    assert skipped[0].reason.startswith("not valid UTF-8 (byte 0xff")


def test_unreadable_files_are_skipped_with_a_reason(tmp_path):
    write(tmp_path / "latin1.txt", b"caf\xe9 au lait")
    write(tmp_path / "image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    write(tmp_path / "empty.txt", "")
    write(tmp_path / "blank.md", " \n\t\r\n")
    write(tmp_path / "ok.txt", ARABIC)
    articles, skipped = load_articles([tmp_path])
    assert [a.id for a in articles] == ["ok.txt"]
    assert reasons(skipped, "latin1.txt") == [
        "not valid UTF-8 (byte 0xe9 at offset 3); save the file as UTF-8"
    ]
    assert "binary file" in reasons(skipped, "image.txt")[0]
    assert "empty" in reasons(skipped, "empty.txt")[0]
    assert "empty" in reasons(skipped, "blank.md")[0]


def test_unreadable_files_and_folders_are_skipped(tmp_path, monkeypatch):
    # Simulated: the tests may run as root, for whom chmod does not deny reading.
    write(tmp_path / "locked.txt", "secret")
    write(tmp_path / "ok.txt", "open")
    real = Path.read_bytes

    def read_bytes(self):
        if self.name == "locked.txt":
            raise PermissionError(13, "Permission denied")
        return real(self)

    write(tmp_path / "private" / "p.txt", "private")
    real_scandir = os.scandir

    def scandir(path):
        if Path(path).name == "private":
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    monkeypatch.setattr(os, "scandir", scandir)
    (tmp_path / "gone.txt").symlink_to(tmp_path / "missing.txt")
    articles, skipped = load_articles([tmp_path])
    assert [a.id for a in articles] == ["ok.txt"]
    assert reasons(skipped, "locked.txt") == [
        "cannot read file: permission denied; check its permissions"
    ]
    assert reasons(skipped, "private") == [
        "cannot read folder: permission denied; check its permissions"
    ]
    assert reasons(skipped, "gone.txt") == ["cannot read file: no such file or directory"]


def test_oversized_article_is_skipped(tmp_path):
    write(tmp_path / "big.txt", "x" * 101)
    write(tmp_path / "small.txt", "x" * 100)
    articles, skipped = load_articles([tmp_path], max_chars=100)
    assert [a.id for a in articles] == ["small.txt"]
    assert "split it into smaller articles or raise --max-chars" in reasons(skipped, "big.txt")[0]


def test_duplicates_keep_the_first(tmp_path):
    write(tmp_path / "a.txt", f"{ARABIC}\n")
    write(tmp_path / "b.txt", f"\n  {ARABIC}  \n\n")  # same text once stripped
    jsonl(
        tmp_path / "z.jsonl",
        {"id": "a.txt", "text": "another text, same id"},
        {"id": "n", "text": EMOJI},
    )
    articles, skipped = load_articles([tmp_path])
    assert [a.id for a in articles] == ["a.txt", "n"]
    (dup_text,) = reasons(skipped, "b.txt")
    assert "'a.txt'" in dup_text
    (dup_id,) = reasons(skipped, "z.jsonl:1")
    assert "duplicate id 'a.txt'" in dup_id and str(tmp_path / "a.txt") in dup_id


def test_several_paths_at_once_and_missing_path_refuses(tmp_path):
    write(tmp_path / "one" / "x.txt", "one")
    write(tmp_path / "two.md", "two")
    articles, _ = load_articles([tmp_path / "one", str(tmp_path / "two.md")])
    assert [a.id for a in articles] == ["x.txt", "two.md"]
    with pytest.raises(ArticleError, match="no such file or folder: .*nope"):
        load_articles([tmp_path / "one", tmp_path / "nope"])


def test_a_file_reached_twice_is_loaded_once(tmp_path):
    """Listed, and under a listed folder (an upload added by id keeps its folder as the
    source): one article, no duplicate to report."""
    write(tmp_path / "one" / "x.txt", "one")
    twice = [tmp_path / "one", tmp_path / "one" / "x.txt", tmp_path / "one" / ".." / "one"]
    assert load_articles(twice) == load_articles([tmp_path / "one"])
    assert [a.id for a in load_articles(twice)[0]] == ["x.txt"]


def test_a_source_covers_itself_and_what_is_under_it(tmp_path):
    folder = str(tmp_path.resolve() / "up")
    assert covered(tmp_path / "up" / "a.txt", [folder])
    assert covered(tmp_path / "up", [folder])
    assert not covered(tmp_path / "upper.txt", [folder])  # a prefix of the name is not a folder
    assert covered("https://example.com/feed.xml", ["https://example.com/feed.xml"])
    assert not covered("https://example.com/feed.xml", [folder])


def test_unsafe_ids_are_skipped(tmp_path):
    path = jsonl(
        tmp_path / "ids.jsonl",
        {"id": "tab\there", "text": "a"},
        {"id": "x" * 513, "text": "b"},
        {"id": "", "text": "c"},
        {"id": "سوريا/٢٠٢٥", "text": "d"},
    )
    articles, skipped = load_articles([path])
    assert [a.id for a in articles] == ["سوريا/٢٠٢٥"]
    assert [s.source.rsplit(":", 1)[1] for s in skipped] == ["1", "2", "3"]


def test_content_hash_is_stable_and_sees_meta():
    a = Article("1", "t", ARABIC, {"url": "u", "source": "s"})
    same = Article("other-id", "t", ARABIC, {"source": "s", "url": "u"})
    assert content_hash(a) == content_hash(same)
    assert len(content_hash(a)) == 64
    meta = {"url": "u", "source": "s"}
    assert content_hash(a) != content_hash(Article("1", "t", ARABIC + " ", meta))
    assert content_hash(a) != content_hash(Article("1", "T", ARABIC, meta))
    assert content_hash(a) != content_hash(Article("1", "t", ARABIC, {**meta, "url": "v"}))


def test_a_pipe_is_skipped_not_read(tmp_path):
    os.mkfifo(tmp_path / "pipe.txt")
    write(tmp_path / "ok.txt", "ok")
    articles, skipped = load_articles([tmp_path])
    assert [a.id for a in articles] == ["ok.txt"]
    assert "not a regular file" in reasons(skipped, "pipe.txt")[0]


def test_only_a_title_made_from_the_lead_counts_as_one():
    lead = "أعلنت الوزارة اليوم أن الاجتماع انتهى. وأضافت أن الوفد غادر."
    derived = Article("a", make_title(lead), lead)
    assert derived.title == "أعلنت الوزارة اليوم أن الاجتماع انتهى" and title_from_lead(derived)
    headline = "انتهاء الاجتماع\nأعلنت الوزارة اليوم أن الاجتماع انتهى."
    assert not title_from_lead(Article("b", make_title(headline), headline))
    # a JSONL record's own title is kept even when its text opens with a sentence
    assert not title_from_lead(Article("c", "الوزارة: انتهى الاجتماع", lead))
