{#- 64-bit floating point for amounts (dbt.type_float() is 32-bit on some adapters). -#}
{% macro clv_type_double() -%}
  {{ return(adapter.dispatch('clv_type_double', 'clv')()) }}
{%- endmacro %}

{% macro default__clv_type_double() -%} double precision {%- endmacro %}

{% macro bigquery__clv_type_double() -%} float64 {%- endmacro %}
