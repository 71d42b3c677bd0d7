"""orders from connected shops: connections, listing mappings, order lines, webhook receipts

Revision ID: 0004
Revises: 0003

Existing orders (entered through the API) keep their values: no connection, nothing refunded,
no stock taken, not credited by the intake.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{target}.id"],
        name=op.f(f"fk_{table}_{column}_{target}"),
        ondelete=ondelete,
    )


def _index(table: str, column: str) -> None:
    op.create_index(op.f(f"ix_{table}_{column}"), table, [column], unique=False)


def upgrade() -> None:
    op.create_table(
        "shop_connections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("base_id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=True),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("shop_ref", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("api_base_url", sa.String(length=500), nullable=False),
        sa.Column("credentials_encrypted", sa.Text(), nullable=False),
        sa.Column("credential_fields", sa.String(length=200), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("pull_cursor", sa.Text(), nullable=True),
        sa.Column("pulled_at", sa.DateTime(timezone=True), nullable=True),
        *_timestamps(),
        _fk("shop_connections", "base_id", "bases", "CASCADE"),
        _fk("shop_connections", "merchant_id", "merchants", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shop_connections")),
        sa.UniqueConstraint("platform", "shop_ref", name="uq_shop_connections_platform_shop"),
    )
    _index("shop_connections", "base_id")
    _index("shop_connections", "merchant_id")

    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("connection_id", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("refunded_fen", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column(
                "stock_state",
                sa.Enum(
                    "none",
                    "taken",
                    "refused",
                    "returned",
                    name="stock_state",
                    native_enum=False,
                    length=16,
                ),
                nullable=False,
                server_default="none",
            )
        )
        batch.add_column(
            sa.Column("credited_by", sa.String(length=16), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("buyer_ref", sa.String(length=128), nullable=True))
        batch.create_foreign_key(
            batch.f("fk_orders_connection_id_shop_connections"),
            "shop_connections",
            ["connection_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_index(batch.f("ix_orders_connection_id"), ["connection_id"], unique=False)

    op.create_table(
        "order_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=True),
        sa.Column("sku_id", sa.Integer(), nullable=True),
        sa.Column("external_product_id", sa.String(length=128), nullable=False),
        sa.Column("external_sku_id", sa.String(length=128), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_order_lines_quantity_positive")),
        sa.CheckConstraint("amount_fen >= 0", name=op.f("ck_order_lines_amount_nonnegative")),
        _fk("order_lines", "order_id", "orders", "CASCADE"),
        _fk("order_lines", "product_id", "products", "SET NULL"),
        _fk("order_lines", "sku_id", "product_skus", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_lines")),
    )
    _index("order_lines", "order_id")

    op.create_table(
        "shop_listings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("external_product_id", sa.String(length=128), nullable=False),
        sa.Column("external_sku_id", sa.String(length=128), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("sku_id", sa.Integer(), nullable=True),
        _fk("shop_listings", "connection_id", "shop_connections", "CASCADE"),
        _fk("shop_listings", "product_id", "products", "CASCADE"),
        _fk("shop_listings", "sku_id", "product_skus", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shop_listings")),
        sa.UniqueConstraint(
            "connection_id",
            "external_product_id",
            "external_sku_id",
            name="uq_shop_listings_connection_external",
        ),
    )
    _index("shop_listings", "product_id")

    op.create_table(
        "webhook_receipts",
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.String(length=200), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        _fk("webhook_receipts", "connection_id", "shop_connections", "CASCADE"),
        sa.PrimaryKeyConstraint("connection_id", "delivery_id", name=op.f("pk_webhook_receipts")),
    )
    _index("webhook_receipts", "received_at")
    op.create_index("ix_pins_product_unpinned", "pins", ["product_id", "unpinned_at"])


def downgrade() -> None:
    op.drop_index("ix_pins_product_unpinned", table_name="pins")
    op.drop_table("webhook_receipts")
    op.drop_table("shop_listings")
    op.drop_table("order_lines")
    with op.batch_alter_table("orders") as batch:
        batch.drop_index(batch.f("ix_orders_connection_id"))
        batch.drop_constraint(
            batch.f("fk_orders_connection_id_shop_connections"), type_="foreignkey"
        )
        batch.drop_column("buyer_ref")
        batch.drop_column("credited_by")
        batch.drop_column("stock_state")
        batch.drop_column("refunded_fen")
        batch.drop_column("connection_id")
    op.drop_table("shop_connections")
