"""GraphQL documents sent by the Shopify adapter, and helpers for GraphQL ids and errors.

Kept apart so the adapter module reads as behaviour; each document asks for exactly the
fields the adapter maps, which also keeps the calculated query cost low.
"""

from __future__ import annotations

from typing import Any

_MONEY = "shopMoney { amount currencyCode }"
ORDERS_QUERY = f"""
query LivebaseOrders($first: Int!, $after: String) {{
  orders(first: $first, after: $after, sortKey: UPDATED_AT) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{
      legacyResourceId createdAt cancelledAt displayFinancialStatus
      totalPriceSet {{ {_MONEY} }}
      customer {{ legacyResourceId }}
      customAttributes {{ key value }}
      customerJourneySummary {{ lastVisit {{ landingPage }} }}
      lineItems(first: 100) {{
        nodes {{
          quantity sku title
          product {{ legacyResourceId }}
          variant {{ legacyResourceId }}
          discountedTotalSet {{ {_MONEY} }}
        }}
      }}
    }}
  }}
}}"""
PRODUCT_SET = """
mutation LivebaseProductSet($input: ProductSetInput!) {
  productSet(input: $input, synchronous: true) {
    product { legacyResourceId variants(first: 100) { nodes { legacyResourceId sku } } }
    userErrors { field message code }
  }
}"""
VARIANTS_QUERY = """
query LivebaseVariants($id: ID!) {
  product(id: $id) { variants(first: 250) { nodes { id sku inventoryItem { id } } } }
}"""
PRICE_UPDATE = """
mutation LivebasePrice($productId: ID!, $variants: [ProductVariantsBulkInput!]!) {
  productVariantsBulkUpdate(productId: $productId, variants: $variants) {
    userErrors { field message }
  }
}"""
STOCK_SET = """
mutation LivebaseStock($input: InventorySetQuantitiesInput!) {
  inventorySetQuantities(input: $input) { userErrors { field message code } }
}"""


def error_summary(errors: Any) -> tuple[str, str | None]:
    """Messages and the first extensions.code of a GraphQL errors member (list or string)."""
    messages, code = [], None
    for item in errors if isinstance(errors, list) else [errors]:
        if not isinstance(item, dict):
            messages.append(str(item))
            continue
        messages.append(str(item.get("message", item)))
        extensions = item.get("extensions")
        if code is None and isinstance(extensions, dict) and extensions.get("code"):
            code = str(extensions["code"])
    return "; ".join(messages), code


def gid(kind: str, value: str) -> str:
    return value if value.startswith("gid://") else f"gid://shopify/{kind}/{value}"
