{#- The window and silver snapshot of this build, from the environment dbt runs in (Dagster's gold asset
    and `run_dbt` set CREDITRISK_GOLD_START_HOUR, CREDITRISK_GOLD_END_HOUR, CREDITRISK_GOLD_SILVER_SNAPSHOT;
    empty or unset: none). Read only while executing, never while parsing (`execute` is false then): dbt
    then records no use of these variables, so a new window does not invalidate its partial parse. (A
    changed `--vars` re-parses the whole project; an env var read at parse time re-parses every file that
    read it, here ten, as slow as a full parse.) -#}
{% macro build_setting(name) -%}
    {{ return(env_var('CREDITRISK_GOLD_' ~ name | upper, '') if execute else '') }}
{%- endmacro %}

{#- true for rows whose time column falls in the window being built (all rows when no window). -#}
{% macro in_window(column) -%}
    {%- set start_hour, end_hour = build_setting('start_hour'), build_setting('end_hour') -%}
    {%- if start_hour and end_hour -%}
        ({{ column }} >= cast('{{ start_hour }}' as timestamp) and {{ column }} < cast('{{ end_hour }}' as timestamp))
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#- A silver table, pinned to the lake snapshot Dagster recorded (latest when none). -#}
{% macro silver(table) -%}
    {%- set snapshot = build_setting('silver_snapshot') -%}
    {{ source('silver', table) }}{% if snapshot %} at (version => {{ snapshot | int }}){% endif %}
{%- endmacro %}
