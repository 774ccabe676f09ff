-- The applicant's previous applications with us.
-- Renames and types only: one row per silver row.
with

source as (

    select * from {{ silver('previous_application') }}

),

renamed as (

    select
        cast(SK_ID_PREV as bigint) as sk_id_prev,
        cast(SK_ID_CURR as bigint) as sk_id_curr,
        cast(NAME_CONTRACT_TYPE as varchar) as name_contract_type,
        cast(AMT_APPLICATION as double) as amt_application,
        cast(AMT_CREDIT as double) as amt_credit,
        cast(AMT_ANNUITY as double) as amt_annuity,
        cast(NAME_CONTRACT_STATUS as varchar) as name_contract_status,
        cast(DECISION_DATE as date) as decision_date,
        cast(CNT_PAYMENT as bigint) as cnt_payment
    from source

),

final as (

    select * from renamed

)

select * from final
