"""Thin Dagster wrappers: read inputs from resources, call one plain function, return metadata."""
