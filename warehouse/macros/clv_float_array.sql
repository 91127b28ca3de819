{#-
  Weekly sequences as arrays. clv_float_array() builds an array of 32-bit floats from a list of
  SQL expressions; its syntax differs by database, hence the dispatch.
-#}
{% macro clv_float_array(expressions) -%}
  {{ return(adapter.dispatch('clv_float_array', 'clv')(expressions)) }}
{%- endmacro %}

{% macro default__clv_float_array(expressions) -%}
  array[{{ expressions | join(', ') }}]
{%- endmacro %}

{% macro duckdb__clv_float_array(expressions) -%}
  cast([{{ expressions | join(', ') }}] as float[])
{%- endmacro %}

{% macro spark__clv_float_array(expressions) -%}
  cast(array({{ expressions | join(', ') }}) as array<float>)
{%- endmacro %}

{% macro snowflake__clv_float_array(expressions) -%}
  array_construct({{ expressions | join(', ') }})
{%- endmacro %}

{% macro bigquery__clv_float_array(expressions) -%}
  [{{ expressions | join(', ') }}]
{%- endmacro %}
