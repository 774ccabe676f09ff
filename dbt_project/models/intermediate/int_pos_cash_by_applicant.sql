-- Earlier point-of-sale and cash loans with us, from their monthly balances dated strictly before the
-- decision (as for cards: a month counts once its first day is before the decision time). A loan's
-- status is the one of its last month known then: a loan completed after the decision is still open here.
with

applications as (

    select * from {{ ref('int_applications_in_window') }}

),

pos_cash as (

    select * from {{ ref('stg_pos_cash_balance') }}

),

known as (

    select
        applications.sk_id_curr,
        applications.decision_time,
        pos_cash.sk_id_prev,
        pos_cash.balance_month,
        pos_cash.cnt_instalment_future,
        pos_cash.name_contract_status,
        pos_cash.sk_dpd,
        pos_cash.sk_dpd_def
    from applications
    inner join pos_cash
        on pos_cash.sk_id_curr = applications.sk_id_curr
        and pos_cash.balance_month < applications.decision_time

),

latest as (

    -- each loan's last month known at decision time
    select *
    from known
    qualify row_number() over (partition by sk_id_curr, sk_id_prev order by balance_month desc) = 1

),

open_loans as (

    -- still running at decision time: not completed, cancelled or returned (XNA: status unknown)
    select
        sk_id_curr,
        count(*) filter (where name_contract_status in ('Active', 'Signed', 'Approved', 'Demand', 'Amortized debt'))
            as pos_active_loan_count,
        coalesce(sum(cnt_instalment_future) filter (
            where name_contract_status in ('Active', 'Signed', 'Approved', 'Demand', 'Amortized debt')), 0)
            as pos_active_remaining_instalments
    from latest
    group by sk_id_curr

),

months as (

    select
        sk_id_curr,
        count(distinct sk_id_prev) as pos_loan_count,
        count(distinct sk_id_prev) filter (where name_contract_status = 'Completed') as pos_completed_loan_count,
        count(*) as pos_months_count,
        date_diff('month', min(balance_month), cast(max(decision_time) as date)) as pos_history_months,
        max(sk_dpd) as pos_dpd_max,
        max(sk_dpd_def) as pos_dpd_def_max,
        avg(sk_dpd) as pos_dpd_mean,
        avg(case when sk_dpd > 0 then 1.0 else 0.0 end) as pos_dpd_month_share
    from known
    group by sk_id_curr

),

final as (

    select
        months.sk_id_curr,
        months.pos_loan_count,
        open_loans.pos_active_loan_count,
        months.pos_completed_loan_count,
        months.pos_months_count,
        months.pos_history_months,
        months.pos_dpd_max,
        months.pos_dpd_def_max,
        months.pos_dpd_mean,
        months.pos_dpd_month_share,
        open_loans.pos_active_remaining_instalments
    from months
    inner join open_loans using (sk_id_curr)

)

select * from final
