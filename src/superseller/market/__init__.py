"""Market data: competitors' items and prices (harvest), title embeddings, comparable
items and price bands, price-drop alerts, and drafts for recurring buyer questions."""
