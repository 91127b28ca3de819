{#- The day of the year (1-366) of a date expression. -#}
{% macro clv_day_of_year(date_expr) -%}
  {{ return(adapter.dispatch('clv_day_of_year', 'clv')(date_expr)) }}
{%- endmacro %}

{% macro default__clv_day_of_year(date_expr) -%} extract(doy from {{ date_expr }}) {%- endmacro %}

{% macro spark__clv_day_of_year(date_expr) -%} dayofyear({{ date_expr }}) {%- endmacro %}
