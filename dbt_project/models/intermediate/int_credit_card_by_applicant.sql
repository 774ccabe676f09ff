-- Card usage on earlier revolving credits, months strictly before the decision.
with

applications as (

    select * from {{ ref('int_applications_in_window') }}

),

cards as (

    select * from {{ ref('stg_credit_card_balance') }}

),

known as (

    select
        applications.sk_id_curr,
        cards.amt_balance / nullif(cards.amt_credit_limit_actual, 0) as utilisation,
        cards.amt_drawings_current,
        cards.amt_payment_current,
        cards.amt_balance,
        cards.sk_dpd
    from applications
    inner join cards
        on cards.sk_id_curr = applications.sk_id_curr
        and cards.balance_month < applications.decision_time

),

final as (

    select
        sk_id_curr,
        count(*) as cc_months_count,
        avg(utilisation) as cc_utilisation_mean,
        max(utilisation) as cc_utilisation_max,
        avg(amt_drawings_current) as cc_drawings_mean,
        max(sk_dpd) as cc_dpd_max,
        sum(amt_payment_current) / nullif(sum(greatest(amt_balance, 0)), 0) as cc_payment_balance_ratio
    from known
    group by sk_id_curr

)

select * from final
