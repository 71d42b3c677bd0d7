"""Orders from connected shops: credentials at rest, listing mappings, intake, stock, credit.

The front door: import from here. Modules depend one way only: model/attribution/vault ->
stock/mapping -> intake.
"""

from livebase.orders.attribution import Credit, PinSpan, credit, parse_ref, pin_credit
from livebase.orders.intake import apply_order, apply_orders, first_receipt
from livebase.orders.mapping import PlacedLine, place_lines
from livebase.orders.model import IncomingLine, IncomingOrder, IntakeResult, OrderNews, Shop
from livebase.orders.vault import Vault, VaultError

__all__ = [
    "Credit",
    "IncomingLine",
    "IncomingOrder",
    "IntakeResult",
    "OrderNews",
    "PinSpan",
    "PlacedLine",
    "Shop",
    "Vault",
    "VaultError",
    "apply_order",
    "apply_orders",
    "credit",
    "first_receipt",
    "parse_ref",
    "pin_credit",
    "place_lines",
]
