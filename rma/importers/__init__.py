"""Readers for merchants' order exports. Pure parsing: no database, no tenant.

`shopify` reads Shopify's Admin > Orders > Export CSV into `rma.orders.OrderData`;
`rma.order_services.order_import_csv` writes them through `order_upsert`.
"""
