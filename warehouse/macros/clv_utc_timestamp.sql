{#-
  Parse a raw timestamp (a typed timestamp with time zone, or ISO-8601 text with or without an
  offset) into a UTC timestamp without time zone; null when it cannot be parsed. Text without an
  offset is read as UTC (the profile sets the session time zone to UTC).
-#}
{% macro clv_utc_timestamp(expr) -%}
  {{ return(adapter.dispatch('clv_utc_timestamp', 'clv')(expr)) }}
{%- endmacro %}

{% macro default__clv_utc_timestamp(expr) -%}
  {{ dbt.safe_cast(expr, api.Column.translate_type('timestamp')) }}
{%- endmacro %}

{% macro duckdb__clv_utc_timestamp(expr) -%}
  cast(try_cast({{ expr }} as timestamptz) as timestamp)
{%- endmacro %}
