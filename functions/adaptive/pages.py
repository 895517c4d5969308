"""What the device pages show of a user's devices: shared by the end-user page (/me/devices)
and the admin page (/admin/devices/<user>) of the adaptive function.

Only presentation: which device is the browser asking (its cookie's hash equals the item's
key), whether a trust still holds (``devices.is_trusted``, the sign-in's own rule) and
readable times. Nothing here reads or writes a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from idp_core.adaptive import devices
from idp_core.clock import readable_utc
from idp_core.models import Device, User


def device_rows(
    items: Sequence[Device], user: User, *, device_token: str | None, now: float
) -> list[dict[str, Any]]:
    """One row per device for the devices table, the browser's own device marked."""
    usable = devices.usable_token(device_token)
    current = devices.token_hash(usable) if usable else None
    rows = []
    for device in items:
        trusted = devices.is_trusted(device, user, now)
        rows.append(
            {
                "id": device.device_id,
                "name": device.name,
                "browser": device.browser or "Browser",
                "os": device.os or "unknown system",
                "first_seen": readable_utc(device.first_seen_at),
                "last_seen": readable_utc(device.last_seen_at),
                "last_ip": device.last_ip or "",
                "trusted_until": readable_utc(device.trusted_until) if trusted else None,
                # A trust that ended (its time, a factor change) can still be cleared from the item.
                "can_untrust": device.trusted_until is not None,
                "this_device": current is not None and device.key_hash == current,
            }
        )
    return rows
