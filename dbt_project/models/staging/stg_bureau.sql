-- Credits the applicant holds at other lenders, as reported by the credit bureau.
-- Renames and types only: one row per silver row.
with

source as (

    select * from {{ silver('bureau') }}

),

renamed as (

    select
        cast(SK_ID_BUREAU as bigint) as sk_id_bureau,
        cast(SK_ID_CURR as bigint) as sk_id_curr,
        cast(CREDIT_ACTIVE as varchar) as credit_active,
        cast(CREDIT_TYPE as varchar) as credit_type,
        cast(DATE_CREDIT as date) as date_credit,
        cast(DATE_CREDIT_ENDDATE as date) as date_credit_enddate,
        cast(CREDIT_DAY_OVERDUE as bigint) as credit_day_overdue,
        cast(AMT_CREDIT_SUM as double) as amt_credit_sum,
        cast(AMT_CREDIT_SUM_DEBT as double) as amt_credit_sum_debt,
        cast(AMT_CREDIT_SUM_OVERDUE as double) as amt_credit_sum_overdue,
        cast(CNT_CREDIT_PROLONG as bigint) as cnt_credit_prolong,
        cast(REPORTED_AT as timestamp) as reported_at
    from source

),

final as (

    select * from renamed

)

select * from final
