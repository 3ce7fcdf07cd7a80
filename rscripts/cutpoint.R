# Optimal cut-off of a continuous marker by maximally selected rank statistics or by the
# X-tile scan of all splits, and the survival of the two groups a cut-off defines.
#
# requires: cox.R, evaluation.R
#   (surv_outcome, require_columns, require_numeric_scores, stop_on_rows from cox.R;
#    evaluate_risk_score and kaplan_meier_steps from evaluation.R; in an R session, source
#    them before this file.)
#
# Methods:
#   Maximally selected log-rank statistic with the p-value approximations of
#     Lausen B, Schumacher M (1992). Maximally selected rank statistics. Biometrics
#       48:73-85 ("Lau92");
#     Lausen B, Sauerbrei W, Schumacher M (1994). Classification and regression trees
#       (CART) used for the exploration of prognostic factors measured on different scales.
#       In: Computational Statistics, Physica, 483-496 ("Lau94", improved Bonferroni);
#     Hothorn T, Lausen B (2003). On the exact distribution of maximally selected rank
#       statistics. Comput Stat Data Anal 43:121-137 ("HL", "exactGauss").
#     Engine: maxstat::maxstat.test(smethod = "LogRank") (Hothorn T, maxstat package).
#   X-tile: Camp RL, Dolled-Filhart M, Rimm DL (2004). X-tile: a new bio-informatics tool for
#     biomarker assessment and outcome-based cut-point optimization. Clin Cancer Res
#     10:7252-7259. Log-rank test: Mantel N (1966). Cancer Chemother Rep 50:163-170
#     (survival::survdiff); its p-value corrected for the search by maxstat's Lau94.
#   Median survival with the Brookmeyer-Crowley 95% CI (survfit's log-scale interval):
#     Brookmeyer R, Crowley J (1982). A confidence interval for the median survival time.
#     Biometrics 38:29-41.
#   Log-rank test, hazard ratio and Kaplan-Meier curves: see evaluation.R.

MAXSTAT_PMETHODS <- c("Lau94", "Lau92", "HL", "exactGauss", "condMC")


#' Cut-off of a marker that maximises the standardised log-rank statistic.
#'
#' @param df data.frame with the outcome and the marker.
#' @param time,event outcome column names (event 0/1).
#' @param marker name of the numeric marker column.
#' @param pmethod p-value approximation: "Lau94" (default), "Lau92", "HL", "exactGauss" or
#'   "condMC" (Monte-Carlo: set the seed before calling).
#' @param minprop,maxprop smallest and largest quantile of the marker considered as a
#'   cut-off (maxstat's defaults 0.1 and 0.9).
#' @return list(cutpoint, statistic, p_value, pmethod, n, n_events): cutpoint = maxstat's
#'   estimate (the high group is marker > cutpoint), statistic = M, the maximal
#'   standardised log-rank statistic; p_value adjusted for the search over cut-offs.
#'   With pmethod = "HL", maxstat computes M from log-rank scores rounded to integers
#'   (iscores = TRUE, needed by the exact algorithm), so M differs slightly from the other
#'   methods' (DLBCL: 3.1710 instead of 3.1772; the cut-off is the same there).
maxstat_cutpoint <- function(df, time, event, marker, pmethod = "Lau94", minprop = 0.1,
                             maxprop = 0.9) {
  y <- surv_outcome(df, time, event)
  require_columns(df, marker)
  m <- df[[marker]]
  if (!is.numeric(m)) stop(sprintf("column '%s': marker must be numeric", marker))
  stop_on_rows(df, is.na(m), sprintf("column '%s': marker is missing", marker))
  if (!(pmethod %in% MAXSTAT_PMETHODS)) {
    stop(sprintf("pmethod must be one of %s, not '%s'",
                 paste(MAXSTAT_PMETHODS, collapse = ", "), pmethod))
  }
  if (length(unique(m)) < 2) stop(sprintf("column '%s': marker is constant", marker))
  data <- data.frame(time = y[, "time"], event = y[, "status"], marker = m)
  test <- maxstat::maxstat.test(survival::Surv(time, event) ~ marker, data = data,
                                smethod = "LogRank", pmethod = pmethod,
                                minprop = minprop, maxprop = maxprop)
  list(cutpoint = unname(test$estimate), statistic = unname(test$statistic),
       p_value = unname(test$p.value), pmethod = pmethod, n = nrow(data),
       n_events = sum(data$event))
}



#' X-tile-style optimal cut-off: the split maximising the log-rank chi-square.
#'
#' Every distinct marker value c with at least ceiling(min_prop * n) patients in each group
#' (low: marker <= c, high: marker > c) is a candidate; the log-rank chi-square (survdiff,
#' 1 df) of each split is computed and the largest wins (on ties, the smallest cut-off).
#' The cut-off is the largest marker value of the low group, as in maxstat_cutpoint.
#'
#' The naive p-value of the winning chi-square is optimistic: it ignores that the best of
#' `n_cutoffs` splits was chosen. X-tile (Camp et al. 2004) corrects it by a Monte-Carlo
#' p-value or a training/validation split; here the corrected p-value is instead maxstat's
#' Lau94 approximation (Lausen, Sauerbrei & Schumacher 1994) for the maximally selected
#' standardised log-rank statistic over the cut-offs between the min_prop and 1 - min_prop
#' quantiles (maxstat_cutpoint above). That statistic uses the permutation variance
#' of the log-rank scores rather than survdiff's, so maxstat's own best cut-off (reported)
#' can differ from the X-tile one; its p-value bounds the selection effect of a search over
#' (nearly) the same candidate set. When maxstat fails, the corrected p is NA with reason.
#'
#' @param df data.frame; @param time,event outcome columns.
#' @param marker numeric, complete marker column (higher = higher risk).
#' @param min_prop smallest fraction of the patients in each group, in (0, 0.5).
#' @return list(cutpoint, chisq, p_naive, n_cutoffs, n_low, n_high, min_group_size,
#'   scan = data.frame(cutpoint, n_low, n_high, chisq, p_naive) (every candidate),
#'   p_corrected, corrected_method ("Lau94 (maxstat)"), maxstat_cutpoint,
#'   maxstat_statistic, corrected_reason (NA unless maxstat failed), n, n_events).
xtile_cutpoint <- function(df, time, event, marker, min_prop = 0.1) {
  y <- surv_outcome(df, time, event)
  require_numeric_scores(df, marker, "every patient needs the marker")
  if (!(is.numeric(min_prop) && length(min_prop) == 1 && min_prop > 0 && min_prop < 0.5)) {
    stop("min_prop must be a number in (0, 0.5)")
  }
  if (sum(y[, "status"]) == 0) stop(sprintf("column '%s': no events", event))
  m <- df[[marker]]
  n <- length(m)
  min_group <- max(1, ceiling(min_prop * n - 1e-9))
  values <- sort(unique(m))
  n_low <- vapply(values, function(v) sum(m <= v), numeric(1))
  ok <- n_low >= min_group & (n - n_low) >= min_group
  if (!any(ok)) {
    stop(sprintf("column '%s': no cut-off leaves at least %d patients (min_prop = %g) in each group",
                 marker, min_group, min_prop))
  }
  candidates <- values[ok]
  chisq <- vapply(candidates, function(cut) {
    high <- m > cut
    unname(survival::survdiff(y ~ high)$chisq)
  }, numeric(1))
  scan <- data.frame(cutpoint = candidates, n_low = n_low[ok], n_high = n - n_low[ok],
                     chisq = chisq,
                     p_naive = stats::pchisq(chisq, df = 1, lower.tail = FALSE))
  best <- which.max(chisq)
  corrected <- tryCatch(
    maxstat_cutpoint(df, time, event, marker, pmethod = "Lau94", minprop = min_prop,
                     maxprop = 1 - min_prop),
    error = function(e) e)
  failed <- inherits(corrected, "error")
  list(cutpoint = scan$cutpoint[best], chisq = scan$chisq[best],
       p_naive = scan$p_naive[best], n_cutoffs = nrow(scan),
       n_low = scan$n_low[best], n_high = scan$n_high[best], min_group_size = min_group,
       scan = scan,
       p_corrected = if (failed) NA_real_ else corrected$p_value,
       corrected_method = "Lau94 (maxstat)",
       maxstat_cutpoint = if (failed) NA_real_ else corrected$cutpoint,
       maxstat_statistic = if (failed) NA_real_ else corrected$statistic,
       corrected_reason = if (failed) conditionMessage(corrected) else NA_character_,
       n = n, n_events = sum(y[, "status"]))
}


#' Survival of the low (marker <= cutpoint) and high (marker > cutpoint) groups.
#'
#' @param df data.frame with the outcome and the marker.
#' @param time,event outcome column names (event 0/1).
#' @param marker name of the numeric marker column.
#' @param cutpoint the cut-off on the marker scale.
#' @param km_times times at which numbers at risk are tabulated (may be empty).
#' @return list(
#'   cutpoint,
#'   groups = data.frame(group, n, n_events, median, median_lower, median_upper)
#'     median survival time per group with its 95% CI (NA where the Kaplan-Meier curve
#'     does not reach 0.5, or the CI bound is not reached),
#'   hr, hr_lower, hr_upper, hr_p, hr_reason    Cox model high vs low,
#'   logrank_chisq, logrank_p, logrank_reason   log-rank test (1 df),
#'   km = list(low, high)                       Kaplan-Meier step tables,
#'   risk_table                                 data.frame(time, low, high)
#' ) as in evaluate_risk_score (evaluation.R).
groups_by_cutpoint <- function(df, time, event, marker, cutpoint, km_times = numeric(0)) {
  base <- evaluate_risk_score(df, time, event, marker, cutpoint, km_times)
  y <- surv_outcome(df, time, event)
  high <- df[[marker]] > cutpoint
  medians <- do.call(rbind, lapply(list(low = y[!high], high = y[high]), median_survival))
  groups <- cbind(base$groups, medians[base$groups$group, ])
  rownames(groups) <- NULL
  c(list(cutpoint = cutpoint, groups = groups),
    base[c("hr", "hr_lower", "hr_upper", "hr_p", "hr_reason",
           "logrank_chisq", "logrank_p", "logrank_reason", "km", "risk_table")])
}


#' Kaplan-Meier median survival time with its 95% CI (survfit's summary table).
median_survival <- function(y) {
  if (length(y) == 0) {
    return(data.frame(median = NA_real_, median_lower = NA_real_, median_upper = NA_real_))
  }
  table <- summary(survival::survfit(y ~ 1, conf.type = "log"))$table
  data.frame(median = unname(table["median"]), median_lower = unname(table["0.95LCL"]),
             median_upper = unname(table["0.95UCL"]))
}
