{#- The raw value as text, kept on quarantine rows so a reader sees what arrived. -#}
{% macro clv_as_text(expr) -%}
  cast({{ expr }} as {{ dbt.type_string() }})
{%- endmacro %}

{#-
  The raw value as text only where it could not be parsed (null where parsing worked or the value
  was missing): quarantine rows show what arrived, and the clean majority of a large table does
  not pay for formatting every value as text.
-#}
{% macro clv_unparsed_as_text(raw, parsed) -%}
  case when {{ parsed }} is null then {{ clv_as_text(raw) }} end
{%- endmacro %}
