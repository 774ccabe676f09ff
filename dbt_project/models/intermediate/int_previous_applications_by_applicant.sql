-- The applicant's earlier applications with us, decided before this decision.
with

applications as (

    select * from {{ ref('int_applications_in_window') }}

),

previous as (

    select * from {{ ref('stg_previous_application') }}

),

known as (

    select
        applications.sk_id_curr,
        applications.decision_time,
        previous.* exclude (sk_id_curr)
    from applications
    inner join previous
        on previous.sk_id_curr = applications.sk_id_curr
        and previous.decision_date < applications.decision_time

),

final as (

    select
        sk_id_curr,
        count(*) as prev_application_count,
        count(*) filter (where name_contract_status = 'Approved') as prev_approved_count,
        count(*) filter (where name_contract_status = 'Refused') as prev_refused_count,
        avg(case when name_contract_status = 'Refused' then 1.0 else 0.0 end) as prev_refusal_rate,
        avg(amt_credit) as prev_amt_credit_mean,
        avg(amt_application / nullif(amt_credit, 0)) as prev_application_credit_ratio_mean,
        min(date_diff('day', decision_date, cast(decision_time as date))) as prev_days_since_last_decision
    from known
    group by sk_id_curr

)

select * from final
