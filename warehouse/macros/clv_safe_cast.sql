{#- A cast that yields null instead of failing on values it cannot convert. -#}
{% macro duckdb__safe_cast(field, type) -%}
  try_cast({{ field }} as {{ type }})
{%- endmacro %}
