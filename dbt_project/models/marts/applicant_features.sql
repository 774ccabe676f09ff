-- One row per application: everything known about the applicant at decision time.
-- Incremental by hour: a build for a window (re)computes the applications decided in it.
-- Counts over an empty history are 0 (a fact: no such credits); means and ratios over an empty
-- history are null (undefined), and has_* flags say which histories exist.
{{ config(unique_key='sk_id_curr') }}

with

applications as (

    select application.*
    from {{ ref('stg_application') }} as application
    inner join {{ ref('int_applications_in_window') }} as in_window using (sk_id_curr)

),

bureau as (select * from {{ ref('int_bureau_by_applicant') }}),
bureau_balance as (select * from {{ ref('int_bureau_balance_by_applicant') }}),
previous as (select * from {{ ref('int_previous_applications_by_applicant') }}),
installments as (select * from {{ ref('int_installments_by_applicant') }}),
cards as (select * from {{ ref('int_credit_card_by_applicant') }}),
pos_cash as (select * from {{ ref('int_pos_cash_by_applicant') }}),

application_features as (

    select
        sk_id_curr,
        decision_time,
        amt_income_total,
        amt_credit,
        amt_annuity,
        amt_goods_price,
        amt_credit / amt_income_total as credit_income_ratio,
        amt_annuity / amt_income_total as annuity_income_ratio,
        amt_credit / nullif(amt_annuity, 0) as credit_term_years,
        amt_goods_price / amt_credit as goods_credit_ratio,
        cnt_children,
        age_years,
        case when days_employed = 365243 then null else -days_employed / 365.25 end as years_employed,
        cast(days_employed = 365243 as integer) as is_not_employed,
        case when days_employed = 365243 then null else (-days_employed / 365.25) / age_years end
            as employed_age_ratio,
        ext_source_1,
        ext_source_2,
        ext_source_3,
        (coalesce(ext_source_1, 0) + coalesce(ext_source_2, 0) + coalesce(ext_source_3, 0))
            / nullif((ext_source_1 is not null)::int + (ext_source_2 is not null)::int
                     + (ext_source_3 is not null)::int, 0) as ext_source_mean,
        least(ext_source_1, ext_source_2, ext_source_3) as ext_source_min,
        (ext_source_1 is null)::int + (ext_source_2 is null)::int + (ext_source_3 is null)::int
            as ext_source_missing_count,
        region_rating_client,
        cast(flag_own_car = 'Y' as integer) as owns_car,
        cast(flag_own_realty = 'Y' as integer) as owns_realty,
        cast(name_contract_type = 'Revolving loans' as integer) as is_revolving_loan,
        name_income_type,
        name_education_type,
        name_family_status,
        name_housing_type,
        occupation_type,
        organization_type,
        name_type_suite,
        region_population_relative,
        region_rating_client_w_city,
        {{ days_before_decision('date_registration') }} as days_registration,
        {{ days_before_decision('date_id_publish') }} as days_id_publish,
        {{ days_before_decision('date_last_phone_change') }} as days_last_phone_change,
        own_car_age,
        cnt_fam_members,
        amt_income_total / nullif(cnt_fam_members, 0) as income_per_family_member,
        flag_emp_phone,
        flag_work_phone,
        reg_city_not_live_city,
        reg_city_not_work_city,
        hour_appr_process_start,
        totalarea_mode,
        obs_30_cnt_social_circle,
        def_30_cnt_social_circle,
        def_60_cnt_social_circle,
        flag_document_3,
        amt_req_credit_bureau_year
    from applications

),

final as (

    select
        application_features.*,
        cast(bureau.sk_id_curr is not null as integer) as has_bureau_history,
        coalesce(bureau.bureau_credit_count, 0) as bureau_credit_count,
        coalesce(bureau.bureau_active_count, 0) as bureau_active_count,
        coalesce(bureau.bureau_closed_count, 0) as bureau_closed_count,
        coalesce(bureau.bureau_bad_debt_count, 0) as bureau_bad_debt_count,
        coalesce(bureau.bureau_overdue_count, 0) as bureau_overdue_count,
        coalesce(bureau.bureau_max_days_overdue, 0) as bureau_max_days_overdue,
        coalesce(bureau.bureau_total_debt, 0) as bureau_total_debt,
        coalesce(bureau.bureau_total_overdue, 0) as bureau_total_overdue,
        bureau.bureau_debt_credit_ratio,
        bureau.bureau_days_since_last_credit,
        coalesce(bureau.bureau_prolong_count, 0) as bureau_prolong_count,
        coalesce(bureau_balance.bureau_balance_months, 0) as bureau_balance_months,
        coalesce(bureau_balance.bureau_worst_dpd_bucket, 0) as bureau_worst_dpd_bucket,
        bureau_balance.bureau_dpd_month_share,
        coalesce(bureau_balance.bureau_dpd_months_last_12m, 0) as bureau_dpd_months_last_12m,
        cast(previous.sk_id_curr is not null as integer) as has_previous_application,
        coalesce(previous.prev_application_count, 0) as prev_application_count,
        coalesce(previous.prev_approved_count, 0) as prev_approved_count,
        coalesce(previous.prev_refused_count, 0) as prev_refused_count,
        previous.prev_refusal_rate,
        previous.prev_amt_credit_mean,
        previous.prev_application_credit_ratio_mean,
        previous.prev_days_since_last_decision,
        coalesce(installments.inst_count, 0) as inst_count,
        coalesce(installments.inst_late_count, 0) as inst_late_count,
        installments.inst_late_ratio,
        installments.inst_days_late_mean,
        installments.inst_days_late_max,
        coalesce(installments.inst_underpaid_count, 0) as inst_underpaid_count,
        installments.inst_underpayment_ratio,
        coalesce(installments.inst_unpaid_count, 0) as inst_unpaid_count,
        coalesce(cards.cc_months_count, 0) as cc_months_count,
        cards.cc_utilisation_mean,
        cards.cc_utilisation_max,
        cards.cc_drawings_mean,
        coalesce(cards.cc_dpd_max, 0) as cc_dpd_max,
        cards.cc_payment_balance_ratio,
        cast(pos_cash.sk_id_curr is not null as integer) as has_pos_cash_history,
        coalesce(pos_cash.pos_loan_count, 0) as pos_loan_count,
        coalesce(pos_cash.pos_active_loan_count, 0) as pos_active_loan_count,
        coalesce(pos_cash.pos_completed_loan_count, 0) as pos_completed_loan_count,
        coalesce(pos_cash.pos_months_count, 0) as pos_months_count,
        pos_cash.pos_history_months,
        coalesce(pos_cash.pos_dpd_max, 0) as pos_dpd_max,
        coalesce(pos_cash.pos_dpd_def_max, 0) as pos_dpd_def_max,
        pos_cash.pos_dpd_mean,
        pos_cash.pos_dpd_month_share,
        coalesce(pos_cash.pos_active_remaining_instalments, 0) as pos_active_remaining_instalments
    from application_features
    left join bureau using (sk_id_curr)
    left join bureau_balance using (sk_id_curr)
    left join previous using (sk_id_curr)
    left join installments using (sk_id_curr)
    left join cards using (sk_id_curr)
    left join pos_cash using (sk_id_curr)

)

select * from final
