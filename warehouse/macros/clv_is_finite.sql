{#-
  True for a finite number, false for NaN and +-infinity (null for null). Raw amounts arrive as
  text too, and 'NaN', 'inf' and '1e400' all cast to non-finite doubles, which no comparison
  with a bound catches everywhere (DuckDB sorts NaN above every number, IEEE makes every
  comparison with it false). Portable form: x * 0 is 0 only for a finite x.
-#}
{% macro clv_is_finite(expr) -%}
  {{ return(adapter.dispatch('clv_is_finite', 'clv')(expr)) }}
{%- endmacro %}

{% macro default__clv_is_finite(expr) -%}
  ({{ expr }} * 0 = 0)
{%- endmacro %}

{% macro duckdb__clv_is_finite(expr) -%}
  isfinite({{ expr }})
{%- endmacro %}
