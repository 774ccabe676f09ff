{{ config(meta={'dagster': {'ref': {'name': 'applicant_features'}}}) }}
-- Every application in silver whose decision falls in the window has exactly one feature row.
-- A missing or doubled row would silently bias training and scoring.
with

expected as (

    select sk_id_curr from {{ ref('int_applications_in_window') }}

),

built as (

    select sk_id_curr from {{ ref('applicant_features') }} where {{ in_window('decision_time') }}

)

select sk_id_curr, 'missing feature row' as problem from expected anti join built using (sk_id_curr)
union all
select sk_id_curr, 'feature row without an application' from built anti join expected using (sk_id_curr)
