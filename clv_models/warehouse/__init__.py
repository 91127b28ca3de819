"""The dbt project in ``warehouse/``: running it, reading what it built, and publishing the
scores and BI models for BI tools."""
