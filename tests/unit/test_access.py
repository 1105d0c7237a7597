"""Who sees which leads: a rep their own and the pool, a manager their teams', a director all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from domain.access import EVERYTHING, lead_scope
from domain.directory import Directory, parse_directory

DEMO = Path(__file__).parents[2] / "rules" / "default_directory.json"


@pytest.fixture(scope="module")
def directory() -> Directory:
    return parse_directory(json.loads(DEMO.read_text(encoding="utf-8")))


def test_a_rep_sees_own_leads_and_the_pool_only(directory: Directory) -> None:
    scope = lead_scope("rep", "rep-east-1", directory)
    assert scope.allows(owner="rep-east-1", team="east", in_pool=False)
    assert scope.allows(owner=None, team="west", in_pool=True)
    assert not scope.allows(owner="rep-east-2", team="east", in_pool=False)
    assert not scope.allows(owner="rep-west-1", team="west", in_pool=False)


def test_a_manager_sees_the_teams_they_manage(directory: Directory) -> None:
    scope = lead_scope("manager", "mgr-east", directory)
    assert scope.allows(owner="rep-east-2", team="east", in_pool=False)
    assert scope.allows(owner=None, team="west", in_pool=True)
    assert not scope.allows(owner="rep-west-1", team="west", in_pool=False)


def test_a_person_without_a_directory_entry_sees_only_the_pool(directory: Directory) -> None:
    scope = lead_scope("manager", None, directory)
    assert not scope.allows(owner="rep-east-1", team="east", in_pool=False)
    assert scope.allows(owner=None, team=None, in_pool=True)


@pytest.mark.parametrize("role", ["director", "admin"])
def test_directors_and_admins_see_everything(directory: Directory, role: str) -> None:
    assert lead_scope(role, "dir-sales", directory) == EVERYTHING  # type: ignore[arg-type]
