# Time-dependent ROC curves and AUC for a continuous marker and a censored event time.
#
# requires: cox.R
#   (surv_outcome, require_columns and stop_on_rows are defined there; in an R session,
#    source("cox.R") before this file.)
#
# Method: cumulative/dynamic ROC curve at time t estimated by inverse probability of
#   censoring weighting (IPCW), with the Kaplan-Meier estimator of the censoring
#   distribution ("marginal" weights):
#   Blanche P, Dartigues JF, Jacqmin-Gadda H (2013). Estimating and comparing time-dependent
#     areas under receiver operating characteristic curves for censored event times with
#     competing risks. Stat Med 32:5381-5397 (AUC estimator, Section 3; i.i.d.
#     representation and standard error, Section 4 and Appendix).
#   Uno H, Cai T, Tian L, Wei LJ (2007). Evaluating prediction rules for t-year survivors
#     with censored regression models. JASA 102:527-537 (the IPCW idea).
#   Engine: the CRAN package timeROC (Blanche) when it is installed; otherwise the estimator
#   below, written to give timeROC's numbers:
#     cases     T_i <  t and delta_i = 1, weight 1 / (n * G(T_i-)),
#     controls  T_j >  t,                 weight 1 / (n * G(t)),
#     (a subject with T = t is neither, as in timeROC),
#   with G the Kaplan-Meier estimate of the censoring survival P(C > s) and G(s-) its left
#   limit. TP(c) = sum of case weights with marker > c / sum of case weights, FP(c) the
#   same for controls, at every distinct marker value c (plus the point (1, 1)); the AUC is
#   the trapezoidal area under (FP, TP), which equals the weighted proportion of concordant
#   case-control pairs, ties in the marker counting one half.
#   riskRegression::Score(metrics = "auc") uses the same weights but counts an event at
#   exactly t as a case (T <= t); the two agree whenever no event time equals t.
#   Larger marker values are taken to mean a higher risk of the event.


#' Time-dependent (cumulative/dynamic) AUC at several times, with 95% confidence intervals.
#'
#' @param df data.frame with the outcome and the marker (row names identify patients).
#' @param time,event outcome column names (event 0 = censored, 1 = event).
#' @param marker name of the numeric marker column; higher = higher risk.
#' @param times numeric vector of positive times (same unit as `time`).
#' @return list(
#'   table = data.frame(time, auc, se, lower, upper, cases, controls, censored_before_t,
#'                      implementation, se_method, reason)
#'     one row per time in the order given; lower/upper = auc -/+ 1.96 se clipped to
#'     [0, 1]; cases, controls as defined above; censored_before_t = n - cases - controls
#'     (censored before t, or with T = t); auc NA with `reason` when there is no case or
#'     no control at t (reason NA otherwise),
#'   roc = data.frame(time, fp, tp)   the ROC curve points of each time, from (0, 0) to
#'                                    (1, 1), in increasing order of fp
#' )
time_dependent_auc <- function(df, time, event, marker, times) {
  y <- surv_outcome(df, time, event)
  require_columns(df, marker)
  m <- df[[marker]]
  if (!is.numeric(m)) stop(sprintf("column '%s': marker must be numeric", marker))
  stop_on_rows(df, is.na(m), sprintf("column '%s': marker is missing", marker))
  if (!is.numeric(times) || length(times) == 0 || any(is.na(times)) || any(times <= 0)) {
    stop("times must be a non-empty vector of positive numbers")
  }
  if (requireNamespace("timeROC", quietly = TRUE)) {
    timeroc_package_auc(y[, "time"], y[, "status"], m, times)
  } else {
    ipcw_auc(y[, "time"], y[, "status"], m, times)
  }
}


#' time_dependent_auc through timeROC::timeROC (marginal weights, iid standard errors).
timeroc_package_auc <- function(T, delta, marker, times) {
  implementation <- paste("timeROC", as.character(utils::packageVersion("timeROC")))
  fit <- timeROC::timeROC(T = T, delta = delta, marker = marker, cause = 1,
                          weighting = "marginal", times = times, iid = TRUE)
  rows <- lapply(times, function(t) {
    k <- match(t, fit$times)
    stats <- fit$Stats[k, ]
    cases <- unname(stats[1])
    controls <- unname(stats[2])
    auc <- unname(fit$AUC[k])
    reason <- no_auc_reason(cases, controls)
    roc <- if (is.na(auc)) {
      data.frame(time = numeric(0), fp = numeric(0), tp = numeric(0))
    } else {
      ordered <- order(fit$FP[, k], fit$TP[, k])
      data.frame(time = t, fp = fit$FP[ordered, k], tp = fit$TP[ordered, k])
    }
    list(row = auc_row(t, auc, unname(fit$inference$vect_sd_1[k]), cases, controls,
                       length(T) - cases - controls, implementation,
                       "iid representation (timeROC, Blanche et al. 2013)", reason),
         roc = roc)
  })
  collect_auc_rows(rows)
}


#' The in-project IPCW estimator (see the header of this file) with iid standard errors.
ipcw_auc <- function(T, delta, marker, times) {
  n <- length(T)
  censoring <- censoring_survival(T, delta)
  g_left <- censoring$left(T)
  rows <- lapply(times, function(t) {
    case <- T < t & delta == 1
    control <- T > t
    cases <- sum(case)
    controls <- sum(control)
    reason <- no_auc_reason(cases, controls)
    if (!is.na(reason)) {
      return(list(row = auc_row(t, NA_real_, NA_real_, cases, controls,
                                n - cases - controls, "studyrunner", NA_character_, reason),
                  roc = data.frame(time = numeric(0), fp = numeric(0), tp = numeric(0))))
    }
    case_weight <- ifelse(case, 1 / (n * g_left), 0)
    control_weight <- ifelse(control, 1 / (n * censoring$at(t)), 0)
    curve <- weighted_roc_points(marker, case_weight, control_weight)
    auc <- trapezoid_area(curve$fp, curve$tp)
    se <- ipcw_auc_se(T, delta, marker, case, control, g_left, censoring)
    list(row = auc_row(t, auc, se, cases, controls, n - cases - controls, "studyrunner",
                       "iid representation (Blanche et al. 2013, Appendix)", reason),
         roc = data.frame(time = t, fp = curve$fp, tp = curve$tp))
  })
  collect_auc_rows(rows)
}


#' Why no AUC can be estimated at a time (NA when it can).
no_auc_reason <- function(cases, controls) {
  if (cases == 0) return("no case (no event before t)")
  if (controls == 0) return("no control (no patient event-free beyond t)")
  NA_character_
}


#' One row of the AUC table.
auc_row <- function(t, auc, se, cases, controls, censored, implementation, se_method,
                    reason) {
  z <- stats::qnorm(0.975)
  data.frame(time = t, auc = auc, se = se,
             lower = if (is.na(se)) NA_real_ else max(0, auc - z * se),
             upper = if (is.na(se)) NA_real_ else min(1, auc + z * se),
             cases = cases, controls = controls, censored_before_t = censored,
             implementation = implementation, se_method = se_method, reason = reason,
             stringsAsFactors = FALSE)
}


#' Bind the per-time results into list(table, roc).
collect_auc_rows <- function(rows) {
  table <- do.call(rbind, lapply(rows, `[[`, "row"))
  roc <- do.call(rbind, lapply(rows, `[[`, "roc"))
  rownames(table) <- NULL
  rownames(roc) <- NULL
  list(table = table, roc = roc)
}


#' Kaplan-Meier estimate of the censoring survival G(s) = P(C > s).
#'
#' The product-limit estimator with censorings as the events (prodlim's "reverse"
#' Kaplan-Meier, which timeROC uses through pec::ipcw): at a time u with both events and
#' censorings, the patients with an event at u have left the censoring risk set, so that
#' the censoring hazard at u is (censored at u) / (#{T > u} + censored at u). (survfit on
#' the reversed indicator keeps them at risk instead and gives slightly different weights
#' when event and censoring times are tied.)
#' @return list(at = function(s) G(s), left = function(s) G(s-), times, at_risk, censored)
#'   with the censoring risk set and counts at each distinct observed time.
censoring_survival <- function(T, delta) {
  u <- sort(unique(T))
  censored <- vapply(u, function(s) sum(T == s & delta == 0), numeric(1))
  at_risk <- vapply(u, function(s) sum(T > s), numeric(1)) + censored
  factor <- ifelse(censored > 0, 1 - censored / pmax(at_risk, 1), 1)
  steps <- c(1, cumprod(factor))
  list(at = function(s) steps[findInterval(s, u) + 1],
       left = function(s) steps[findInterval(s, u, left.open = TRUE) + 1],
       times = u, at_risk = at_risk, censored = censored)
}


#' ROC points of a weighted two-sample comparison at every distinct marker value.
#'
#' TP(c) = sum(case_weight[marker > c]) / sum(case_weight), FP(c) likewise for controls,
#' for c running down the distinct marker values, starting at (0, 0) (c = max marker) and
#' ending at (1, 1) (c below the minimum).
weighted_roc_points <- function(marker, case_weight, control_weight) {
  cuts <- sort(unique(marker), decreasing = TRUE)
  above <- function(w) vapply(cuts, function(c) sum(w[marker > c]), numeric(1))
  list(fp = c(above(control_weight), sum(control_weight)) / sum(control_weight),
       tp = c(above(case_weight), sum(case_weight)) / sum(case_weight))
}


#' Area under a curve by the trapezoidal rule (x increasing).
trapezoid_area <- function(x, y) {
  k <- length(x)
  sum(diff(x) * (y[-1] + y[-k]) / 2)
}


#' Standard error of the IPCW AUC at time t from its i.i.d. (influence function)
#' representation, Blanche et al. (2013), Appendix, marginal (Kaplan-Meier) weights.
#'
#' Write AUC = h / (F * pi) with, over all n subjects,
#'   K_ij = w_i 1{T_j > t} (1{M_i > M_j} + 1/2 1{M_i = M_j}),  w_i = case_i / G(T_i-),
#'   h = sum_ij K_ij / n^2,  F = sum_i w_i / n (cumulative incidence at t),
#'   pi = #{T_j > t} / n.
#' The influence of subject k is
#'   IF_k = [ sum_j K_kj / n + sum_i K_ik / n - 2 h + sum_i r_i I_k(T_i-) / n^2
#'            - h { (1{T_k > t} - pi) / pi + (w_k - F) / F + sum_i w_i I_k(T_i-) / (n F) } ]
#'          / (F pi),
#' r_i = sum_j K_ij, where I_k(s-) (censoring_influence) is the Kaplan-Meier influence
#' term of the censoring distribution (Ghat(s-) - G(s-) ~ -G(s-) mean_k I_k(s-)). The
#' standard error is sd(IF) / sqrt(n), as in timeROC; it equals riskRegression::Score's
#' AUC standard error (cens.model = "km") to machine precision without tied times. (With
#' tied observed times this uses
#' tie-aware risk sets; timeROC takes the subjects one at a time in time order, so the two
#' standard errors can differ slightly when times are tied; the AUC itself does not.)
ipcw_auc_se <- function(T, delta, marker, case, control, g_left, censoring) {
  n <- length(T)
  w <- ifelse(case, 1 / g_left, 0)
  concordance <- outer(marker, marker, ">") + 0.5 * outer(marker, marker, "==")
  K <- concordance * outer(w, as.numeric(control))
  h <- sum(K) / n^2
  incidence <- sum(w) / n   # F in the formula above
  pi_t <- sum(control) / n
  I <- censoring_influence(T, delta, T[case], censoring)   # cases x subjects
  r <- rowSums(K)[case]
  g_term <- colSums(r * I) / n^2
  f_term <- colSums(w[case] * I) / (n * incidence)
  relative <- (as.numeric(control) - pi_t) / pi_t + (w - incidence) / incidence + f_term
  influence <- (rowSums(K) / n + colSums(K) / n - 2 * h + g_term - h * relative) /
    (incidence * pi_t)
  stats::sd(influence) / sqrt(n)
}


#' I_k(s-) = int_{[0, s)} dM_C,k(u) / y_C(u) for each s in `at` (rows) and subject k
#' (columns): the Kaplan-Meier influence term of the censoring distribution.
#'
#' dM_C,k(u) = dN_C,k(u) - R_k(u) dLambda_C(u), with dLambda_C(u) = (censored at u) /
#' (censoring risk set at u), R_k(u) = 1 when subject k is in the censoring risk set at u
#' (T_k > u, or T_k = u and censored) and y_C(u) = censoring risk set / n; risk sets as in
#' censoring_survival().
censoring_influence <- function(T, delta, at, censoring) {
  n <- length(T)
  u <- censoring$times
  r <- censoring$at_risk
  hazard_term <- ifelse(censoring$censored > 0, n * censoring$censored / pmax(r, 1)^2, 0)
  cumulative <- c(0, cumsum(hazard_term))
  C_upto <- function(s) cumulative[findInterval(s, u) + 1]                      # u <= s
  C_before <- function(s) cumulative[findInterval(s, u, left.open = TRUE) + 1]  # u < s
  k_index <- match(T, u)
  k_jump <- ifelse(delta == 0, n / r[k_index], 0)
  k_stop <- ifelse(delta == 0, C_upto(T), C_before(T))   # compensator of k ends at T_k
  ends_before <- outer(at, T, ">")                          # T_k < s
  jump <- ends_before * matrix(k_jump, length(at), n, byrow = TRUE)
  compensator <- ifelse(ends_before, matrix(k_stop, length(at), n, byrow = TRUE),
                        matrix(C_before(at), length(at), n))
  jump - compensator
}
