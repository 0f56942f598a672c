"""A campaign run's reach: the launching caller's subtrees, within the subtree of the facility that owns
the campaign and of the one that owns its segment."""

from __future__ import annotations

from aftercare.store.facilities import audience_reach
from models.facility_tables import Facility

TREE = [
    Facility(key="group", parent=None),
    Facility(key="north", parent="group"),
    Facility(key="north-clinic", parent="north"),
    Facility(key="south", parent="group"),
]


def test_the_whole_group_s_definitions_launched_by_the_whole_group_reach_everyone() -> None:
    assert audience_reach(TREE, [], (None, None)) is None


def test_a_facility_s_campaign_reaches_its_subtree_whoever_launches_it() -> None:
    assert audience_reach(TREE, [], ("north", None)) == {"north", "north-clinic"}
    assert audience_reach(TREE, [], (None, "north")) == {"north", "north-clinic"}


def test_a_clinic_launching_its_parent_s_campaign_reaches_only_its_own_patients() -> None:
    assert audience_reach(TREE, ["north-clinic"], ("north", None)) == {"north-clinic"}


def test_a_campaign_over_another_subtree_s_segment_reaches_nobody() -> None:
    assert audience_reach(TREE, [], ("south", "north")) == set()
