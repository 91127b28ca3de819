{#-
  A dense list of n weekly values from sparse (week, value) rows, aggregated per group: element
  i is the sum of the values of week i (0 = the most recent), 0 where a week has no row.
  DuckDB's list lambdas do this in one pass; other adapters need their own implementation.
-#}
{% macro clv_week_sequence(week_expr, value_expr, n) -%}
  {{ return(adapter.dispatch('clv_week_sequence', 'clv')(week_expr, value_expr, n)) }}
{%- endmacro %}

{% macro default__clv_week_sequence(week_expr, value_expr, n) -%}
  {{ exceptions.raise_compiler_error(
      "clv_week_sequence has no implementation for adapter " ~ adapter.type()) }}
{%- endmacro %}

{% macro duckdb__clv_week_sequence(week_expr, value_expr, n) -%}
  cast(list_transform(
      range({{ n }}),
      lambda i: coalesce(list_sum(list_transform(
          list_filter(list({'w': {{ week_expr }}, 'v': {{ value_expr }}}), lambda p: p.w = i),
          lambda p: p.v)), 0)
  ) as float[])
{%- endmacro %}

{#- A list of n zeros of the same type, for customers with no activity in the last 52 weeks. -#}
{% macro clv_zero_sequence(n) -%}
  {{ return(adapter.dispatch('clv_zero_sequence', 'clv')(n)) }}
{%- endmacro %}

{% macro default__clv_zero_sequence(n) -%}
  {{ exceptions.raise_compiler_error(
      "clv_zero_sequence has no implementation for adapter " ~ adapter.type()) }}
{%- endmacro %}

{% macro duckdb__clv_zero_sequence(n) -%}
  cast(list_transform(range({{ n }}), lambda i: 0) as float[])
{%- endmacro %}
