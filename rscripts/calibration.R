# Calibration of a risk score at fixed times: predicted versus Kaplan-Meier observed event
# probability in groups of predicted risk.
#
# requires: cox.R
#   (surv_outcome, require_columns and stop_on_rows are defined there; in an R session,
#    source("cox.R") before this file.)
#
# Methods:
#   Predicted risk at t from a Cox model of the outcome on the score (the score's own
#     baseline hazard): F(t | lp) = 1 - exp(-H0(t) exp(beta * lp)), H0 the Breslow/Efron
#     cumulative baseline hazard of survival::coxph (survival::basehaz, centered = FALSE).
#     Cox DR (1972). J R Stat Soc B 34:187-220; Breslow NE (1972), discussion of Cox.
#   Grouped calibration (observed = Kaplan-Meier 1 - S(t) per group of predicted risk), as
#     in rms::calibrate(cmethod = "KM") without its bootstrap: Harrell FE (2015). Regression
#     Modeling Strategies, 2nd ed., Springer, Section 20.12; Steyerberg EW (2019). Clinical
#     Prediction Models, 2nd ed., Chapter 15.
#   Kaplan-Meier with Greenwood variance and log-scale confidence intervals (survfit's
#     default): Kaplan EL, Meier P (1958). JASA 53:457-481.


#' Calibration table of a risk score at one or more times.
#'
#' The Cox model `Surv(time, event) ~ lp` is fitted on the data passed (the caller decides
#' which data: training cohort for apparent calibration, or a test cohort to recalibrate).
#' At each time t every patient gets the predicted event probability
#' 1 - exp(-H0(t) exp(beta * lp)); patients are split into `groups` groups of equal size
#' by increasing predicted risk (quantile groups; with ties in the predictions the groups
#' follow the order of the rows), and in each group the observed event probability is the
#' Kaplan-Meier estimate 1 - S(t) with its 95% CI (1 - upper, 1 - lower of the survival
#' CI). `observed` is NA when t lies beyond the last follow-up time of the group and that
#' time is censored (the Kaplan-Meier curve is not defined there).
#'
#' @param df data.frame with the outcome and the score.
#' @param time,event outcome column names (event 0/1).
#' @param lp name of the numeric score column (e.g. the Cox linear predictor).
#' @param times positive times (same unit as `time`).
#' @param groups number of risk groups (2 or more).
#' @return data.frame(time, group, n, n_events, predicted, observed, lower, upper), one row
#'   per time and group (group 1 = lowest predicted risk); `n_events` = events up to t in the
#'   group; `predicted` = mean predicted probability in the group. The fitted coefficient
#'   is attached as attribute "coefficient".
calibration_at <- function(df, time, event, lp, times, groups = 3) {
  y <- surv_outcome(df, time, event)
  require_columns(df, lp)
  score <- df[[lp]]
  if (!is.numeric(score)) stop(sprintf("column '%s': score must be numeric", lp))
  stop_on_rows(df, is.na(score), sprintf("column '%s': score is missing", lp))
  if (!is.numeric(times) || length(times) == 0 || any(is.na(times)) || any(times <= 0)) {
    stop("times must be a non-empty vector of positive numbers")
  }
  groups <- as.integer(groups)
  if (is.na(groups) || groups < 2 || groups > length(score)) {
    stop(sprintf("groups must be an integer between 2 and the number of patients (%d)",
                 length(score)))
  }
  model <- score_cox_model(y, score)
  rows <- lapply(times, function(t) {
    predicted <- risk_at(model, score, t)
    group <- equal_size_groups(predicted, groups)
    do.call(rbind, lapply(seq_len(groups), function(g) {
      in_group <- group == g
      km <- km_at_time(y[in_group], t)
      data.frame(time = t, group = g, n = sum(in_group),
                 n_events = sum(y[in_group, "time"] <= t & y[in_group, "status"] == 1),
                 predicted = mean(predicted[in_group]),
                 observed = 1 - km$surv, lower = 1 - km$upper, upper = 1 - km$lower)
    }))
  })
  out <- do.call(rbind, rows)
  rownames(out) <- NULL
  attr(out, "coefficient") <- model$beta
  out
}


#' Each patient's predicted event probability by time t, 1 - exp(-H0(t) exp(beta * lp)),
#' from the Cox model `Surv(time, event) ~ lp` fitted on `df` (as in calibration_at).
#'
#' @return numeric vector, one value per row of `df`.
predicted_risk <- function(df, time, event, lp, t) {
  y <- surv_outcome(df, time, event)
  require_columns(df, lp)
  risk_at(score_cox_model(y, df[[lp]]), df[[lp]], t)
}


#' Cox model of the outcome on a score: its coefficient and cumulative baseline hazard.
score_cox_model <- function(y, score) {
  fit <- survival::coxph(y ~ score, ties = "efron")
  list(beta = unname(stats::coef(fit)), H0 = survival::basehaz(fit, centered = FALSE))
}


#' Predicted event probability by t under a score_cox_model.
risk_at <- function(model, score, t) {
  1 - exp(-cumulative_hazard_at(model$H0, t) * exp(model$beta * score))
}


#' Value at t of a step function given as basehaz()'s data.frame(hazard, time).
cumulative_hazard_at <- function(H0, t) {
  c(0, H0$hazard)[findInterval(t, H0$time) + 1]
}


#' Group labels 1..groups of equal size (sizes differ by at most one) by increasing value.
equal_size_groups <- function(value, groups) {
  ranks <- rank(value, ties.method = "first")
  as.integer(ceiling(ranks * groups / length(value)))
}


#' Kaplan-Meier survival at time t with its 95% log-scale confidence interval.
#'
#' @param y survival::Surv object of one group.
#' @return list(surv, lower, upper); all NA for an empty group or when t is beyond the
#'   last follow-up time and that time is censored.
km_at_time <- function(y, t) {
  missing <- list(surv = NA_real_, lower = NA_real_, upper = NA_real_)
  if (length(y) == 0) return(missing)
  last <- max(y[, "time"])
  if (t > last && !any(y[, "time"] == last & y[, "status"] == 1)) return(missing)
  fit <- survival::survfit(y ~ 1, conf.type = "log")
  s <- summary(fit, times = t, extend = TRUE)
  list(surv = s$surv, lower = s$lower, upper = s$upper)
}
