{#-
  Raw exports differ in which optional columns they carry. clv_source_columns() reads the
  column names of a source (lower case) and fails with a clear message when a required column is
  missing; clv_column() then selects a column when present and a typed null otherwise.
-#}
{% macro clv_source_columns(relation, required=[]) %}
  {%- if not execute -%}
    {{ return(required) }}
  {%- endif -%}
  {%- set result = run_query('select * from ' ~ relation ~ ' limit 0') -%}
  {%- set columns = result.column_names | map('lower') | list -%}
  {%- set missing = [] -%}
  {%- for name in required if name not in columns -%}
    {%- do missing.append(name) -%}
  {%- endfor -%}
  {%- if missing -%}
    {{ exceptions.raise_compiler_error(
        "raw table " ~ relation.identifier ~ " is missing required column(s) "
        ~ missing | join(', ') ~ "; found: " ~ (columns | join(', ') or 'no columns')) }}
  {%- endif -%}
  {{ return(columns) }}
{% endmacro %}

{% macro clv_column(columns, name, type=none) -%}
  {%- if name in columns -%}
    {{ adapter.quote(name) }}
  {%- else -%}
    cast(null as {{ type or dbt.type_string() }})
  {%- endif -%}
{%- endmacro %}
