"""market data (harvest, embeddings, price drops, buyer questions) and the seeds' commands

`job_logs.timestamp`: a stored generated column equal to `started_at`, so the seed's
`SELECT * FROM job_logs ORDER BY timestamp DESC LIMIT 10` works as printed.

Revision ID: 0016
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

from superseller.db.types import JSONType, UTCDateTime

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

Money = sa.Numeric(14, 2)
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("job_logs") as batch:
        batch.add_column(
            sa.Column(
                "timestamp",
                UTCDateTime(),
                sa.Computed("started_at", persisted=True),
                nullable=True,
            )
        )
    op.create_table(
        "harvest_sources",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("category_id", sa.String(40), nullable=True),
        sa.Column("query", sa.String(200), nullable=True),
        sa.Column("listing_id", sa.BigInteger(), nullable=True),
        sa.Column("origin", sa.String(16), server_default="default", nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("last_harvested_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_harvest_sources_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_harvest_sources")),
        sa.UniqueConstraint("tenant_id", "key", name=op.f("uq_harvest_sources_tenant_id_key")),
    )
    op.create_table(
        "harvested_content",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("source_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("item_id", sa.String(300), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("category_id", sa.String(40), nullable=True),
        sa.Column("price", Money, nullable=True),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("seller_id", sa.BigInteger(), nullable=True),
        sa.Column("sold_quantity", sa.Integer(), nullable=True),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("captured_at", UTCDateTime(), nullable=False),
        sa.Column("captured_day", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["harvest_sources.id"],
            name=op.f("fk_harvested_content_source_id_harvest_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_harvested_content")),
        sa.UniqueConstraint(
            "source_id",
            "item_id",
            "captured_day",
            name=op.f("uq_harvested_content_source_id_item_id_captured_day"),
        ),
    )
    op.create_index(
        "ix_harvested_content_tenant_id_item_id",
        "harvested_content",
        ["tenant_id", "item_id", "captured_day"],
    )
    op.create_index("ix_harvested_content_captured_day", "harvested_content", ["captured_day"])
    op.create_table(
        "embeddings",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("subject", sa.String(16), nullable=False),
        sa.Column("subject_id", sa.String(300), nullable=False),
        sa.Column("category_id", sa.String(40), nullable=True),
        sa.Column("text_hash", sa.String(64), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_embeddings")),
        sa.UniqueConstraint(
            "tenant_id",
            "subject",
            "subject_id",
            name=op.f("uq_embeddings_tenant_id_subject_subject_id"),
        ),
    )
    op.create_index(
        "ix_embeddings_tenant_id_subject_category_id",
        "embeddings",
        ["tenant_id", "subject", "category_id"],
    )
    op.create_table(
        "price_drop_alerts",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("listing_id", sa.BigInteger(), nullable=False),
        sa.Column("item_id", sa.String(300), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("old_price", Money, nullable=False),
        sa.Column("new_price", Money, nullable=False),
        sa.Column("drop_pct", sa.Float(), nullable=False),
        sa.Column("previous_day", sa.Date(), nullable=False),
        sa.Column("captured_day", sa.Date(), nullable=False),
        sa.Column("similarity", sa.Float(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_drop_alerts")),
        sa.UniqueConstraint(
            "tenant_id",
            "listing_id",
            "item_id",
            "captured_day",
            name=op.f("uq_price_drop_alerts_tenant_id_listing_id_item_id_captured_day"),
        ),
    )
    op.create_index(
        "ix_price_drop_alerts_tenant_id_created_at",
        "price_drop_alerts",
        ["tenant_id", "created_at"],
    )
    op.create_table(
        "buyer_questions",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("item_id", sa.String(32), nullable=False),
        sa.Column("listing_id", sa.BigInteger(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("date_created", UTCDateTime(), nullable=True),
        sa.Column("fetched_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_buyer_questions")),
    )
    op.create_index(
        "ix_buyer_questions_tenant_id_listing_id",
        "buyer_questions",
        ["tenant_id", "listing_id"],
    )
    op.create_table(
        "question_drafts",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("listing_id", sa.BigInteger(), nullable=False),
        sa.Column("topic", sa.String(40), nullable=False),
        sa.Column("question_ids", JSONType, nullable=False),
        sa.Column("sample", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("description_line", sa.Text(), nullable=False),
        sa.Column("wording", sa.String(100), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_question_drafts")),
        sa.UniqueConstraint(
            "tenant_id",
            "listing_id",
            "topic",
            name=op.f("uq_question_drafts_tenant_id_listing_id_topic"),
        ),
    )


def downgrade() -> None:
    op.drop_table("question_drafts")
    op.drop_index("ix_buyer_questions_tenant_id_listing_id", table_name="buyer_questions")
    op.drop_table("buyer_questions")
    op.drop_index("ix_price_drop_alerts_tenant_id_created_at", table_name="price_drop_alerts")
    op.drop_table("price_drop_alerts")
    op.drop_index("ix_embeddings_tenant_id_subject_category_id", table_name="embeddings")
    op.drop_table("embeddings")
    op.drop_index("ix_harvested_content_captured_day", table_name="harvested_content")
    op.drop_index("ix_harvested_content_tenant_id_item_id", table_name="harvested_content")
    op.drop_table("harvested_content")
    op.drop_table("harvest_sources")
    with op.batch_alter_table("job_logs") as batch:
        batch.drop_column("timestamp")
