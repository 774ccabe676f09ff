-- One row per loan application, as submitted at decision time.
-- Renames and types only: one row per silver row.
with

source as (

    select * from {{ silver('application') }}

),

renamed as (

    select
        cast(SK_ID_CURR as bigint) as sk_id_curr,
        cast(DECISION_TIME as timestamp) as decision_time,
        cast(NAME_CONTRACT_TYPE as varchar) as name_contract_type,
        cast(CODE_GENDER as varchar) as code_gender,
        cast(FLAG_OWN_CAR as varchar) as flag_own_car,
        cast(FLAG_OWN_REALTY as varchar) as flag_own_realty,
        cast(CNT_CHILDREN as bigint) as cnt_children,
        cast(AMT_INCOME_TOTAL as double) as amt_income_total,
        cast(AMT_CREDIT as double) as amt_credit,
        cast(AMT_ANNUITY as double) as amt_annuity,
        cast(AMT_GOODS_PRICE as double) as amt_goods_price,
        cast(NAME_INCOME_TYPE as varchar) as name_income_type,
        cast(NAME_EDUCATION_TYPE as varchar) as name_education_type,
        cast(NAME_FAMILY_STATUS as varchar) as name_family_status,
        cast(NAME_HOUSING_TYPE as varchar) as name_housing_type,
        cast(DAYS_EMPLOYED as bigint) as days_employed,
        cast(OCCUPATION_TYPE as varchar) as occupation_type,
        cast(ORGANIZATION_TYPE as varchar) as organization_type,
        cast(REGION_RATING_CLIENT as bigint) as region_rating_client,
        cast(EXT_SOURCE_1 as double) as ext_source_1,
        cast(EXT_SOURCE_2 as double) as ext_source_2,
        cast(EXT_SOURCE_3 as double) as ext_source_3,
        cast(EMAIL_HASH as varchar) as email_hash,
        cast(PHONE_HASH as varchar) as phone_hash,
        cast(NATIONAL_ID_HASH as varchar) as national_id_hash,
        cast(AGE_YEARS as integer) as age_years
    from source

),

final as (

    select * from renamed

)

select * from final
