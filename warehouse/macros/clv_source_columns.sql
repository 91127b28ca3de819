{#-
  Raw exports differ in which optional columns they carry. clv_source_columns() reads the
  columns of a raw table (names in lower case, and their types where the adapter says) before
  any row is read, and stops with a message naming the table, its file and the column when:
  - a required column is missing;
  - a timestamp column (timestamps) or an amount column (amounts) has a type that cannot hold
    one, e.g. epoch seconds as integers or amounts as booleans: the row checks would turn every
    value into null (or 1.0) and quarantine (or misread) the whole table, a fault of the file
    better reported once;
  - require_rows is true and the table has no rows (an empty file, or a header only).
  Columns outside the contract (not in required or optional) are ignored with a warning that
  names them: a misspelt optional column would otherwise vanish unnoticed.
  clv_column() then selects a column when present and a typed null otherwise.
-#}
{% macro clv_source_columns(relation, required=[], optional=[], timestamps=[], amounts=[],
                            require_rows=false) %}
  {%- if not execute -%}
    {{ return(required) }}
  {%- endif -%}
  {%- set types = adapter.dispatch('clv_column_types', 'clv')(relation) -%}
  {%- set columns = types.keys() | list -%}
  {%- set where = "raw table " ~ relation.identifier ~ " (" ~ clv_raw_path(relation.identifier) ~ ")" -%}
  {%- set missing = [] -%}
  {%- for name in required if name not in columns -%}
    {%- do missing.append(name) -%}
  {%- endfor -%}
  {%- if missing -%}
    {{ exceptions.raise_compiler_error(
        where ~ " is missing required column(s) " ~ missing | join(', ')
        ~ "; found: " ~ (columns | join(', ') or 'no columns')) }}
  {%- endif -%}
  {%- set wrong = [] -%}
  {%- for name in timestamps if types.get(name) and not clv_is_timestamp_type(types[name]) -%}
    {%- do wrong.append(name ~ " is " ~ types[name] ~ ", not a timestamp, a date or ISO-8601 text") -%}
  {%- endfor -%}
  {%- for name in amounts if types.get(name) and not clv_is_number_type(types[name]) -%}
    {%- do wrong.append(name ~ " is " ~ types[name] ~ ", not a number or numeric text") -%}
  {%- endfor -%}
  {%- if wrong -%}
    {{ exceptions.raise_compiler_error(where ~ ": column " ~ wrong | join('; column ')) }}
  {%- endif -%}
  {%- if require_rows -%}
    {%- set found = run_query('select count(*) from (select 1 from ' ~ relation ~ ' limit 1) as t') -%}
    {%- if found.columns[0].values()[0] == 0 -%}
      {{ exceptions.raise_compiler_error(
          where ~ " has no rows (an empty file, or a header only): nothing to build") }}
    {%- endif -%}
  {%- endif -%}
  {%- set extra = [] -%}
  {%- for name in columns if name not in required and name not in optional -%}
    {%- do extra.append(name) -%}
  {%- endfor -%}
  {%- if extra -%}
    {%- do exceptions.warn(where ~ ": column(s) " ~ extra | join(', ')
        ~ " not in the raw contract, ignored (contract columns: "
        ~ (required + optional) | join(', ') ~ ")") -%}
  {%- endif -%}
  {{ return(columns) }}
{% endmacro %}

{#- Column name (lower case) -> type name (upper case; empty where the adapter gives none). -#}
{% macro default__clv_column_types(relation) %}
  {%- set result = run_query('select * from ' ~ relation ~ ' limit 0') -%}
  {%- set types = {} -%}
  {%- for name in result.column_names -%}
    {%- do types.update({name | lower: ''}) -%}
  {%- endfor -%}
  {{ return(types) }}
{% endmacro %}

{% macro duckdb__clv_column_types(relation) %}
  {%- set result = run_query('describe select * from ' ~ relation) -%}
  {%- set types = {} -%}
  {%- for row in result.rows -%}
    {%- do types.update({row['column_name'] | lower: row['column_type'] | upper}) -%}
  {%- endfor -%}
  {{ return(types) }}
{% endmacro %}

{#- Types a raw timestamp may arrive as: a timestamp of any precision or zone, a date, text. -#}
{% macro clv_is_timestamp_type(type) -%}
  {{ return(type in ('VARCHAR', 'DATE') or type.startswith('TIMESTAMP')) }}
{%- endmacro %}

{#- Types a raw amount may arrive as: any integer, floating point or decimal type, or text. -#}
{% macro clv_is_number_type(type) -%}
  {{ return(type in ('VARCHAR', 'TINYINT', 'SMALLINT', 'INTEGER', 'BIGINT', 'HUGEINT',
                     'UTINYINT', 'USMALLINT', 'UINTEGER', 'UBIGINT', 'UHUGEINT', 'FLOAT',
                     'DOUBLE') or type.startswith('DECIMAL')) }}
{%- endmacro %}

{#- Where a raw table's file is read from (for messages). -#}
{% macro clv_raw_path(name) -%}
  {{ return(env_var('CLV_RAW_DIR', '../data/raw') ~ '/' ~ name ~ '.' ~ var('raw_format')) }}
{%- endmacro %}

{% macro clv_column(columns, name, type=none) -%}
  {%- if name in columns -%}
    {{ adapter.quote(name) }}
  {%- else -%}
    cast(null as {{ type or dbt.type_string() }})
  {%- endif -%}
{%- endmacro %}
