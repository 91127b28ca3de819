{#-
  clv_dense_array_agg(index, value, length): an aggregate expression turning sparse rows
  (index in 0 .. length - 1, unique within the group) into a dense array of 32-bit floats with
  0 where no row has that index. The portable form is one conditional sum per position; DuckDB
  gathers the group into lists once and looks each position up.
-#}
{% macro clv_dense_array_agg(index, value, length) -%}
  {{ return(adapter.dispatch('clv_dense_array_agg', 'clv')(index, value, length)) }}
{%- endmacro %}

{% macro default__clv_dense_array_agg(index, value, length) -%}
  {%- set parts = [] %}
  {%- for i in range(length) %}
    {%- do parts.append('sum(case when ' ~ index ~ ' = ' ~ i ~ ' then ' ~ value ~ ' else 0 end)') %}
  {%- endfor %}
  {{- clv_float_array(parts) -}}
{%- endmacro %}

{% macro duckdb__clv_dense_array_agg(index, value, length) -%}
  cast(list_transform(range({{ length }}), i -> coalesce(
      list({{ value }})[list_position(list({{ index }}), i)],
      0)) as float[])
{%- endmacro %}
