# External validation of a frozen Cox model: discrimination, calibration and overall
# accuracy of a score that is given (the linear predictor or the predicted risk computed
# from the frozen model), on a cohort the model was not fitted on. Nothing here refits the
# model's coefficients.
#
# requires: cox.R
#   (surv_outcome, require_columns and stop_on_rows are defined there.)
#
# Methods:
#   Harrell's C: Harrell FE, Lee KL, Mark DB (1996). Stat Med 15:361-387.
#   Uno's C (IPCW, truncated at tau): Uno H, Cai T, Pencina MJ, D'Agostino RB, Wei LJ
#     (2011). Stat Med 30:1105-1117. Both computed by survival::concordance, whose
#     infinitesimal-jackknife standard errors are described in Therneau T, Atkinson E,
#     "The concordance statistic", survival package vignette.
#   Observed risk: Kaplan-Meier with Greenwood variance (Kaplan EL, Meier P (1958). JASA
#     53:457-481); O/E ratio and its log-scale CI: Debray TPA et al. (2017). BMJ 356:i6460.
#   Brier score with inverse-probability-of-censoring weights: Graf E, Schmoor C,
#     Sauerbrei W, Schumacher M (1999). Stat Med 18:2529-2545; index of prediction accuracy
#     (scaled Brier): Kattan MW, Gerds TA (2018). Diagn Progn Res 2:7.
#   Calibration slope: Cox regression of the outcome on the frozen linear predictor (van
#     Houwelingen HC (2000). Stat Med 19:3401-3415; Royston P, Altman DG (2013). BMC Med
#     Res Methodol 13:33).
#
# Conventions: `df` is a data.frame whose row names identify the patients; `time`, `event`
# are column names (event 0 = censored, 1 = event). A higher linear predictor means a
# higher risk. Confidence intervals are 95%.

Z975 <- stats::qnorm(0.975)


#' Harrell's C and Uno's C (truncated at tau) of a frozen linear predictor.
#'
#' Harrell: survival::concordance(Surv ~ lp, reverse = TRUE), timewt = "n" (each comparable
#' pair has weight 1). Uno: the same with timewt = "n/G2" and ymax = tau, i.e. each
#' comparable pair (i, j) with an event of i at T_i <= tau and T_j > T_i is weighted by
#' 1 / G(T_i)^2, G the Kaplan-Meier estimate of the censoring distribution (Uno et al.
#' 2011). Ties in lp count 1/2. CI: estimate -/+ 1.96 se (infinitesimal jackknife; for Uno
#' the censoring weights are treated as known).
#'
#' @param df data.frame; @param time,event outcome columns; @param lp numeric column.
#' @param tau truncation time of Uno's C (positive).
#' @return list(harrell = list(estimate, lower, upper, se), uno = list(...), tau, n,
#'   n_events, n_events_tau (events at or before tau)).
concordance_indices <- function(df, time, event, lp, tau) {
  y <- surv_outcome(df, time, event)
  score <- frozen_score(df, lp)
  if (!is.numeric(tau) || length(tau) != 1 || is.na(tau) || tau <= 0) {
    stop("tau must be one positive number")
  }
  n_events_tau <- sum(y[, "status"] == 1 & y[, "time"] <= tau)
  if (n_events_tau == 0) stop(sprintf("no event at or before tau = %g", tau))
  harrell <- survival::concordance(y ~ score, reverse = TRUE)
  uno <- survival::concordance(y ~ score, reverse = TRUE, timewt = "n/G2", ymax = tau)
  list(harrell = normal_interval(harrell$concordance, sqrt(harrell$var)),
       uno = normal_interval(uno$concordance, sqrt(uno$var)),
       tau = tau, n = nrow(df), n_events = sum(y[, "status"]), n_events_tau = n_events_tau)
}


#' Calibration of frozen predicted risks at time t, overall and in risk groups, and the
#' IPCW Brier score of the predictions and of the null (Kaplan-Meier) model.
#'
#' Observed risk: 1 - S(t), S the Kaplan-Meier estimate, 95% CI from survfit's log-scale
#' interval of S. Expected: mean predicted risk E. O/E = (1 - S(t)) / E with the 95% CI
#' (O/E) exp(-/+ 1.96 se(S(t)) / (1 - S(t))), se(S) the Greenwood standard error and E
#' treated as fixed (Debray et al. 2017). Groups: `groups` groups of equal size by
#' increasing predicted risk (quantile groups; tied predictions are split by row order).
#'
#' Brier score (Graf et al. 1999): BS(t) = mean over patients of
#'   w_i (I(T_i <= t, event_i) - r_i)^2, w_i = 1 / G(T_i-) for an event at T_i <= t,
#'   1 / G(t) for T_i > t, and 0 for a patient censored at or before t, G the Kaplan-Meier
#' estimate of the censoring distribution. The null model predicts 1 - S(t) for everyone;
#' IPA = 1 - BS(model) / BS(null) (Kattan & Gerds 2018).
#'
#' @param df data.frame; @param time,event outcome columns.
#' @param risk name of the column of predicted event probabilities by t (in [0, 1]).
#' @param t positive time; @param groups number of risk groups (2 or more).
#' @return list(t, n, n_events (events at or before t), observed = list(estimate, lower,
#'   upper, se), predicted, oe = list(estimate, lower, upper),
#'   brier = list(model, null, ipa), groups = data.frame(group, n, n_events, predicted,
#'   observed, lower, upper)). `observed` is NA in a group whose last follow-up is censored
#'   before t.
calibration_at <- function(df, time, event, risk, t, groups = 5) {
  y <- surv_outcome(df, time, event)
  r <- frozen_score(df, risk)
  stop_on_rows(df, r < 0 | r > 1, sprintf("column '%s': predicted risk is not in [0, 1]", risk))
  if (!is.numeric(t) || length(t) != 1 || is.na(t) || t <= 0) stop("t must be one positive number")
  groups <- as.integer(groups)
  if (is.na(groups) || groups < 2 || groups > length(r)) {
    stop(sprintf("groups must be an integer between 2 and the number of patients (%d)", length(r)))
  }
  km <- km_risk_at(y, t)
  if (is.na(km$estimate)) {
    stop(sprintf("t = %g is beyond the follow-up: the last follow-up time is censored", t))
  }
  expected <- mean(r)
  weights <- ipcw_weights(y, t)
  brier_model <- ipcw_brier(y, r, t, weights)
  brier_null <- ipcw_brier(y, rep(km$estimate, length(r)), t, weights)
  list(t = t, n = length(r), n_events = events_by(y, t),
       observed = km, predicted = expected,
       oe = oe_ratio(km, expected),
       brier = list(model = brier_model, null = brier_null, ipa = 1 - brier_model / brier_null),
       groups = calibration_groups(y, r, t, groups))
}


#' Calibration slope: the coefficient of the frozen linear predictor in the Cox model
#' Surv(time, event) ~ lp fitted on the validation cohort (Efron ties), its Wald 95% CI,
#' and the Wald test of slope = 1 (a slope below 1 means predictions too extreme).
#'
#' @return list(slope, se, lower, upper, p_unity, n, n_events).
calibration_slope <- function(df, time, event, lp) {
  y <- surv_outcome(df, time, event)
  score <- frozen_score(df, lp)
  fit <- survival::coxph(y ~ score, ties = "efron")
  slope <- unname(stats::coef(fit))
  se <- unname(sqrt(diag(stats::vcov(fit))))
  list(slope = slope, se = se, lower = slope - Z975 * se, upper = slope + Z975 * se,
       p_unity = 2 * stats::pnorm(-abs((slope - 1) / se)),
       n = length(score), n_events = sum(y[, "status"]))
}


# ------------------------------------------------------------------------------ helpers


#' The numeric, complete, frozen score (or predicted risk) column.
frozen_score <- function(df, column) {
  require_columns(df, column)
  x <- df[[column]]
  if (!is.numeric(x)) stop(sprintf("column '%s': must be numeric", column))
  stop_on_rows(df, is.na(x), sprintf("column '%s': value is missing", column))
  x
}


#' list(estimate, lower, upper, se) with the normal 95% interval.
normal_interval <- function(estimate, se) {
  estimate <- unname(estimate)
  se <- unname(se)
  list(estimate = estimate, lower = estimate - Z975 * se, upper = estimate + Z975 * se, se = se)
}


#' Number of events at or before t.
events_by <- function(y, t) sum(y[, "status"] == 1 & y[, "time"] <= t)


#' Kaplan-Meier event probability 1 - S(t): list(estimate, lower, upper, se), se the
#' Greenwood standard error of S(t); all NA when the group is empty or t lies beyond its
#' last follow-up and that time is censored.
km_risk_at <- function(y, t) {
  missing <- list(estimate = NA_real_, lower = NA_real_, upper = NA_real_, se = NA_real_)
  if (length(y) == 0) return(missing)
  last <- max(y[, "time"])
  if (t > last && !any(y[, "time"] == last & y[, "status"] == 1)) return(missing)
  s <- summary(survival::survfit(y ~ 1, conf.type = "log"), times = t, extend = TRUE)
  list(estimate = 1 - s$surv, lower = 1 - s$upper, upper = 1 - s$lower, se = s$std.err)
}


#' Observed/expected ratio with the log-scale 95% CI from the Kaplan-Meier standard error.
oe_ratio <- function(km, expected) {
  ratio <- km$estimate / expected
  half <- Z975 * km$se / km$estimate
  list(estimate = ratio, lower = ratio * exp(-half), upper = ratio * exp(half))
}


#' Kaplan-Meier estimate of the censoring survival G at each of `at`; `left` = TRUE gives
#' G(at-), the value just before (censorings at a time are taken to follow its events).
censoring_survival <- function(y, at, left = FALSE) {
  fit <- survival::survfit(survival::Surv(y[, "time"], 1 - y[, "status"]) ~ 1)
  steps <- if (left) findInterval(at, fit$time, left.open = TRUE) else findInterval(at, fit$time)
  c(1, fit$surv)[steps + 1]
}


#' The IPCW weights at t of Graf et al. (1999): 1 / G(T_i-) for an event at T_i <= t, 1 / G(t)
#' for T_i > t, 0 for a patient censored at or before t.
ipcw_weights <- function(y, t) {
  time <- y[, "time"]
  case <- y[, "status"] == 1 & time <= t
  alive <- time > t
  w <- numeric(length(time))
  w[case] <- 1 / censoring_survival(y, time[case], left = TRUE)
  w[alive] <- 1 / censoring_survival(y, t)
  w
}


#' IPCW Brier score at t of predicted event probabilities `r` (Graf et al. 1999); `weights`
#' are ipcw_weights(y, t) (given when several predictions are scored on the same outcome).
ipcw_brier <- function(y, r, t, weights = ipcw_weights(y, t)) {
  case <- y[, "status"] == 1 & y[, "time"] <= t
  mean(weights * (as.numeric(case) - r)^2)
}


#' Per risk group: n, events by t, mean predicted risk, Kaplan-Meier observed risk and CI.
calibration_groups <- function(y, r, t, groups) {
  group <- as.integer(ceiling(rank(r, ties.method = "first") * groups / length(r)))
  rows <- lapply(seq_len(groups), function(g) {
    in_group <- group == g
    km <- km_risk_at(y[in_group], t)
    data.frame(group = g, n = sum(in_group), n_events = events_by(y[in_group], t),
               predicted = mean(r[in_group]), observed = km$estimate,
               lower = km$lower, upper = km$upper)
  })
  do.call(rbind, rows)
}


#' Smoothed calibration at t of frozen predicted risks: the observed risk by t as a smooth
#' function of the predicted risk, from a Cox model of the outcome on a natural cubic spline
#' (3 df) of the complementary log-log of the predicted risk, and its summaries: the
#' integrated calibration index ICI (mean absolute difference between the smoothed observed
#' and the predicted risk over the patients), E50 (median), E90 (90th percentile) and Emax.
#' Austin PC, Harrell FE Jr, van Klaveren D (2020), Graphical calibration curves and the
#' integrated calibration index (ICI) for survival models, Stat Med 39:2714-2742.
#'
#' @return list(t, ici, e50, e90, emax, curve = data.frame(predicted, observed)) with the
#'   curve on `n_grid` predicted risks between the 1st and 99th percentiles.
smoothed_calibration <- function(df, time, event, risk, t, n_grid = 50) {
  y <- surv_outcome(df, time, event)
  r <- frozen_score(df, risk)
  stop_on_rows(df, r < 0 | r > 1, sprintf("column '%s': predicted risk is not in [0, 1]", risk))
  smooth <- smoothed_observed(y, r, t)
  grid <- unique(stats::quantile(smooth$clipped, probs = seq(0.01, 0.99, length.out = n_grid), names = FALSE))
  c(list(t = t), absolute_errors(abs(smooth$observed_at(smooth$clipped) - r)),
    list(curve = data.frame(predicted = grid, observed = smooth$observed_at(grid))))
}


#' The smoothed observed risk of smoothed_calibration: the Cox model of y on a natural cubic
#' spline (3 df) of cloglog(r), r clipped to [1e-8, 1 - 1e-8]. Returns list(clipped,
#' observed_at = function(predicted risks) -> smoothed observed risks by t). survfit's curve
#' of a Cox model is exp(-H(t) exp(lp - lp_ref)) for every covariate value (the cumulative
#' hazard is proportional), so one curve and the linear predictors give them all: the same
#' numbers (to 1e-15) as survfit(fit, newdata) on every row, ten times faster, which the
#' bootstrap replicates need.
smoothed_observed <- function(y, r, t) {
  clipped <- pmin(pmax(r, 1e-8), 1 - 1e-8)
  data <- data.frame(cll = log(-log(1 - clipped)))
  fit <- survival::coxph(y ~ splines::ns(cll, df = 3), data = data)
  observed_at <- function(predicted) {
    new <- data.frame(cll = log(-log(1 - predicted)))
    reference <- summary(survival::survfit(fit, newdata = new[1, , drop = FALSE]), times = t,
                         extend = TRUE)$cumhaz
    lp <- stats::predict(fit, newdata = new, type = "lp")
    unname(1 - exp(-reference * exp(lp - lp[1])))
  }
  list(clipped = clipped, observed_at = observed_at)
}


#' ICI, E50, E90 and Emax of the absolute differences between smoothed observed and predicted risk.
absolute_errors <- function(error) {
  list(ici = mean(error), e50 = stats::median(error), e90 = unname(stats::quantile(error, 0.9)),
       emax = max(error))
}


#' Bootstrap replicates of the validation measures of frozen predicted risks: for each
#' resample of the patients (rows drawn with replacement, the predictions left as they are:
#' nothing is refitted) and each time, the IPCW Brier score of the model and of the null
#' (Kaplan-Meier) model, the IPA and the smoothed-calibration ICI, E50 and E90, computed
#' exactly as calibration_at and smoothed_calibration compute them on the whole cohort. Their
#' percentiles give the bootstrap percentile intervals (Efron B, Tibshirani RJ (1993), An
#' Introduction to the Bootstrap, chapter 13), as Austin et al. (2020) do for the ICI.
#'
#' A replicate that cannot be computed at a time (t beyond the resample's follow-up, no event
#' by t, a spline Cox model that does not fit) is returned with its reason and NA measures;
#' the warnings of the replicates' fits are not passed on (the whole cohort's fit gives its own).
#'
#' @param df data.frame with the outcome columns and one predicted-risk column per time.
#' @param risks names of the predicted-risk columns, one per entry of `times`.
#' @param positions the resamples' row numbers (1-based), one resample after another
#'   (nrow(df) numbers each).
#' @return data.frame(replicate (1 = the first resample), time_index (1-based into `times`),
#'   brier_model, brier_null, ipa, ici, e50, e90, failure (NA, or why the replicate failed)).
calibration_replicates <- function(df, time, event, risks, times, positions) {
  y <- surv_outcome(df, time, event)
  n <- nrow(df)
  if (length(risks) != length(times)) stop("one predicted-risk column is needed per time")
  if (length(positions) %% n != 0 || any(positions < 1 | positions > n)) {
    stop(sprintf("positions must be whole resamples of the %d rows", n))
  }
  resamples <- matrix(as.integer(positions), nrow = n)
  predicted <- lapply(risks, function(column) frozen_score(df, column))
  rows <- list()
  for (b in seq_len(ncol(resamples))) {
    yb <- y[resamples[, b]]
    for (k in seq_along(times)) {
      rows[[length(rows) + 1]] <- c(list(replicate = b, time_index = k),
                                    replicate_measures(yb, predicted[[k]][resamples[, b]], times[[k]]))
    }
  }
  do.call(rbind, lapply(rows, as.data.frame))
}


#' One replicate's measures at t (calibration_replicates), or NA measures and the failure.
replicate_measures <- function(y, r, t) {
  failed <- function(why) list(brier_model = NA_real_, brier_null = NA_real_, ipa = NA_real_, ici = NA_real_,
                                e50 = NA_real_, e90 = NA_real_, failure = why)
  km <- km_risk_at(y, t)
  if (is.na(km$estimate)) return(failed("t beyond the resample's follow-up"))
  if (events_by(y, t) == 0) return(failed("no event by t in the resample"))
  weights <- ipcw_weights(y, t)
  brier_model <- ipcw_brier(y, r, t, weights)
  brier_null <- ipcw_brier(y, rep(km$estimate, length(r)), t, weights)
  errors <- tryCatch(suppressWarnings({
    smooth <- smoothed_observed(y, r, t)
    absolute_errors(abs(smooth$observed_at(smooth$clipped) - r))
  }), error = function(e) NULL)
  if (is.null(errors) || !all(is.finite(unlist(errors)))) {
    return(failed("the smoothed calibration's spline Cox model did not fit"))
  }
  list(brier_model = brier_model, brier_null = brier_null, ipa = 1 - brier_model / brier_null,
       ici = errors$ici, e50 = errors$e50, e90 = errors$e90, failure = NA_character_)
}
