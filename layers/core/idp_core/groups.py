"""Which groups exist and which are enabled, as the launch and the apps' role mappings read
them. Below ``accounts`` (where groups are created and disabled) and ``apps`` (which map
groups to roles), so both import it and neither imports the other's users.
"""

from __future__ import annotations

from collections.abc import Iterable

from idp_core.errors import NotFound
from idp_core.models import Group, User
from idp_core.names import canonical_group
from idp_core.ttl_cache import TtlCache


def existing_groups(names: Iterable[str]) -> set[str]:
    """Canonical names of the given groups, raising NotFound for any that does not exist."""
    wanted = {canonical_group(name) for name in names}
    if not wanted:
        return set()
    found = {group.name for group in Group.batch_get(list(wanted))}
    missing = sorted(wanted - found)
    if missing:
        raise NotFound(f"There is no group {missing[0]!r}; create it first.")
    return wanted


# Whether a group exists and is enabled, by table and name; a container keeps it this long, so
# disabling a group stops its roles everywhere within that time (like the MFA settings).
GROUPS_CACHE_SECONDS = 30.0
_group_states: TtlCache[tuple[str, str], bool] = TtlCache(GROUPS_CACHE_SECONDS)


def enabled_groups(user: User) -> set[str]:
    """The user's groups that exist and are not disabled: from this container's copy, and one
    BatchGet for the groups it has not read in the last ``GROUPS_CACHE_SECONDS``."""
    table = Group.Meta.table_name
    names = sorted(user.groups or ())
    unknown = [name for name in names if _group_states.get((table, name)) is None]
    if unknown:
        found = {group.name: not group.disabled for group in Group.batch_get(unknown)}
        for name in unknown:
            _group_states.put((table, name), found.get(name, False))
    return {name for name in names if _group_states.get((table, name))}


def forget_cached_groups() -> None:
    """Read the groups afresh next time (after a change in this container, and in tests)."""
    _group_states.clear()
