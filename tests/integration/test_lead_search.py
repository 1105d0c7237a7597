"""Finding leads (issue #19, docs/leads-search.md) on real SQLite and PostgreSQL: search by
name, company, email and phone (Chinese text, any phone formatting), every filter, every
sort paged across page boundaries, the CSV export, saved views, and what a caller's scope
lets them see."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import MetaData, create_engine

from api.app import create_app
from domain.access import LeadScope
from domain.events import parse_event
from domain.state import Decision, LeadState
from leadflow.bootstrap import Store
from leadflow.settings import Settings
from projections.leads import (
    SORT_COLUMNS,
    LeadFilters,
    LeadsProjection,
    find_leads,
    leads_table,
    row_of,
)
from projections.projector import Projector
from store.schema import migrated

ADMIN = {"Authorization": "Bearer lf_test_admin"}
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

# name, company, email, phone, source, region, channel, owner/team (None: the pool)
PEOPLE = [
    (
        "张敏",
        "华东科技有限公司",
        "zhangmin@huadong.cn",
        "+86 138 0013 8000",
        "website",
        "east",
        "wechat",
        ("rep-a", "east"),
    ),
    ("张伟", "北方贸易", "zhangwei@beifang.cn", None, "fair", "north", None, ("rep-b", "west")),
    ("Ann Lee", "Acme Tech", "Ann.Lee@Acme.example", "13900139000", "website", "east", "ads", None),
    ("王芳", "西部科技", None, "+86-137-0000-1111", "ads", "west", "wechat", ("rep-a", "east")),
    ('=HYPERLINK("x")', "@evil", "-x@example.com", "+8613500001234", "import", "south", None, None),
    ("李娜", None, "lina@example.com", None, "website", "east", None, ("rep-c", "west")),
]


def incoming(type_: str, data: dict[str, Any], lead_id: UUID | None, at: datetime) -> Any:
    body: dict[str, Any] = {"type": type_, "data": data, "occurred_at": at.isoformat()}
    if lead_id is not None:
        body["lead_id"] = str(lead_id)
    return parse_event(body, now=at, phone_region="CN")


def assign(store: Store, lead_id: UUID, owner: str, team: str) -> None:
    store.event_log.record_once(
        lead_id,
        Decision("lead.assigned", {"owner": owner, "team": team}, "rule-1"),
        event_id=str(uuid4()),
        occurred_at=T0 + timedelta(days=10),
        ruleset_version=1,
        caused_by="the-trigger",
    )


def to_pool(store: Store, lead_id: UUID) -> None:
    store.event_log.record_once(
        lead_id,
        Decision("lead.returned_to_pool", {"reason": "unassigned"}, None),
        event_id=str(uuid4()),
        occurred_at=T0 + timedelta(days=10),
        ruleset_version=1,
        caused_by="the-trigger",
    )


def project(store: Store) -> None:
    Projector(store.event_log, store.engine, [LeadsProjection()], page_size=1000).catch_up()


def capture_people(store: Store) -> dict[str, str]:
    """PEOPLE captured a day apart (the first oldest); lead id by name."""
    ids: dict[str, str] = {}
    for day, (name, company, email, phone, source, region, channel, owner) in enumerate(PEOPLE):
        data = {"name": name, "source": source, "region": region}
        data |= {k: v for k, v in (("company", company), ("email", email)) if v}
        data |= {k: v for k, v in (("phone", phone), ("channel", channel)) if v}
        [result] = store.append(
            [incoming("lead.captured", data, None, T0 + timedelta(days=day))], [None]
        )
        assert result.lead_id is not None
        ids[name] = str(result.lead_id)
        if owner is None:
            to_pool(store, result.lead_id)
        else:
            assign(store, result.lead_id, *owner)
    store.append(
        [incoming("lead.qualified", {"stage": "MQL"}, UUID(ids["张伟"]), T0 + timedelta(days=11))],
        [None],
    )
    project(store)
    return ids


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def app_store(client: TestClient) -> Store:
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    return store


@pytest.fixture
def people(client: TestClient) -> dict[str, str]:
    return capture_people(app_store(client))


def names(client: TestClient, headers: dict[str, str] = ADMIN, **params: Any) -> list[str]:
    response = client.get("/v1/leads", params={"limit": 500, **params}, headers=headers)
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


# --- search ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "found"),
    [
        ("张", {"张敏", "张伟"}),  # a prefix of a Chinese name
        ("敏", {"张敏"}),  # inside it
        ("科技", {"张敏", "王芳"}),  # inside a company: 华东科技有限公司, 西部科技
        ("华东科技有限公司", {"张敏"}),
        ("ann", {"Ann Lee"}),  # any case
        ("LEE", {"Ann Lee"}),
        ("acme.example", {"Ann Lee"}),  # email
        ("ACME TECH", {"Ann Lee"}),  # company, any case
        ("138 0013", {"张敏"}),  # a phone however it is formatted
        ("+86 138-0013-8000", {"张敏"}),
        ("13800138000", {"张敏"}),
        ("0000-1111", {"王芳"}),
        ("100%", set()),  # LIKE's wildcards are only text
        ("_", set()),
        ("nobody", set()),
    ],
)
def test_search_finds_leads_by_name_company_email_and_phone(
    client: TestClient, people: dict[str, str], q: str, found: set[str]
) -> None:
    assert set(names(client, q=q)) == found


def test_an_erased_lead_is_not_found_by_its_erased_data(
    client: TestClient, people: dict[str, str]
) -> None:
    store = app_store(client)
    store.event_log.erase_lead(
        UUID(people["张敏"]), erased_by="key_admin", now=T0 + timedelta(days=20)
    )
    project(store)
    for q in ("张敏", "华东", "zhangmin", "138 0013"):
        assert names(client, q=q) == []
    # Still listed (by what is not personal), with its data gone.
    assert None in names(client, region="east")


# --- filters ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "found"),
    [
        ({"owner": "rep-a"}, {"张敏", "王芳"}),
        ({"owner": ["rep-a", "rep-c"]}, {"张敏", "王芳", "李娜"}),
        ({"team": "west"}, {"张伟", "李娜"}),
        ({"stage": "MQL"}, {"张伟"}),
        ({"stage": ["MQL", "new"]}, {p[0] for p in PEOPLE}),
        ({"source": "website"}, {"张敏", "Ann Lee", "李娜"}),
        ({"source": ["fair", "ads"]}, {"张伟", "王芳"}),
        ({"region": "east"}, {"张敏", "Ann Lee", "李娜"}),
        ({"channel": "wechat"}, {"张敏", "王芳"}),
        ({"in_pool": "true"}, {"Ann Lee", '=HYPERLINK("x")'}),
        ({"in_pool": "false", "region": "east"}, {"张敏", "李娜"}),
        ({"created_from": "2026-03-04"}, {"Ann Lee", "王芳", '=HYPERLINK("x")', "李娜"}),
        ({"created_to": "2026-03-03"}, {"张敏", "张伟"}),  # a date: that day included
        ({"created_to": "2026-03-03T09:00:00Z"}, {"张敏"}),  # a time: exclusive
        # Dates are UTC days unless `tz` names another zone: 张伟's 03-03 09:00 UTC is
        # 03-02 23:00 in Honolulu.
        ({"created_to": "2026-03-02"}, {"张敏"}),
        ({"created_to": "2026-03-02", "tz": "Pacific/Honolulu"}, {"张敏", "张伟"}),
        ({"created_from": "2026-03-03", "tz": "Pacific/Honolulu"}, {p[0] for p in PEOPLE[2:]}),
        ({"created_to": "9999-12-31", "tz": "Asia/Shanghai"}, {p[0] for p in PEOPLE}),
        ({"created_to": "2026-03-03T09:00:00Z", "tz": "Asia/Shanghai"}, {"张敏"}),
        (
            {"created_from": "2026-03-03T17:00:00+08:00", "created_to": "2026-03-04"},
            {"张伟", "Ann Lee"},
        ),
        ({"q": "科技", "owner": "rep-a", "channel": "wechat"}, {"张敏", "王芳"}),
        ({"owner": "rep-b", "q": "科技"}, set()),
    ],
)
def test_every_filter_and_several_values_of_one(
    client: TestClient, people: dict[str, str], params: dict[str, Any], found: set[str]
) -> None:
    assert set(names(client, **params)) == found


def test_newest_first_by_default_and_items_carry_name_company_email_phone(
    client: TestClient, people: dict[str, str]
) -> None:
    assert names(client) == [p[0] for p in reversed(PEOPLE)]
    first = client.get("/v1/leads", params={"q": "张敏"}, headers=ADMIN).json()["items"][0]
    assert (first["name"], first["company"]) == ("张敏", "华东科技有限公司")
    assert (first["email"], first["phone"]) == ("zhangmin@huadong.cn", "+8613800138000")


# --- sorting and paging -------------------------------------------------------------------


def every_page(client: TestClient, limit: int, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = client.get("/v1/leads", params=query, headers=ADMIN)
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items
        assert len(body["items"]) == limit


STAGE_ORDER = ["new", "MQL", "SQL", "opportunity", "won", "lost"]


def sort_key(item: dict[str, Any], sort: str) -> Any:
    """What the list orders by, as a user reads it (text sorts by code point here: both test
    databases compare bytes, PostgreSQL's being created with the C.UTF-8 collation)."""
    match sort:
        case "created_at" | "last_activity_at":
            return datetime.fromisoformat(item[sort])
        case "name" | "company":
            return (item[sort] or "").lower()
        case "stage":
            return STAGE_ORDER.index(item["stage"])
        case "owner":
            return item["owner"] or ""
        case _:
            return item[sort]


def test_every_sort_pages_through_every_matching_lead_once_in_order(client: TestClient) -> None:
    """Many ties (a few names, scores and times for 40 leads), so pages split runs of equal
    values: a keyset that mishandled ties would skip or repeat a lead."""
    store = app_store(client)
    events = [
        incoming(
            "lead.captured",
            {
                "email": f"p{i}@example.com",
                "name": ["Bo", "ann", "Ann", "张三", None][i % 5],
                "company": ["Zeta", "阿里", None, "acme"][i % 4],
                "source": ["web", "fair"][i % 2],
            },
            None,
            T0 + timedelta(minutes=i // 3),
        )
        for i in range(40)
    ]
    ids = [r.lead_id for r in store.append(events, [None] * len(events))]
    for i, lead_id in enumerate(ids):
        assert lead_id is not None
        if i % 3 == 0:
            assign(store, lead_id, ["rep-b", "rep-a"][i % 2], "east")
        if i % 4 == 0:
            store.append(
                [incoming("lead.qualified", {"stage": "SQL"}, lead_id, T0 + timedelta(hours=i))],
                [None],
            )
    project(store)

    @hypothesis_settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        sort=st.sampled_from(list(SORT_COLUMNS)),
        descending=st.booleans(),
        limit=st.integers(1, 9),
        source=st.sampled_from([None, "web", "fair"]),
    )
    def pages_in_order(sort: str, descending: bool, limit: int, source: str | None) -> None:
        params = {"sort": f"-{sort}" if descending else sort}
        if source:
            params["source"] = source
        paged = every_page(client, limit, **params)
        matching = [i for i, e in enumerate(events) if source in (None, e.data["source"])]
        assert sorted(item["lead_id"] for item in paged) == sorted(str(ids[i]) for i in matching)
        expected = sorted(paged, key=lambda item: (sort_key(item, sort), item["lead_id"]))
        assert paged == (expected[::-1] if descending else expected)

    pages_in_order()


@pytest.mark.parametrize(
    ("params", "path"),
    [
        ({"sort": "email"}, "/sort"),
        ({"sort": "--name"}, "/sort"),
        ({"stage": "hot"}, "/stage"),
        ({"stage": ["new", "hot"]}, "/stage"),
        ({"owner": ["rep-a", ""]}, "/owner"),
        ({"owner": [f"rep-{i}" for i in range(51)]}, "/owner"),
        ({"region": "x" * 201}, "/region"),
        ({"q": " "}, "/q"),
        ({"q": "x" * 201}, "/q"),
        ({"created_from": "yesterday"}, "/created_from"),
        ({"created_to": "2026-03-01T09:00:00"}, "/created_to"),  # no offset
        ({"created_from": "2026-03-05", "created_to": "2026-03-04"}, "/created_to"),
        ({"format": "xml"}, "/format"),
        ({"tz": "Mars/Olympus_Mons", "created_from": "2026-03-01"}, "/tz"),
        ({"tz": "+08:00"}, "/tz"),
    ],
)
def test_bad_search_filter_or_sort_is_422_naming_it(
    client: TestClient, params: dict[str, Any], path: str
) -> None:
    response = client.get("/v1/leads", params=params, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert path in [detail["path"] for detail in response.json()["error"]["details"]]


def test_a_cursor_only_continues_the_sort_and_search_it_was_made_for(
    client: TestClient, people: dict[str, str]
) -> None:
    first = client.get("/v1/leads", params={"limit": 1, "sort": "name"}, headers=ADMIN).json()
    cursor = first["next_cursor"]
    for other in ({"sort": "-name"}, {"sort": "score"}, {"sort": "name", "q": "张"}):
        response = client.get("/v1/leads", params={**other, "cursor": cursor}, headers=ADMIN)
        assert response.status_code == 422, other
        assert response.json()["error"]["details"][0]["path"] == "/cursor"
    same = client.get("/v1/leads", params={"sort": "name", "cursor": cursor}, headers=ADMIN)
    assert same.status_code == 200


# --- CSV ------------------------------------------------------------------------------


def test_csv_export_is_the_current_view_with_bom_header_and_formula_cells_defused(
    client: TestClient, people: dict[str, str]
) -> None:
    params = {"format": "csv", "sort": "name", "in_pool": "true"}
    response = client.get("/v1/leads", params=params, headers=ADMIN)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["content-disposition"]
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [row["lead_id"] for row in rows] == [
        people[name] for name in ('=HYPERLINK("x")', "Ann Lee")
    ]
    evil, ann = rows
    assert evil["name"] == '\'=HYPERLINK("x")'
    assert (evil["company"], evil["email"], evil["phone"]) == (
        "'@evil",
        "'-x@example.com",
        "'+8613500001234",
    )
    assert (ann["company"], ann["in_pool"], ann["owner"]) == ("Acme Tech", "true", "")
    chinese = client.get("/v1/leads", params={"format": "csv", "q": "科技"}, headers=ADMIN)
    lines = chinese.content.decode("utf-8-sig").splitlines()
    assert lines[0].split(",")[:5] == ["lead_id", "name", "company", "email", "phone"]
    assert [line.split(",")[1] for line in lines[1:]] == ["王芳", "张敏"]  # newest first


# --- scope ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "found"),
    [
        (LeadScope(owners=frozenset({"rep-a"})), {"张敏", "王芳"}),
        (LeadScope(owners=frozenset({"rep-c"}), pool=True), {"李娜", "Ann Lee", '=HYPERLINK("x")'}),
        (LeadScope(teams=frozenset({"west"})), {"张伟", "李娜"}),
        (
            LeadScope(owners=frozenset({"rep-a"}), teams=frozenset({"west"})),
            {"张敏", "王芳", "张伟", "李娜"},
        ),
        (LeadScope(), set()),
        (LeadScope(everything=True), {p[0] for p in PEOPLE}),
    ],
)
def test_find_leads_shows_only_what_the_scope_allows(
    client: TestClient, people: dict[str, str], scope: LeadScope, found: set[str]
) -> None:
    with app_store(client).engine.connect() as conn:
        seen = find_leads(conn, LeadFilters(), None, 100, scope=scope)
    assert {state.name for state in seen} == found
    with app_store(client).engine.connect() as conn:
        searched = find_leads(conn, LeadFilters(q="科技"), None, 100, scope=scope)
    assert {state.name for state in searched} == found & {"张敏", "王芳"}


# --- saved views ------------------------------------------------------------------------


def test_saved_views_are_created_listed_replaced_and_deleted_per_owner(client: TestClient) -> None:
    query = {"q": "科技", "stage": ["new", "MQL"], "in_pool": False, "sort": "-name"}
    created = client.post("/v1/views", json={"name": "科技 leads", "query": query}, headers=ADMIN)
    assert created.status_code == 201, created.text
    view = created.json()
    assert (view["name"], view["query"]) == ("科技 leads", query)
    listed = client.get("/v1/views", headers=ADMIN).json()["views"]
    assert [v["view_id"] for v in listed] == [view["view_id"]]
    # The same name again replaces that view's query.
    # A view keeps the time zone its dates mean.
    zoned = {"owner": "rep-a", "created_from": "2026-03-01", "tz": "Asia/Shanghai"}
    again = {"name": "科技 leads", "query": zoned}
    replaced = client.post("/v1/views", json=again, headers=ADMIN)
    assert replaced.status_code == 201
    assert (replaced.json()["view_id"], replaced.json()["query"]) == (
        view["view_id"],
        {**zoned, "owner": ["rep-a"]},
    )
    bad_zone = {"name": "x", "query": {"tz": "Shanghai"}}
    refused = client.post("/v1/views", json=bad_zone, headers=ADMIN)
    assert refused.status_code == 422
    assert "/query/tz" in [d["path"] for d in refused.json()["error"]["details"]]
    # Another key neither sees nor deletes it.
    other_key = app_store(client).keys.issue(["read"], "other").key
    other = {"Authorization": f"Bearer {other_key}"}
    assert client.get("/v1/views", headers=other).json() == {"views": []}
    assert client.delete(f"/v1/views/{view['view_id']}", headers=other).status_code == 404
    deleted = client.delete(f"/v1/views/{view['view_id']}", headers=ADMIN)
    assert deleted.json() == {"view_id": view["view_id"], "deleted": True}
    assert client.get("/v1/views", headers=ADMIN).json() == {"views": []}
    assert client.delete(f"/v1/views/{view['view_id']}", headers=ADMIN).status_code == 404
    assert client.get("/v1/views").status_code == 401


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"name": "", "query": {}}, "/name"),
        ({"name": "x" * 101, "query": {}}, "/name"),
        ({"query": {}}, "/name"),
        ({"name": "v"}, "/query"),
        ({"name": "v", "query": []}, "/query"),
        ({"name": "v", "query": {"limit": 5}}, "/query/limit"),
        ({"name": "v", "query": {"stage": "hot"}}, "/query/stage"),
        ({"name": "v", "query": {"sort": "email"}}, "/query/sort"),
        ({"name": "v", "query": {"in_pool": "maybe"}}, "/query/in_pool"),
        ({"name": "v", "query": {"q": ["a", "b"]}}, "/query/q"),
        ({"name": "v", "query": {}, "colour": "red"}, "/colour"),
    ],
)
def test_a_bad_view_is_422_naming_the_field_and_nothing_is_saved(
    client: TestClient, body: dict[str, Any], path: str
) -> None:
    response = client.post("/v1/views", json=body, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert path in [detail["path"] for detail in response.json()["error"]["details"]]
    assert client.get("/v1/views", headers=ADMIN).json() == {"views": []}


# --- the migration ----------------------------------------------------------------------


@pytest.mark.fresh_database
def test_leads_projected_before_the_search_columns_are_found_once_migrated(
    settings: Settings,
) -> None:
    settings.data_dir.mkdir(parents=True)
    engine = create_engine(settings.sqlalchemy_url)
    try:
        with migrated(engine, "0007"):
            pass
        state = LeadState(
            lead_id=str(uuid4()),
            name="Łukasz 王",
            company="华东科技",
            phone="+8613800138000",
            owner="rep-a",
            stage="SQL",
            created_at=T0.isoformat(),
            last_activity_at=T0.isoformat(),
        )
        row = row_of(state, 1)
        for derived in ("search_text", "name_key", "company_key", "owner_key", "stage_rank"):
            del row[derived]
        with engine.begin() as conn:
            # The typed table converts JSON and times; only the columns given are written.
            conn.execute(leads_table(MetaData()).insert(), [row])
        with migrated(engine):
            pass
        with engine.connect() as conn:
            for q in ("łukasz", "科技", "138 0013"):
                assert [s.lead_id for s in find_leads(conn, LeadFilters(q=q), None, 10)] == [
                    state.lead_id
                ]
    finally:
        engine.dispose()
