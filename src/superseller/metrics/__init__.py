"""Daily metrics: the rebuild of listing_metrics_daily, freshness, and dashboard queries."""
