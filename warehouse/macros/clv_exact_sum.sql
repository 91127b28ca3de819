{#-
  clv_exact_sum(expr, scale=6): the sum of `expr` as a double that does not depend on the order
  the rows arrive in. Floating-point addition is not associative, and a parallel aggregate adds
  a group's rows in an order that changes from run to run (thread scheduling, the physical
  order of the table it reads), so `sum` of the same doubles can differ in the last bits and
  two builds of the same input would not give the same tables. Here each value is rounded to
  `scale` decimals (money: 6, a millionth of a currency unit) and added exactly as a decimal.
  Values must stay below 10^(18 - scale) in absolute value.
-#}
{% macro clv_exact_sum(expr, scale=6) -%}
  cast(sum(cast({{ expr }} as decimal(18, {{ scale }}))) as {{ clv_type_double() }})
{%- endmacro %}

{#- clv_exact_avg(expr, scale=9): the mean of the non-null values of `expr`, order-independent
    like clv_exact_sum (probabilities: 9 decimals). -#}
{% macro clv_exact_avg(expr, scale=9) -%}
  ({{ clv_exact_sum(expr, scale) }} / nullif(count({{ expr }}), 0))
{%- endmacro %}
