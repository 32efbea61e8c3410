"""clips.segment_id: a clip row is one job's decision on a segment (clip_id: job and segment)

Rows made before keep their ids (the segment's), which their releases refer to.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clips", schema=None) as batch_op:
        batch_op.add_column(sa.Column("segment_id", sa.String(length=128), nullable=False, server_default=""))
        batch_op.create_index(batch_op.f("ix_clips_segment_id"), ["segment_id"], unique=False)
    op.execute("UPDATE clips SET segment_id = clip_id")


def downgrade() -> None:
    with op.batch_alter_table("clips", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_clips_segment_id"))
        batch_op.drop_column("segment_id")
