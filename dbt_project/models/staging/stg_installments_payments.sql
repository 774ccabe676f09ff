-- Repayment history of previous credits: one row per instalment.
-- Renames and types only: one row per silver row.
with

source as (

    select * from {{ silver('installments_payments') }}

),

renamed as (

    select
        cast(SK_ID_PREV as bigint) as sk_id_prev,
        cast(SK_ID_CURR as bigint) as sk_id_curr,
        cast(NUM_INSTALMENT_NUMBER as bigint) as num_instalment_number,
        cast(DUE_DATE as date) as due_date,
        cast(PAYMENT_DATE as date) as payment_date,
        cast(AMT_INSTALMENT as double) as amt_instalment,
        cast(AMT_PAYMENT as double) as amt_payment
    from source

),

final as (

    select * from renamed

)

select * from final
