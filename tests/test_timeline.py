"""Story questions told as timelines: detection, dated entries of verified spans, events grouped,
the contract, and every way a timeline cannot be told."""

from __future__ import annotations

import html
import json
import re
from datetime import date
from pathlib import Path

import pytest

import cli
from index.build import build_index
from index.store import load_index
from qa.abstain import GroupModel
from qa.answer import Answerer, QuestionError
from qa.export import to_html, to_markdown, to_text
from qa.filters import parse_filters
from qa.records import answer_from_json
from qa.story import asks_for_story, story_topic
from qa.story_model import FEATURES as STORY_FEATURES
from qa.story_model import StoryModel
from qa.timeline import TimelineSettings
from qa.timeq import story_period
from tests.conftest import FakeEncoder
from tests.test_answer import assert_verified, coverage_model
from tests.test_cli import fixed_calibration, run
from ui.render import Turn

STORY = "إضراب عمال ميناء رادس"
RECORDS = [
    ("r1", "2017-01-10", "عمال ميناء رادس يبدؤون إضرابا مفتوحا",
     "بدأ عمال ميناء رادس صباح اليوم إضرابا مفتوحا للمطالبة بتحسين ظروف العمل والزيادة في "
     "الأجور.\nوقالت النقابة إن الإضراب سيتواصل حتى تستجيب الوزارة لمطالب العمال."),
    ("r2", "2017-01-12", "تكدس الحاويات مع تواصل إضراب ميناء رادس",
     "تواصل إضراب عمال ميناء رادس لليوم الثالث على التوالي وتكدست مئات الحاويات في الميناء.\n"
     "وحذر المصدرون من خسائر كبيرة بسبب تعطل الشحن."),
    ("r2b", "2017-01-12", "تكدس الحاويات مع تواصل إضراب ميناء رادس",
     "لليوم الثالث على التوالي تواصل إضراب عمال ميناء رادس وتكدست مئات الحاويات داخل الميناء.\n"
     "ونبه المصدرون إلى خسائر كبيرة جراء تعطل الشحن."),
    ("r3", "2017-01-20", "مفاوضات لإنهاء إضراب ميناء رادس",
     "فتحت وزارة النقل مفاوضات مع نقابة عمال ميناء رادس لإنهاء الإضراب المتواصل منذ عشرة أيام.\n"
     "وعبر الطرفان عن تفاؤلهما بالتوصل إلى اتفاق قريبا."),
    ("r4", "2017-02-01", "انتهاء إضراب عمال ميناء رادس",
     "انتهى إضراب عمال ميناء رادس بعد اتفاق بين وزارة النقل والنقابة على الزيادة في الأجور.\n"
     "واستأنف الميناء نشاطه العادي صباح اليوم."),
    ("undated", None, "إضراب ميناء رادس",
     "يتواصل إضراب عمال ميناء رادس وسط مخاوف المصدرين من تعطل الشحن وتكدس الحاويات."),
    ("sport", "2017-01-15", "الترجي يفوز على النادي الصفاقسي",
     "فاز الترجي الرياضي على النادي الصفاقسي بهدفين دون رد في ملعب رادس ضمن البطولة.\n"
     "وسجل الهدفين المهاجم طه ياسين الخنيسي في الشوط الثاني من المباراة.\n"
     "واحتفل الجمهور بالفوز في المدرجات حتى نهاية اللقاء."),
    ("oil", "2017-01-11", "أسعار النفط ترتفع",
     "ارتفعت أسعار النفط في الأسواق العالمية بعد قرار منظمة أوبك خفض الإنتاج."),
    ("rain", "2017-01-13", "أمطار غزيرة في الشمال",
     "شهدت ولايات الشمال الغربي أمطارا غزيرة أدت إلى ارتفاع منسوب الأودية."),
]  # fmt: skip
QUESTION = f"كيف تطور {STORY}؟"


def lexical_story_model(cut: float = 0.4) -> StoryModel:
    """About the story when an article's BM25 is at least `cut` of the best one's (across
    scripts: its rank among the first three). The fitted weights fit the real model only."""
    n = len(STORY_FEATURES)

    def on(feature: str, weight: float, intercept: float) -> GroupModel:
        coef = tuple(weight if f == feature else 0.0 for f in STORY_FEATURES)
        return GroupModel((0.0,) * n, (1.0,) * n, coef, intercept, 0.5)

    return StoryModel(
        {"same": on("lexical", 20, -20 * cut), "cross": on("log_rank", -20, 20 * 1.2)}, {}
    )


def write_corpus(root: Path, records=RECORDS) -> Path:
    corpus = root / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    lines = []
    for rid, published, title, text in records:
        rec = {"id": rid, "title": title, "text": text, "source": "Jawhara FM"}
        if rid == "r2b":
            rec["source"] = "Mosaique FM"
        if published:
            rec["published"] = published
        lines.append(json.dumps(rec, ensure_ascii=False))
    (corpus / "news.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return corpus


@pytest.fixture
def index(tmp_path, fake_encoder):
    build_index([write_corpus(tmp_path)], tmp_path / "ix", fake_encoder)
    return load_index(tmp_path / "ix")


@pytest.fixture
def answerer(index, fake_encoder):
    return Answerer(
        index,
        fake_encoder,
        k=5,
        abstain_model=coverage_model(),
        strict=True,
        story_model=lexical_story_model(),
    )


def test_story_questions_are_recognised_and_factoid_ones_are_not():
    stories = [
        "كيف تطورت أزمة حركة نداء تونس في 2016؟",
        "ما هي مراحل قضية شفيق الجراية؟",
        "ماذا حدث في ملف الكامور منذ أفريل 2017؟",
        "ما تسلسل أحداث إضراب الأساتذة؟",
        "How did the El Kamour protests unfold?",
        "Give me a timeline of the battle for Aleppo",
        "What happened with Nidaa Tounes since January 2016?",
    ]
    factoids = [
        "متى تطور الوضع؟",
        "ما نسبة تطور السل؟",
        "منذ متى والمغرب عضو في الأمم المتحدة؟",
        "من كتب قصة بائعة الكبريت؟",
        "Since when has Morocco been a member of the United Nations?",
        "How many people died in the attack?",
    ]
    assert all(asks_for_story(q) for q in stories)
    assert not any(asks_for_story(q) for q in factoids)
    # the period it names is a filter, not words to search for (qa.timeq.story_period)
    assert story_topic("كيف تطورت أزمة حركة نداء تونس في 2016؟") == "أزمة حركة نداء تونس"
    assert story_topic("ماذا حدث في ملف الكامور منذ أفريل 2017؟") == "في ملف الكامور"
    assert story_period("ماذا حدث في ملف الكامور منذ أفريل 2017؟") == (date(2017, 4, 1), None)
    assert story_period("بين ديسمبر 2016 وماي 2017") == (date(2016, 12, 1), date(2017, 5, 31))
    assert story_period("خلال شهري ماي وجوان 2017") == (date(2017, 5, 1), date(2017, 6, 30))
    assert story_period("between January and June 2017") == (date(2017, 1, 1), date(2017, 6, 30))
    assert story_topic("How did the El Kamour protests unfold?") == "El Kamour protests"
    assert story_topic("كيف تطورت؟") == "كيف تطورت؟"  # nothing left: the question itself


def test_a_story_question_gets_dated_entries_of_verified_spans_oldest_first(answerer, index):
    a = answerer.ask(QUESTION)
    assert a.mode == "timeline" and not a.abstained
    assert_verified(a, index)
    dates = [e.date for e in a.timeline]
    assert dates == sorted(dates) and len(dates) >= 3
    cited = {c.article_id for e in a.timeline for c in e.citations}
    also = {x.article_id for e in a.timeline for x in e.also}
    assert {"r1", "r3", "r4"} <= cited
    assert not (cited | also) & {"oil", "rain", "sport", "undated"}
    # the top-level citations are every entry's, in order
    assert [c for e in a.timeline for c in e.citations] == list(a.citations)
    first, *lines = a.text.split("\n")
    assert first.startswith(f"من {dates[0]} إلى {dates[-1]}:")
    assert "بلا تاريخ" in first  # the undated article about the story is counted
    assert len(lines) == len(a.timeline)
    for line, entry in zip(lines, a.timeline, strict=True):
        assert line.startswith(entry.date) and all(f"[{c.n}]" in line for c in entry.citations)


def test_articles_of_one_event_are_one_entry_with_the_others_listed(index, fake_encoder):
    answerer = Answerer(
        index,
        fake_encoder,
        abstain_model=coverage_model(),
        strict=True,
        story_model=lexical_story_model(),
        timeline=TimelineSettings(event_cosine=0.8),
    )
    a = answerer.ask(QUESTION)
    on_12 = [e for e in a.timeline if e.date == "2017-01-12"]
    assert len(on_12) == 1
    ids = {c.article_id for c in on_12[0].citations} | {x.article_id for x in on_12[0].also}
    assert ids == {"r2", "r2b"}
    other = on_12[0].also[0]
    assert other.source in ("Jawhara FM", "Mosaique FM") and other.published.startswith("2017")
    assert "2 مصدرين" not in a.text and "من مصدرين" in a.text.split("\n")[0]


def test_a_factoid_question_is_answered_as_before(answerer):
    a = answerer.ask("متى انتهى إضراب عمال ميناء رادس؟")
    assert a.mode == "answer" and a.timeline == () and a.note is None


def test_mode_forces_or_refuses_a_timeline(answerer):
    assert answerer.ask(STORY, mode="timeline").mode == "timeline"
    assert answerer.ask(QUESTION, mode="answer").mode == "answer"
    with pytest.raises(QuestionError, match="mode"):
        answerer.ask(QUESTION, mode="story")


def test_max_entries_keeps_the_most_relevant_events_and_counts_the_rest(answerer):
    full = answerer.ask(QUESTION)
    two = answerer.ask(QUESTION, max_entries=2)
    assert len(two.timeline) == 2 < len(full.timeline)
    assert f"أحداث أخرى أقل صلة لم تُعرض: {len(full.timeline) - 2}" in two.text.split("\n")[0]
    for bad in (0, -3):
        with pytest.raises(QuestionError, match="at least one entry"):
            answerer.ask(QUESTION, max_entries=bad)


def test_too_few_dated_articles_give_the_ordinary_answer_and_say_why(tmp_path, fake_encoder):
    undated = [(rid, None, title, text) for rid, _, title, text in RECORDS]
    build_index([write_corpus(tmp_path, undated)], tmp_path / "ix", fake_encoder)
    index = load_index(tmp_path / "ix")
    answerer = Answerer(
        index,
        fake_encoder,
        abstain_model=coverage_model(),
        strict=True,
        story_model=lexical_story_model(),
    )
    a = answerer.ask(QUESTION)
    assert a.mode == "answer" and a.note.startswith("لا خط زمني")
    assert "بلا تاريخ" in a.note
    english = answerer.ask("How did the Rades port strike unfold?", mode="timeline")
    assert english.mode == "answer" and english.note.startswith("No timeline")


def test_filters_and_a_named_period_bound_the_timeline(answerer):
    a = answerer.ask(QUESTION, filters=parse_filters("2017-01-11", "2017-01-25", (), ()))
    assert a.mode == "timeline"
    assert all("2017-01-11" <= e.date <= "2017-01-25" for e in a.timeline)
    nothing = answerer.ask(QUESTION, filters=parse_filters("2030-01-01", None, (), ()))
    assert nothing.abstained and nothing.citations == ()
    named = answerer.ask(f"كيف تطور {STORY} في جانفي 2017؟")
    assert all(e.date.startswith("2017-01") for e in named.timeline)


def test_a_story_the_articles_do_not_hold_is_not_told(answerer):
    a = answerer.ask("كيف تطورت أزمة الحكومة في بلجيكا؟")
    assert a.mode == "answer" and a.note and a.abstained


def test_a_timeline_survives_json_and_every_export(answerer):
    a = answerer.ask(QUESTION)
    data = json.loads(json.dumps(a.to_json(id="s1"), ensure_ascii=False))
    assert data["mode"] == "timeline" and len(data["timeline"]) == len(a.timeline)
    for entry in data["timeline"]:
        assert set(entry) == {"date", "citations", "also"}
        for c in entry["citations"]:
            assert {"article_id", "start", "end", "text", "title", "published", "source"} <= set(c)
    assert answer_from_json(data) == a
    text, md, page = to_text(a), to_markdown([a]), to_html([a])
    for e in a.timeline:
        assert e.date in text and e.date in md and e.date in page
        for c in e.citations:
            assert f"[{c.n}]" in text and f"[{c.n}]" in md


@pytest.fixture
def cli_index(tmp_path, monkeypatch):
    """The story corpus indexed by the fake model, asked through `isnad ask` with an
    abstention that always answers and the fake model's timeline settings."""
    import qa.answer

    monkeypatch.setattr(cli, "_light_encoder", lambda model: FakeEncoder())
    monkeypatch.setattr(qa.answer, "load_story_model", lexical_story_model)
    monkeypatch.setenv("ISNAD_CALIBRATION", fixed_calibration(tmp_path / "always", 0.0))
    build_index([write_corpus(tmp_path)], tmp_path / "ix", FakeEncoder())
    return str(tmp_path / "ix")


def test_isnad_ask_tells_a_story_in_every_format(cli_index):
    data = json.loads(run("ask", QUESTION, "--index", cli_index, "--json").stdout)
    assert data["mode"] == "timeline" and len(data["timeline"]) >= 3
    assert [c["n"] for e in data["timeline"] for c in e["citations"]] == [
        c["n"] for c in data["citations"]
    ]
    text = run("ask", QUESTION, "--index", cli_index).stdout
    lines = text.splitlines()
    assert lines[0].startswith("من 2017-")
    dated = [ln for ln in lines if ln[:4] == "2017"]
    assert [ln[:10] for ln in dated] == [e["date"] for e in data["timeline"]]
    md = run("ask", QUESTION, "--index", cli_index, "--format", "markdown").stdout
    assert f"- **{data['timeline'][0]['date']}** — " in md
    two = json.loads(
        run("ask", QUESTION, "--index", cli_index, "--json", "--max-entries", "2").stdout
    )
    assert len(two["timeline"]) == 2
    plain = json.loads(run("ask", QUESTION, "--index", cli_index, "--json", "--no-timeline").stdout)
    assert plain["mode"] == "answer" and "timeline" not in plain
    forced = json.loads(run("ask", STORY, "--index", cli_index, "--json", "--timeline").stdout)
    assert forced["mode"] == "timeline"


def test_isnad_ask_refuses_a_timeline_of_no_entries(cli_index):
    for bad in ("0", "-2"):
        out = run("ask", QUESTION, "--index", cli_index, "--max-entries", bad)
        assert out.exit_code == 1 and len(out.stderr.strip().splitlines()) == 1
        assert "--max-entries must be at least 1" in out.stderr


def test_a_questions_line_carries_its_own_mode(cli_index, tmp_path):
    lines = [
        {"id": "a", "question": QUESTION, "mode": "answer"},
        {"id": "t", "question": STORY, "mode": "timeline"},
        {"id": "d", "question": QUESTION},
        {"id": "x", "question": QUESTION, "mode": "story"},
    ]
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines), encoding="utf-8")
    out = run("ask", "--questions", str(path), "--index", cli_index, "--json")
    got = {r["id"]: r for r in map(json.loads, out.stdout.splitlines())}
    assert got["a"]["mode"] == "answer" and got["t"]["mode"] == "timeline"
    assert got["d"]["mode"] == "timeline"
    assert "unknown mode 'story'" in got["x"]["error"]


def test_the_chat_shows_a_timeline_whose_sources_open_at_their_spans(answerer, index, tmp_path):
    from ui.conversations import Conversations
    from ui.render import chat_messages, open_source, source_choices

    a = answerer.ask(QUESTION)
    articles = {c.article_id: index.articles[index.article_row[c.article_id]] for c in a.citations}
    turn = Turn(a, articles)
    bubble = chat_messages([turn])[1]["content"]
    assert bubble.count('class="isnad-event"') == len(a.timeline)
    dates = re.findall(r'<time class="isnad-date" datetime="([0-9-]+)">', bubble)
    assert dates == [e.date for e in a.timeline]
    assert bubble.count('class="isnad-chip"') == len(a.citations)
    choices = source_choices([turn])
    assert [v for _, v in choices] == [f"t0:c{c.n}" for c in a.citations]
    for c in a.citations:
        view = open_source([turn], f"t0:c{c.n}")
        assert f'<mark id="isnad-mark" class="isnad-mark">{html.escape(c.text)}</mark>' in view
    # a saved conversation reopens the timeline as it was shown
    store = Conversations(tmp_path / "c.sqlite3")
    cid = store.create(QUESTION)
    store.append(cid, turn)
    (again,) = store.turns(cid)
    assert again.answer == a and chat_messages([again])[1]["content"] == bubble


def test_the_web_api_takes_a_mode(index, fake_encoder, tmp_path, monkeypatch):
    from gradio_client import Client

    import app
    import qa.answer
    from tests.test_app import free_port

    monkeypatch.setattr(qa.answer, "load_story_model", lexical_story_model)
    monkeypatch.setenv("ISNAD_CALIBRATION", fixed_calibration(tmp_path / "always", 0.0))
    demo = app.create_app(
        index.path, [], tmp_path / "up", encoder=fake_encoder, conversations_db=tmp_path / "c.db"
    )
    port = free_port()
    app.launch(demo, port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        told = client.predict(STORY, "", "", "", "", "timeline", api_name="/answer")
        assert told["mode"] == "timeline" and len(told["timeline"]) >= 2
        plain = client.predict(QUESTION, "", "", "", "", "answer", api_name="/answer")
        assert plain["mode"] == "answer"
        with pytest.raises(Exception, match="unknown mode"):
            client.predict(QUESTION, "", "", "", "", "story", api_name="/answer")
    finally:
        demo.close()


def test_the_story_model_is_the_calibration_folders_else_the_shipped_one(tmp_path, monkeypatch):
    from qa.story_model import StoryModelError, load_story_model

    monkeypatch.setenv("ISNAD_CALIBRATION", str(tmp_path))  # a folder without one
    assert "same" in load_story_model().groups
    (tmp_path / "story_model.json").write_text("{", encoding="utf-8")
    with pytest.raises(StoryModelError, match="refit it with `python bench/stories.py"):
        load_story_model()
    (tmp_path / "story_model.json").write_text('{"format": "old"}', encoding="utf-8")
    with pytest.raises(StoryModelError, match="expected 'isnad-story 1'"):
        load_story_model()
