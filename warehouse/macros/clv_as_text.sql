{#- The raw value as text, kept on quarantine rows so a reader sees what arrived. -#}
{% macro clv_as_text(expr) -%}
  cast({{ expr }} as {{ dbt.type_string() }})
{%- endmacro %}
