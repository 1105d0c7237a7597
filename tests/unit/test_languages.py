"""The server's words in zh-CN and en (docs/languages.md): every table has both languages,
event types and built-in templates have words in each, durations, rules and replays read
in natural Chinese, and how a language, an amount and a moment are chosen and written."""

from __future__ import annotations

import copy
import inspect
import re
from datetime import UTC, datetime
from typing import Any, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain import lifecycle
from domain.directory import InvalidDirectory, parse_directory
from domain.events import LeadFollowedUpData
from domain.locales import LOCALES, UnknownLocale, local_time, money, negotiate, parse_locale
from domain.recipients import Target, lead_locale, message_fields, recipient_locale
from domain.state import LeadState
from replay.diff import AssignmentChange, Movement, ReplayDiff
from replay.summary import Window, summary_in_words
from rules import vocabulary_en, vocabulary_zh_cn
from rules.builtin_templates import BUILTIN_TRANSLATIONS
from rules.catalog import ACTIONS, VARIABLE_FAMILIES, VARIABLES
from rules.describe import describe_changes, describe_ruleset
from rules.model import Ruleset, parse_duration
from rules.templates import find_template, render
from rules.validation import parse_ruleset
from rules.vocabulary import (
    VOCABULARIES,
    WORDED_EVENT_TYPES,
    duration_in_words,
    event_words,
    labels,
)
from store.rulebook import default_directory_document, default_ruleset_document

DIRECTORY = parse_directory(default_directory_document())


def _tables(module: Any) -> dict[str, Any]:
    return {name: value for name, value in vars(module).items() if name.isupper()}


def _shape(value: Any, path: str = "") -> set[str]:
    """Every key path of a table (dicts by key, tuples by position)."""
    if isinstance(value, dict):
        return {p for k, v in value.items() for p in {f"{path}/{k}"} | _shape(v, f"{path}/{k}")}
    if isinstance(value, tuple):
        return {f"{path}/{i}" for i in range(len(value))}
    return set()


def test_every_word_has_both_languages() -> None:
    english, chinese = _tables(vocabulary_en), _tables(vocabulary_zh_cn)
    assert set(english) == set(chinese)
    for name in english:
        missing_in_chinese = _shape(english[name]) - _shape(chinese[name])
        missing_in_english = _shape(chinese[name]) - _shape(english[name])
        assert not missing_in_chinese, f"{name}: no zh-CN words for {sorted(missing_in_chinese)}"
        assert not missing_in_english, f"{name}: no en words for {sorted(missing_in_english)}"


def test_every_phrase_fills_the_same_placeholders_in_both_languages() -> None:
    def placeholders(text: str) -> set[str]:
        return set(re.findall(r"\{(\w*)\}", text))

    for key, english in vocabulary_en.PHRASES.items():
        assert placeholders(vocabulary_zh_cn.PHRASES[key]) == placeholders(english), key
    for key, english in vocabulary_en.SUMMARY_PHRASES.items():
        chinese = vocabulary_zh_cn.SUMMARY_PHRASES[key]
        if key not in ("day", "day_in_year"):  # en names the month, zh-CN numbers it
            assert placeholders(chinese) == placeholders(english), key


@pytest.mark.parametrize("locale", LOCALES)
def test_every_event_type_has_a_name(locale: str) -> None:
    names = VOCABULARIES[parse_locale(locale)].event_names
    assert set(names) == WORDED_EVENT_TYPES, "an event type without words, or words for none"
    assert all(names.values())


@pytest.mark.parametrize("locale", LOCALES)
def test_every_follow_up_kind_stage_and_variable_has_words(locale: str) -> None:
    words = VOCABULARIES[parse_locale(locale)]
    kinds = set(get_args(get_args(LeadFollowedUpData.model_fields["kind"].annotation)[0]))
    assert kinds | {"wechat"} <= set(words.follow_up_kinds)
    assert set(words.stages) == {"new", "MQL", "SQL", "opportunity", "won", "lost"}
    # The reasons the lifecycle itself gives, the default ruleset's and a release.
    own = set(re.findall(r'to_pool\("(\w+)"', inspect.getsource(lifecycle)))
    assert own == {"unassigned", "rep_unavailable", "team_unavailable"}
    assert set(words.pool_reasons) == own | {"no_follow_up_48h", "idle_7d", "released"}
    assert set(VARIABLES) <= set(words.variables)
    assert set(words.variable_families) == set(VARIABLE_FAMILIES)
    assert set(ACTIONS) == set(words.actions) == set(words.params)


def test_the_words_answer_is_small_and_in_the_language_asked() -> None:
    chinese = event_words("zh-CN")
    assert chinese["locale"] == "zh-CN"
    assert chinese["events"]["lead.followed_up"] == "已跟进"
    assert chinese["events"]["lead.returned_to_pool"] == "退回公海"
    assert chinese["kinds"]["wechat"] == "微信"
    assert chinese["stages"]["opportunity"] == "商机"
    assert chinese["pool_reasons"]["no_follow_up_48h"] == "48 小时未跟进"
    english = event_words("en")
    assert english["events"]["lead.returned_to_pool"] == "Back to the public pool"
    assert set(english) == set(chinese) == {"locale", "events", "kinds", "stages", "pool_reasons"}


def test_every_built_in_template_exists_in_every_language() -> None:
    ids = {locale: set(templates) for locale, templates in BUILTIN_TRANSLATIONS.items()}
    assert set(ids) == set(LOCALES)
    assert ids["zh-CN"] == ids["en"]


@pytest.mark.parametrize(
    ("duration", "words"),
    [
        ("PT72H", "72 小时"),
        ("P3D", "3 天"),
        ("P1DT12H", "1 天 12 小时"),
        ("PT30M", "30 分钟"),
        ("PT1S", "1 秒"),
        ("P2W", "2 周"),
        ("PT0S", "0 秒"),
    ],
)
def test_a_duration_reads_in_chinese(duration: str, words: str) -> None:
    assert duration_in_words(duration, "zh-CN") == words


_NUMBER = st.none() | st.integers(min_value=0, max_value=400).map(str)
_UNIT_SECONDS = {"周": 604800, "天": 86400, "小时": 3600, "分钟": 60, "秒": 1}


@st.composite
def durations(draw: st.DrawFn) -> str:
    """ISO 8601 durations in any mix of units (some too long for the model)."""
    weeks, days, hours, minutes, seconds = (draw(_NUMBER) for _ in range(5))
    date = (f"{weeks}W" if weeks else "") + (f"{days}D" if days else "")
    time = "".join(
        f"{value}{unit}" for value, unit in ((hours, "H"), (minutes, "M"), (seconds, "S")) if value
    )
    return "P" + date + ("T" + time if time else "")


@given(durations())
def test_every_duration_reads_as_numbers_and_chinese_units_adding_up(text: str) -> None:
    try:
        length = parse_duration(text)
    except ValueError:
        return
    words = duration_in_words(text, "zh-CN")
    assert re.fullmatch(r"\d+ (周|天|小时|分钟|秒)( \d+ (周|天|小时|分钟|秒))*", words), words
    tokens = words.split()
    total = sum(
        int(number) * _UNIT_SECONDS[unit]
        for number, unit in zip(tokens[::2], tokens[1::2], strict=True)
    )
    assert total == length.total_seconds()


def test_a_rule_and_a_timer_read_as_chinese_sentences() -> None:
    ruleset = parse_ruleset(default_ruleset_document(), DIRECTORY)
    sentences = {d["id"]: d["sentence"] for d in describe_ruleset(ruleset, DIRECTORY, "zh-CN")}
    assert sentences["east-website"] == (
        "当新线索进入时，如果来源为 website 且 地区为 east 且 进线次数等于 1："
        "分配给Li Wei；创建任务 first follow up，24 小时内完成。不再执行后续规则。"
    )
    assert sentences["reclaim-48h"] == (
        "当计时器 reclaim 到期时：将线索退回公海（原因：48 小时未跟进）；"
        "用消息 lead-reclaimed 通知团队经理。"
    )
    assert sentences["idle"].startswith("计时器 idle 启动后 7 天到期。在登记了一次跟进时启动。")
    assert sentences["weekly-30d"].startswith(
        "培育序列 weekly-30d 依次发送：立即发送 welcome，然后 7 天后发送 article-1"
    )


def test_what_a_candidate_changes_reads_in_chinese() -> None:
    base = default_ruleset_document()
    candidate = copy.deepcopy(base)
    for timer in candidate["timers"]:
        if timer["id"] == "reclaim":
            timer["after"] = "PT72H"
    for rule in candidate["rules"]:
        if rule["id"] == "east-website":
            rule["priority"] = 120
            rule["actions"][0]["params"]["rep"] = "rep-east-2"
    changes = describe_changes(
        parse_ruleset(base, DIRECTORY), parse_ruleset(candidate, DIRECTORY), DIRECTORY, "zh-CN"
    )
    differences = {c["id"]: c["differences"] for c in changes}
    assert differences["reclaim"] == ["改为 72 小时后到期（原为 48 小时）"]
    assert differences["east-website"] == ["优先级 100 → 120", "改为分配给Zhang Min（原为Li Wei）"]


def test_a_replay_summary_reads_in_chinese() -> None:
    moved = [
        AssignmentChange(f"L{i}", "rep-east-1", "east", "rep-east-2", "east") for i in range(3)
    ]
    diff = ReplayDiff(
        leads_replayed=10,
        events_replayed=40,
        assignments=moved,
        reps=[],
        teams=[],
        movements=[Movement("reclaim", "no_follow_up_48h", 2, 5, ["L1", "L2", "L3"])],
        rules=[],
        rules_changed=["east-website", "reclaim-48h"],
    )
    window = Window(
        captured_from=datetime(2026, 11, 6, tzinfo=UTC), now=datetime(2026, 12, 6, tzinfo=UTC)
    )
    assert summary_in_words(diff, DIRECTORY, window, "zh-CN") == [
        "最近 30 天（11月6日 \u2013 12月6日）：3 条线索会分给Zhang Min，而不是Li Wei。",
        "会多收回 3 条线索到公海。",
        "提醒、培育序列加入、发给线索的邮件和通知没有变化。",
        "候选规则集改动的规则：east-website和reclaim-48h。",
    ]


def test_labels_come_in_each_language() -> None:
    chinese = labels("zh-CN")
    assert chinese["events"]["lead.captured"] == "新线索进入"
    assert chinese["variables"]["source"] == "来源"
    assert chinese["durations"]["hours"] == ["小时", "小时"]
    assert labels()["events"]["lead.captured"] == "a lead arrives"  # en stays the default


@pytest.mark.parametrize(
    ("header", "locale"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
        ("zh", "zh-CN"),
        ("zh-Hans-CN", "zh-CN"),
        ("en-GB,en;q=0.9", "en"),
        ("fr-FR, en;q=0.5, zh;q=0.7", "zh-CN"),
        ("en;q=0.9, zh-CN;q=0.9", "en"),  # equal weight: the header's order
        ("fr, de", None),
        ("*", None),
        ("zh;q=0", None),
        ("", None),
    ],
)
def test_accept_language_picks_a_language_leadflow_speaks(header: str, locale: str) -> None:
    assert negotiate(header) == locale


def test_a_locale_is_read_exactly() -> None:
    assert parse_locale("zh-cn") == "zh-CN" and parse_locale("EN") == "en"
    with pytest.raises(UnknownLocale):
        parse_locale("fr")


@pytest.mark.parametrize(
    ("amount", "currency", "words"),
    [
        ("1200000", None, "¥1,200,000"),
        ("1200000", "CNY", "¥1,200,000"),
        ("99.5", "USD", "US$99.50"),
        (1234567.891, "EUR", "€1,234,567.89"),
        ("10", "CHF", "CHF 10"),
        ("n/a", "CNY", "n/a"),
    ],
)
def test_money_reads_with_its_currency_and_grouping(
    amount: object, currency: str | None, words: str
) -> None:
    assert money(amount, currency) == words


def test_a_moment_reads_in_the_time_zone_and_language() -> None:
    moment = "2026-12-08T06:00:00+00:00"
    assert local_time(moment, "Asia/Shanghai", "zh-CN") == "2026年12月8日 14:00"
    assert local_time(moment, "Europe/Berlin", "en") == "2026-12-08 07:00"
    assert local_time(None, "Asia/Shanghai", "en") is None


def test_messages_go_in_the_recipients_language() -> None:
    doc = default_directory_document()
    doc["reps"][0]["locale"] = "en"
    directory = parse_directory(doc)
    rep = directory.reps[0]
    assert recipient_locale(Target("email", rep.email, rep.id), directory, "zh-CN") == "en"
    other = directory.reps[1]
    assert recipient_locale(Target("email", other.email, other.id), directory, "zh-CN") == "zh-CN"
    lead = LeadState(lead_id="l", attributes={"locale": "en"})
    assert lead_locale(lead, "zh-CN") == "en"
    assert lead_locale(LeadState(lead_id="l", attributes={"locale": "klingon"}), "zh-CN") == "zh-CN"


def test_a_directory_refuses_a_language_leadflow_does_not_speak() -> None:
    doc = default_directory_document()
    doc["reps"][0]["locale"] = "fr"
    with pytest.raises(InvalidDirectory, match="/reps/0/locale"):
        parse_directory(doc)


def test_a_chinese_reminder_names_the_lead_the_time_and_the_amount() -> None:
    lead = LeadState(
        lead_id="lead-1",
        owner=DIRECTORY.reps[0].id,
        team=DIRECTORY.reps[0].team,
        name="王芳",
        company="华东机电",
        created_at="2026-12-07T01:30:00+00:00",
        won_amount="1200000",
        won_currency="CNY",
    )
    fields = message_fields(lead, directory=DIRECTORY, locale="zh-CN", time_zone="Asia/Shanghai")
    assert fields["won_amount"] == "¥1,200,000"
    template = find_template(Ruleset(name="none"), "follow-up-overdue", "zh-CN")
    assert template is not None
    message = render(template, fields)
    assert message.subject == "跟进超时提醒：王芳（华东机电）"
    assert "线索进入时间：2026年12月7日 09:30" in message.body
    for locale, templates in BUILTIN_TRANSLATIONS.items():
        for template_id, builtin in templates.items():
            rendered = render(builtin, fields)
            assert "{" not in rendered.subject + rendered.body, (locale, template_id)


def test_stage_and_pool_reason_read_as_words_in_a_message() -> None:
    lead = LeadState(lead_id="l", stage="opportunity", in_pool=True, pool_reason="idle_7d")
    chinese = message_fields(lead, locale="zh-CN")
    assert (chinese["stage_words"], chinese["pool_reason_words"]) == ("商机", "7 天未跟进")
    english = message_fields(lead, locale="en")
    assert (english["stage_words"], english["pool_reason_words"]) == (
        "Opportunity",
        "No follow-up for 7 days",
    )
