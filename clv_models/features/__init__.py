"""Feast: the feature store over the warehouse's exports, online reads and writes (SQLite,
Redis), and live events pushed between builds."""
