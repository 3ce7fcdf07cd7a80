# The baseline survival function S0(t) of a frozen Cox model: the survival of a patient whose
# linear predictor is 0, so that a new patient's predicted survival is S0(t)^exp(lp).
#
# requires: cox.R
#   (surv_outcome and require_columns are defined there.)
#
# Methods:
#   Breslow NE (1972). Discussion of the paper by D. R. Cox. J R Stat Soc B 34:216-217
#     (the cumulative baseline hazard estimator H0(t) = sum over event times t_i <= t of
#     d_i / sum_{j at risk at t_i} exp(lp_j)).
#   Cox DR (1972). Regression models and life-tables. J R Stat Soc B 34:187-220.
#   Engine: survival::coxph and survival::survfit.coxph (Therneau TM, Grambsch PM (2000).
#     Modeling Survival Data: Extending the Cox Model. Springer, section 10.2).
#
# Conventions: `df` is a data.frame whose row names identify the patients; `time`, `event`
# are column names (event 0 = censored, 1 = event); `lp` names the column holding the frozen
# model's linear predictor (uncentred: sum of coef x z-scored feature).


#' Breslow's estimate of the baseline survival S0(t) = exp(-H0(t)) at lp = 0.
#'
#' The coefficients are frozen: the model is coxph(Surv(time, event) ~ offset(lp)), which
#' estimates nothing, and survfit(..., newdata = data.frame(lp = 0)) returns the survival of
#' a patient with lp = 0 (the bundle's linear predictor is uncentred, so this is S0 itself,
#' not the survival at the cohort's mean lp that basehaz(centered = TRUE) gives).
#'
#' Estimator: ctype = 1 (Breslow's cumulative hazard, Breslow 1972: at an event time with
#' d tied events the hazard increment is d / sum_{at risk} exp(lp)) and stype = 2
#' (S0 = exp(-H0)). For an Efron fit survfit's default is the Efron-adjusted increment
#' (ctype = 2), which differs from Breslow's only at tied event times. Breslow's is chosen
#' because it is the estimator other software reproduces from the published coefficients and
#' the development data alone (lifelines' CoxPHFitter.baseline_survival_, SAS PHREG's
#' default, Stata's basesurv), so that a site applying the bundle, or checking it, gets the
#' same numbers; with frozen coefficients (the offset) no tie correction enters the fit.
#'
#' @param df data.frame; @param time,event outcome columns; @param lp linear predictor column
#'   (numeric, no missing value).
#' @return list(table = data.frame(time, survival, cumulative_hazard, n_risk, n_event) with
#'   one row per distinct event time (where S0 steps down), n, n_events, last_follow_up,
#'   estimator).
baseline_survival <- function(df, time, event, lp) {
  y <- surv_outcome(df, time, event)
  require_columns(df, lp)
  x <- df[[lp]]
  if (!is.numeric(x)) stop(sprintf("column '%s': linear predictor must be numeric", lp))
  stop_on_rows(df, is.na(x), sprintf("column '%s': linear predictor is missing", lp))
  if (sum(y[, 2]) < 1) stop("no event in the development cohort: the baseline survival cannot be estimated")
  data <- data.frame(lp = x)
  fit <- survival::coxph(y ~ offset(lp), data = data, ties = "breslow")
  curve <- survival::survfit(fit, newdata = data.frame(lp = 0), ctype = 1, stype = 2)
  steps <- curve$n.event > 0
  list(
    table = data.frame(time = curve$time[steps], survival = as.numeric(curve$surv)[steps],
                       cumulative_hazard = as.numeric(curve$cumhaz)[steps],
                       n_risk = curve$n.risk[steps], n_event = curve$n.event[steps]),
    n = length(x),
    n_events = sum(y[, 2]),
    last_follow_up = max(y[, 1]),
    estimator = "Breslow (1972) cumulative baseline hazard at lp = 0, S0(t) = exp(-H0(t)) (survival::survfit, ctype = 1, stype = 2)"
  )
}
