"""analytics: a message's update appends one delta, its changes, where it appended two

Revision ID: 0019
Revises: 0017

`0015`'s trigger counted a message's update as the old row taken away and the new row added: two
delta rows, each with its key (the patient's facility probed when the message names none) and each
with the bounce, reply and opt-out probes. An update that keeps the message's key (its facility,
creation time, channel, journey, template, campaign run and patient: every send's status changes)
now appends one row holding only what changed. The bounce is the same for both rows and cancels; a
reply or an opt-out in the 7 days after the message counts only once it was sent, so it is probed only
when `sent_at` is set or cleared. An update that changes nothing counted appends nothing, and one
that moves the key is counted as before. The rollups' numbers are unchanged (`aftercare analytics
check` rebuilds them from the facts and compares).
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "0019"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _migration_0015() -> ModuleType:
    """A private copy of migration `0015`, whose statement builders render this one's statements."""
    path = Path(__file__).with_name("0015_analytics_deltas.py")
    spec = importlib.util.spec_from_file_location("aftercare_migration_0015_for_0019", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_SENT = "m.sent_at IS NOT NULL"
_DELIVERED = "(m.delivered_at IS NOT NULL OR m.status IN ('delivered', 'printed'))"
_FAILED = "m.status IN ('failed', 'undelivered')"
# Each counter a status change can move, as a condition on a message row `m` (`0015`'s expressions).
_CHANGES = {
    "sent": _SENT,
    "delivered": _DELIVERED,
    "failed": _FAILED,
    "blocked": "m.status = 'skipped'",
    "opened": "m.opened_at IS NOT NULL",
    "clicked": "m.clicked_at IS NOT NULL",
}
_KEPT_KEY = ("facility", "created_at", "channel", "journey_key", "template_key", "campaign_run_id", "patient_id")


def _functions() -> str:
    m = _migration_0015()
    differences = "\n".join(
        f"    d_{name} := ({condition.replace('m.', 'n.')})::int - ({condition.replace('m.', 'o.')})::int;"
        for name, condition in _CHANGES.items()
    )
    replied = m._within_7_days("n", "inbound_messages", "x.keyword IS NULL", "received_at")
    opted_out = m._within_7_days("n", "consent_events", m._REVOKED, "recorded_at")
    old_key, new_key = (", ".join(f"{row}.{field}" for field in _KEPT_KEY) for row in ("OLD", "NEW"))
    changed = ", ".join(f"d_{name}" for name in (*_CHANGES, "replied", "opted_out"))
    zeros = ", ".join("0" for _ in (*_CHANGES, "replied", "opted_out"))
    delta = m._add(
        "analytics_messages",
        m._MESSAGE_KEY + f", 0, {', '.join(f'd_{name}' for name in _CHANGES)}, 0, d_replied, d_opted_out",
    )
    failure = m._ADD["failure"]
    return rf"""
CREATE FUNCTION analytics_count_failure(m messages, delta integer) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    {failure}
END
$$;

CREATE FUNCTION analytics_count_message_update(o messages, n messages) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    m messages := n;
    {" ".join(f"d_{name} integer;" for name in _CHANGES)}
    d_replied integer := 0;
    d_opted_out integer := 0;
BEGIN
{differences}
    IF d_sent <> 0 THEN  -- a reply or opt-out counts once the message was sent (its key is unchanged)
        d_replied := d_sent * ({replied})::int;
        d_opted_out := d_sent * ({opted_out})::int;
    END IF;
    IF ({changed}) IS DISTINCT FROM ({zeros}) THEN
        {delta}
    END IF;
    IF o.status IN ('failed', 'undelivered') THEN
        PERFORM analytics_count_failure(o, -1);
    END IF;
    IF n.status IN ('failed', 'undelivered') THEN
        PERFORM analytics_count_failure(n, 1);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION analytics_message_change() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public AS $$
BEGIN
    -- An update reaches here only when something counted changed (the trigger's WHEN).
    IF TG_OP = 'UPDATE' AND ({old_key}) IS NOT DISTINCT FROM ({new_key}) THEN
        PERFORM analytics_count_message_update(OLD, NEW);
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        PERFORM analytics_count_message(OLD, -1, true);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM analytics_count_message(NEW, 1, TG_OP = 'UPDATE');
    END IF;
    RETURN NULL;
END
$$;
"""


def _previous() -> str:
    """`0015`'s trigger function (cut from its functions), put back by the downgrade."""
    functions: str = _migration_0015()._FUNCTIONS
    start = functions.index("CREATE FUNCTION analytics_message_change()")
    end = functions.index("$$;", start) + len("$$;")
    return (
        functions[start:end].replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
        + "\nDROP FUNCTION analytics_count_message_update(messages, messages);"
        + "\nDROP FUNCTION analytics_count_failure(messages, integer);"
    )


def upgrade() -> None:
    op.execute(_functions())


def downgrade() -> None:
    op.execute(_previous())
