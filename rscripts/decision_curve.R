# Decision curve analysis for a survival outcome: net benefit of treating the patients
# whose predicted risk of an event by time t is at least a threshold probability.
#
# requires: cox.R, validation.R
#   (surv_outcome, require_columns, stop_on_rows are defined in cox.R, km_risk_at in
#    validation.R; in an R session, source both before this file.)
#
# The predicted risk is given (the caller's frozen model: 1 - S0(t)^exp(lp) with the
# development cohort's baseline survival); nothing is fitted here.
#
# Method: Vickers AJ, Elkin EB (2006). Decision curve analysis: a novel method for
#   evaluating prediction models. Med Decis Making 26:565-574; extended to censored
#   outcomes with the Kaplan-Meier estimate in Vickers AJ, Cronin AM, Elkin EB, Gonen M
#   (2008). Extensions to decision curve analysis. BMC Med Inform Decis Mak 8:53 (the
#   "stdca" approach). For threshold p, the patients with risk >= p are "treated":
#     true positives / n  = (1 - S_treated(t)) * n_treated / n
#     false positives / n = S_treated(t) * n_treated / n
#     net benefit         = TP/n - FP/n * p / (1 - p),
#   with S_treated the Kaplan-Meier survival at t among the treated. Treating everyone
#   gives (1 - S(t)) - S(t) * p / (1 - p), S the Kaplan-Meier survival of all patients;
#   treating no one gives 0.


#' Net benefit of a risk prediction at time t over a grid of threshold probabilities.
#'
#' @param df data.frame with the outcome and the predicted risk.
#' @param time,event outcome column names (event 0/1).
#' @param risk_at_t name of the column with each patient's predicted probability of an
#'   event by time t (values in [0, 1]).
#' @param t the time horizon (positive, same unit as `time`).
#' @param thresholds threshold probabilities in [0, 1).
#' @return data.frame(threshold, net_benefit, treat_all, treat_none, n_treated), one row
#'   per threshold. net_benefit is 0 when nobody is treated and NA when t lies beyond the
#'   last follow-up of the treated patients and that follow-up is censored (their
#'   Kaplan-Meier curve is not defined at t); treat_all is NA in the same case for the
#'   whole cohort.
decision_curve <- function(df, time, event, risk_at_t, t, thresholds) {
  y <- surv_outcome(df, time, event)
  require_columns(df, risk_at_t)
  risk <- df[[risk_at_t]]
  if (!is.numeric(risk)) stop(sprintf("column '%s': predicted risk must be numeric", risk_at_t))
  stop_on_rows(df, is.na(risk), sprintf("column '%s': predicted risk is missing", risk_at_t))
  stop_on_rows(df, risk < 0 | risk > 1,
               sprintf("column '%s': predicted risk must lie in [0, 1]", risk_at_t))
  if (!is.numeric(t) || length(t) != 1 || is.na(t) || t <= 0) {
    stop("t must be one positive number")
  }
  if (!is.numeric(thresholds) || length(thresholds) == 0 || any(is.na(thresholds)) ||
      any(thresholds < 0 | thresholds >= 1)) {
    stop("thresholds must be numbers in [0, 1)")
  }
  n <- length(risk)
  s_all <- 1 - km_risk_at(y, t)$estimate
  rows <- lapply(thresholds, function(p) {
    odds <- p / (1 - p)
    treated <- risk >= p
    n_treated <- sum(treated)
    net_benefit <- if (n_treated == 0) {
      0
    } else {
      s_treated <- 1 - km_risk_at(y[treated], t)$estimate
      (1 - s_treated) * n_treated / n - s_treated * n_treated / n * odds
    }
    data.frame(threshold = p, net_benefit = net_benefit,
               treat_all = (1 - s_all) - s_all * odds, treat_none = 0,
               n_treated = n_treated)
  })
  out <- do.call(rbind, rows)
  rownames(out) <- NULL
  out
}
