"""Gold: the feature store, built by dbt on DuckDB over the silver lake."""
