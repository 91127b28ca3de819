{#- An identifier as trimmed text; empty strings become null. -#}
{% macro clv_clean_id(expr) -%}
  nullif(trim(cast({{ expr }} as {{ dbt.type_string() }})), '')
{%- endmacro %}
