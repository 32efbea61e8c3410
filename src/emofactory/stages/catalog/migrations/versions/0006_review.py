"""annotators and annotations: the review page's people and their labels (seed 003, App. C.1)

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "annotators",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("lead", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
        sa.UniqueConstraint("token_sha256"),
    )
    op.create_table(
        "annotations",
        sa.Column("release_id", sa.String(length=64), nullable=False),
        sa.Column("clip_id", sa.String(length=128), nullable=False),
        sa.Column("annotator", sa.String(length=64), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("label", sa.String(length=16), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["annotator"], ["annotators.name"]),
        sa.ForeignKeyConstraint(["clip_id"], ["clips.clip_id"]),
        sa.ForeignKeyConstraint(["release_id"], ["releases.release_id"]),
        sa.PrimaryKeyConstraint("release_id", "clip_id", "annotator"),
    )


def downgrade() -> None:
    op.drop_table("annotations")
    op.drop_table("annotators")
