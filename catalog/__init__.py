"""The garment catalog: garments with their product photo and garment mask, in SQL.

Merchandisers fill it with the ``catalog`` CLI (:mod:`catalog.cli`); the try-on service
reads it through :mod:`catalog.repository`. The catalog never imports the server.
"""
