"""Orders from connected shops: credentials at rest, listing mappings, intake, stock, credit.

The front door: import from here. Modules depend one way only: model/attribution/vault ->
mapping -> lookups -> intake -> writer.
"""

from livebase.orders.attribution import Credit, PinSpan, credit, parse_ref, pin_credit
from livebase.orders.intake import Delivery, Outcome, apply_batch
from livebase.orders.mapping import PlacedLine, place_lines
from livebase.orders.model import IncomingLine, IncomingOrder, IntakeResult, OrderNews, Shop
from livebase.orders.vault import Vault, VaultError
from livebase.orders.writer import OrderWriter

__all__ = [
    "Credit",
    "Delivery",
    "IncomingLine",
    "IncomingOrder",
    "IntakeResult",
    "OrderNews",
    "OrderWriter",
    "Outcome",
    "PinSpan",
    "PlacedLine",
    "Shop",
    "Vault",
    "VaultError",
    "apply_batch",
    "credit",
    "parse_ref",
    "pin_credit",
    "place_lines",
]
