"""listings: SKUs, images, themes, GI claims, category

Revision ID: 0003
Revises: 0002

Every existing product gets one SKU, ``default``, carrying its price and stock: from here on a
product's price and stock are derived from its SKUs.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def _product_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["product_id"],
        ["products.id"],
        name=op.f(f"fk_{table}_product_id_products"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    with op.batch_alter_table("products") as batch:
        batch.add_column(sa.Column("category", sa.String(length=63), nullable=True))

    op.create_table(
        "product_skus",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("spec_zh", sa.String(length=200), nullable=False),
        sa.Column("spec_en", sa.String(length=200), nullable=True),
        sa.Column("price_fen", sa.BigInteger(), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        *_timestamps(),
        sa.CheckConstraint("price_fen >= 0", name=op.f("ck_product_skus_price_nonnegative")),
        sa.CheckConstraint("stock >= 0", name=op.f("ck_product_skus_stock_nonnegative")),
        _product_fk("product_skus"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product_skus")),
        sa.UniqueConstraint("product_id", "sku", name="uq_product_skus_product_sku"),
    )
    op.create_table(
        "product_images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=1000), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("content_type", sa.String(length=32), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("size_bytes", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _product_fk("product_images"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product_images")),
    )
    with op.batch_alter_table("product_images") as batch:
        batch.create_index(batch.f("ix_product_images_product_id"), ["product_id"], unique=False)

    op.create_table(
        "product_themes",
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("theme_id", sa.Integer(), nullable=False),
        _product_fk("product_themes"),
        sa.ForeignKeyConstraint(
            ["theme_id"],
            ["themes.id"],
            name=op.f("fk_product_themes_theme_id_themes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("product_id", "theme_id", name=op.f("pk_product_themes")),
    )
    op.create_table(
        "product_gi_claims",
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column(
            "system",
            sa.Enum(
                "protected_product",
                "trademark",
                "agricultural",
                name="gi_system",
                native_enum=False,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("registered_name", sa.String(length=100), nullable=True),
        sa.Column("registration_number", sa.String(length=100), nullable=True),
        sa.Column("holder", sa.String(length=200), nullable=True),
        sa.Column("protected_area", sa.Text(), nullable=True),
        sa.Column("standard_code", sa.String(length=64), nullable=True),
        sa.Column("credit_code", sa.String(length=18), nullable=True),
        sa.Column("authorisation_ref", sa.String(length=500), nullable=True),
        *_timestamps(),
        _product_fk("product_gi_claims"),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_product_gi_claims")),
    )

    op.execute(
        "INSERT INTO product_skus (product_id, sku, spec_zh, price_fen, stock, currency, "
        "position, created_at, updated_at) "
        "SELECT id, 'default', '', price_fen, stock, currency, 0, created_at, updated_at "
        "FROM products"
    )


def downgrade() -> None:
    op.drop_table("product_gi_claims")
    op.drop_table("product_themes")
    with op.batch_alter_table("product_images") as batch:
        batch.drop_index(batch.f("ix_product_images_product_id"))
    op.drop_table("product_images")
    op.drop_table("product_skus")
    with op.batch_alter_table("products") as batch:
        batch.drop_column("category")
