"""analytics: the message trigger counts an insert and a key-keeping update itself, without a nested call

Revision ID: 0021
Revises: 0020

`0019`'s trigger function handed every insert and every update that keeps the message's key (every
send's own writes) to another PL/pgSQL function: `PERFORM analytics_count_message(NEW, 1, false)`,
`PERFORM analytics_count_message_update(OLD, NEW)`. Each is one more SQL statement per firing, which
builds the message row as a composite value and then the callee's record from it; with
`track_functions` the two callees took 75 and 125 µs a call in the real send activity at a million
messages. The trigger function now runs those two cases' statements itself, on `NEW` and `OLD`; a
delete, an update that moves the key and a failure's reason row still call the functions. The same
delta rows are appended: the rollups' numbers are unchanged (`aftercare analytics check`).
"""

import importlib.util
import re
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _migration(name: str) -> ModuleType:
    """A private copy of an earlier migration, whose statement builders render this one's."""
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"aftercare_migration_{name}_for_0021", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _on(row: str, statement: str, delta: str = "1") -> str:
    """A statement written for a message `m` (and a `delta`, a `with_bounce`) rendered on `row`."""
    statement = re.sub(r"\bm\.", f"{row}.", statement)
    statement = re.sub(r"\bwith_bounce\b", "false", statement)
    return re.sub(r"\bdelta\b", delta, statement)


_FAILED = "('failed', 'undelivered')"
# Set on the function itself: `CREATE OR REPLACE` takes the settings its text gives (`0020` set it).
_HEADER = """CREATE OR REPLACE FUNCTION analytics_message_change() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public SET plan_cache_mode = force_generic_plan AS $$"""


def _inline() -> str:
    m15, m19 = _migration("0015_analytics_deltas"), _migration("0019_analytics_message_update")
    changes = m19._CHANGES
    differences = "\n".join(
        f"        d_{name} := ({_on('NEW', condition)})::int - ({_on('OLD', condition)})::int;"
        for name, condition in changes.items()
    )
    replied = m15._within_7_days("NEW", "inbound_messages", "x.keyword IS NULL", "received_at")
    opted_out = m15._within_7_days("NEW", "consent_events", m15._REVOKED, "recorded_at")
    old_key, new_key = (", ".join(f"{row}.{field}" for field in m19._KEPT_KEY) for row in ("OLD", "NEW"))
    changed = ", ".join(f"d_{name}" for name in (*changes, "replied", "opted_out"))
    zeros = ", ".join("0" for _ in (*changes, "replied", "opted_out"))
    update_delta = m15._add(
        "analytics_messages",
        m15._MESSAGE_KEY + f", 0, {', '.join(f'd_{name}' for name in changes)}, 0, d_replied, d_opted_out",
    )
    return f"""{_HEADER}
DECLARE
    {" ".join(f"d_{name} integer;" for name in changes)}
    d_replied integer := 0;
    d_opted_out integer := 0;
BEGIN
    IF TG_OP = 'INSERT' THEN
        {_on("NEW", m15._ADD["message"])}
        IF NEW.status IN {_FAILED} THEN
            {_on("NEW", m15._ADD["failure"])}
        END IF;
        RETURN NULL;
    END IF;
    -- An update reaches here only when something counted changed (the trigger's WHEN).
    IF TG_OP = 'UPDATE' AND ({old_key}) IS NOT DISTINCT FROM ({new_key}) THEN
{differences}
        IF d_sent <> 0 THEN  -- a reply or opt-out counts once the message was sent (its key is unchanged)
            d_replied := d_sent * ({replied})::int;
            d_opted_out := d_sent * ({opted_out})::int;
        END IF;
        IF ({changed}) IS DISTINCT FROM ({zeros}) THEN
            {_on("NEW", update_delta)}
        END IF;
        IF OLD.status IN {_FAILED} THEN
            PERFORM analytics_count_failure(OLD, -1);
        END IF;
        IF NEW.status IN {_FAILED} THEN
            PERFORM analytics_count_failure(NEW, 1);
        END IF;
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
    """`0019`'s trigger function with `0020`'s setting."""
    functions: str = _migration("0019_analytics_message_update")._functions()
    start = functions.index("CREATE OR REPLACE FUNCTION analytics_message_change()")
    end = functions.index("$$;", start) + len("$$;")
    return (
        functions[start:end]
        + "\nALTER FUNCTION analytics_message_change() SET plan_cache_mode = force_generic_plan;"
    )


def upgrade() -> None:
    op.execute(_inline())


def downgrade() -> None:
    op.execute(_previous())
