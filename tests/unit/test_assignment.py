from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from domain.directory import Rep
from rules.assignment import can_take, choose_rep


def make_rep(index: int, active: bool = True, capacity: int = 1000) -> Rep:
    return Rep(
        id=f"rep-{index}",
        name=f"Rep {index}",
        email=f"r{index}@example.com",
        team="east",
        capacity=capacity,
        active=active,
    )


teams = st.lists(st.tuples(st.booleans(), st.integers(0, 3)), min_size=1, max_size=6).map(
    lambda specs: [make_rep(i, active, capacity) for i, (active, capacity) in enumerate(specs)]
)


@st.composite
def situations(draw: st.DrawFn) -> tuple[list[Rep], dict[str, int], str | None]:
    reps = draw(teams)
    loads = {rep.id: draw(st.integers(0, 4)) for rep in reps}
    last = draw(st.none() | st.sampled_from([rep.id for rep in reps] + ["rep-gone"]))
    return reps, loads, last


@given(situations())
def test_round_robin_never_picks_an_inactive_or_full_rep(
    situation: tuple[list[Rep], dict[str, int], str | None],
) -> None:
    reps, loads, last = situation
    chosen = choose_rep(reps, "round_robin", loads, last)
    eligible = [rep.id for rep in reps if rep.active and loads[rep.id] < rep.capacity]
    if not eligible:
        assert chosen is None
        return
    assert chosen in eligible
    # It is the first eligible rep after the last one, wrapping around.
    ids = [rep.id for rep in reps]
    start = ids.index(last) + 1 if last in ids else 0
    assert chosen == next(i for i in ids[start:] + ids[:start] if i in eligible)


@given(situations())
def test_least_loaded_picks_a_rep_with_the_fewest_open_leads(
    situation: tuple[list[Rep], dict[str, int], str | None],
) -> None:
    reps, loads, last = situation
    chosen = choose_rep(reps, "least_loaded", loads, last)
    eligible = [rep for rep in reps if can_take(rep, loads)]
    if not eligible:
        assert chosen is None
        return
    fewest = min(loads[rep.id] for rep in eligible)
    assert chosen == next(rep.id for rep in eligible if loads[rep.id] == fewest)


@given(st.lists(st.booleans(), min_size=1, max_size=8), st.integers(1, 60))
def test_round_robin_balances_within_one(active: list[bool], leads: int) -> None:
    reps = [make_rep(i, is_active) for i, is_active in enumerate(active)]
    counts: Counter[str] = Counter()
    last: str | None = None
    for _ in range(leads):
        last = choose_rep(reps, "round_robin", counts, last)
        if last is None:
            break
        counts[last] += 1
    taking = [rep.id for rep in reps if rep.active]
    assert set(counts) <= set(taking)
    if taking:
        shares = [counts[rep_id] for rep_id in taking]
        assert max(shares) - min(shares) <= 1
        assert sum(shares) == leads


def test_capacity_counts_open_leads() -> None:
    assert not can_take(make_rep(0, capacity=0), {})
    assert can_take(make_rep(0, capacity=2), {"rep-0": 1})
    assert not can_take(make_rep(0, capacity=2), {"rep-0": 2})
    assert not can_take(make_rep(0, active=False), {})


def test_nobody_to_choose_from() -> None:
    assert choose_rep([], "round_robin", {}, None) is None
    assert choose_rep([], "least_loaded", {}, None) is None
