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
        cast(NAME_TYPE_SUITE as varchar) as name_type_suite,
        cast(REGION_POPULATION_RELATIVE as double) as region_population_relative,
        cast(DATE_REGISTRATION as date) as date_registration,
        cast(DATE_ID_PUBLISH as date) as date_id_publish,
        cast(OWN_CAR_AGE as double) as own_car_age,
        cast(FLAG_EMP_PHONE as bigint) as flag_emp_phone,
        cast(FLAG_WORK_PHONE as bigint) as flag_work_phone,
        cast(CNT_FAM_MEMBERS as double) as cnt_fam_members,
        cast(REGION_RATING_CLIENT_W_CITY as bigint) as region_rating_client_w_city,
        cast(HOUR_APPR_PROCESS_START as bigint) as hour_appr_process_start,
        cast(REG_CITY_NOT_LIVE_CITY as bigint) as reg_city_not_live_city,
        cast(REG_CITY_NOT_WORK_CITY as bigint) as reg_city_not_work_city,
        cast(TOTALAREA_MODE as double) as totalarea_mode,
        cast(OBS_30_CNT_SOCIAL_CIRCLE as double) as obs_30_cnt_social_circle,
        cast(DEF_30_CNT_SOCIAL_CIRCLE as double) as def_30_cnt_social_circle,
        cast(DEF_60_CNT_SOCIAL_CIRCLE as double) as def_60_cnt_social_circle,
        cast(DATE_LAST_PHONE_CHANGE as date) as date_last_phone_change,
        cast(FLAG_DOCUMENT_3 as bigint) as flag_document_3,
        cast(AMT_REQ_CREDIT_BUREAU_YEAR as double) as amt_req_credit_bureau_year,
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
