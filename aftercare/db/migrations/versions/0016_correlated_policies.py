"""correlated facility policies: a row's check probes `patient_facilities`' primary key

The policies of `0004` (and the tables scoped after it) asked `patient_id IN (SELECT patient_id FROM
patient_facilities WHERE facility = ANY (...))`: uncorrelated, so every statement of a caller limited
to some facilities read all the patients of those facilities (a hash, or a scan per row), however few
rows it touched. They now ask `EXISTS (... WHERE pf.patient_id = <the row's patient> AND pf.facility =
ANY (...))`: one index probe per row, or one hash when a statement reads many rows, as the planner
finds cheaper. Children (message events, letters, enrollment steps and fetches) and the audit trail's
cases probe their parent's primary key the same way. What a caller sees does not change.

Revision ID: 0016
Revises: 0013
"""

from collections.abc import Sequence

from alembic import op

from aftercare.facilities.policies import rewrite_policies

revision: str = "0016"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    rewrite_policies(op.execute)


def downgrade() -> None:
    rewrite_policies(op.execute, legacy=True)
