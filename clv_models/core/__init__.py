"""The bottom layer: configuration, errors, paths of the shipped dbt project and Feast repo,
the facts every stage shares, atomic file replacement and SQL quoting. Imports nothing else of
the package."""
