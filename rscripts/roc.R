# ROC analysis of a score for a binary outcome: AUC with its DeLong confidence interval, the
# ROC curve, the Youden cut-off, the cut-off applied to another cohort, subgroup ROC
# analyses and the paired comparison of two AUCs.
#
# requires: cox.R
#   (require_columns and stop_on_rows are defined there; in an R session, source("cox.R")
#    before this file.)
#
# Methods:
#   Empirical ROC curve and AUC (= Mann-Whitney U / (n1 n0), ties counted 1/2):
#     Hanley JA, McNeil BJ (1982). The meaning and use of the area under a receiver
#       operating characteristic (ROC) curve. Radiology 143:29-36.
#   AUC variance, 95% CI and the paired test of two correlated AUCs:
#     DeLong ER, DeLong DM, Clarke-Pearson DL (1988). Comparing the areas under two or more
#       correlated receiver operating characteristic curves: a nonparametric approach.
#       Biometrics 44:837-845.
#   Youden index J = sensitivity + specificity - 1:
#     Youden WJ (1950). Index for rating diagnostic tests. Cancer 3:32-35.
#   Exact (Clopper-Pearson) 95% CI of sensitivity, specificity, PPV, NPV and accuracy:
#     Clopper CJ, Pearson ES (1934). The use of confidence or fiducial limits illustrated in
#       the case of the binomial. Biometrika 26:404-413 (stats::binom.test).
#   Engine: pROC (Robin X, Turck N, Hainard A, et al. (2011). pROC: an open-source package
#     for R and S+ to analyze and compare ROC curves. BMC Bioinformatics 12:77).
#
# Conventions used by every function here:
#   - `df` is a data.frame; `outcome` and score arguments are column names. A row is a
#     case (positive) when its outcome equals `positive_level`, a control otherwise; the
#     outcome may hold at most two distinct values. Rows with a missing outcome are left
#     out and counted (n_missing_outcome); a missing score stops with the row names.
#   - direction "<" (default): a higher score means positive, and a patient is called
#     positive when score >= threshold. direction ">": a lower score means positive, and
#     positive when score <= threshold. (pROC's convention: "controls < t <= cases".)
#   - The direction is always given, never pROC's "auto": "auto" picks the direction in
#     which the cases have the higher median *in the data at hand*, so on a test cohort a
#     score that predicts the wrong way would still get an AUC >= 0.5. Fixing it in advance
#     (no peeking at the test outcomes) lets such a score show its AUC < 0.5.
#   - Thresholds are pROC's: the midpoints between consecutive distinct scores, plus -Inf
#     and +Inf (pROC nudges a midpoint that rounds onto a score so that the >= rule above
#     still separates the two scores). A midpoint cut-off classifies the cohort it came from
#     identically under >= and >; on another cohort a score exactly equal to it is positive.

ROC_DIRECTIONS <- c("<", ">")


#' Outcome, score and case indicator of the rows with a known outcome, after checking them.
#'
#' @return list(case = logical, one per kept row; keep = logical over the rows of df (the
#'   outcome is known); n_missing_outcome).
roc_data <- function(df, outcome, scores, positive_level, direction) {
  require_columns(df, c(outcome, scores))
  if (length(direction) != 1 || !(direction %in% ROC_DIRECTIONS)) {
    stop(sprintf("direction must be \"<\" (higher score = positive) or \">\" (lower score = positive), not '%s'",
                 paste(direction, collapse = ", ")))
  }
  if (length(positive_level) != 1 || is.na(positive_level)) {
    stop("positive_level must be one non-missing value")
  }
  y <- df[[outcome]]
  if (is.factor(y)) y <- as.character(y)
  if (is.logical(y)) y <- as.integer(y)
  keep <- !is.na(y)
  values <- unique(y[keep])
  if (length(values) > 2) {
    stop(sprintf("column '%s': a binary outcome may hold two values, found %d (%s)", outcome,
                 length(values), paste(head(sort(values), 6), collapse = ", ")))
  }
  for (score in scores) {
    s <- df[[score]]
    if (!is.numeric(s)) stop(sprintf("column '%s': score must be numeric", score))
    stop_on_rows(df, keep & is.na(s), sprintf("column '%s': score is missing", score))
    stop_on_rows(df, keep & !is.na(s) & !is.finite(s),
                 sprintf("column '%s': score is not finite", score))
  }
  case <- as.character(y[keep]) == as.character(positive_level)
  list(case = case, keep = keep, n_missing_outcome = sum(!keep))
}


#' Stop unless there are at least two cases and two controls (needed for the DeLong CI).
require_cases_and_controls <- function(case, outcome, positive_level) {
  n1 <- sum(case)
  n0 <- sum(!case)
  if (n1 < 2 || n0 < 2) {
    stop(sprintf("column '%s': ROC analysis needs at least 2 positives (%s) and 2 negatives; found %d and %d",
                 outcome, as.character(positive_level), n1, n0))
  }
}


#' The empirical ROC curve of a score, built by pROC with a fixed direction.
fixed_direction_roc <- function(case, score, direction) {
  pROC::roc(response = as.integer(case), predictor = score, levels = c(0L, 1L),
            direction = direction, quiet = TRUE)
}


#' ROC analysis of one score: AUC with DeLong 95% CI, ROC curve and Youden cut-off.
#'
#' @param df data.frame with the outcome and the score.
#' @param outcome name of the binary outcome column.
#' @param score name of the numeric score column.
#' @param positive_level outcome value of the cases (default 1).
#' @param direction "<" (default): higher score = positive; ">": lower score = positive.
#'   Fixed, never estimated from the data (see the header).
#' @param conf_level confidence level of the AUC interval.
#' @return list(
#'   n, n_positive, n_negative, n_missing_outcome, positive_level, direction,
#'   rule                     "score >= cutoff" (direction "<") or "score <= cutoff",
#'   auc, auc_se              empirical AUC (Mann-Whitney) and its DeLong standard error,
#'   auc_lower, auc_upper     DeLong CI auc +/- z se, clipped to [0, 1] (pROC::ci.auc),
#'   ci_method                "DeLong",
#'   cutoff                   the threshold maximising Youden's J (pROC's
#'                            best.method = "youden", see youden_cutoff); on ties
#'                            (J within 1e-10 of the maximum) the lowest threshold for
#'                            direction "<" (the highest one for ">"), i.e. the most
#'                            sensitive of the tied cut-offs; NA when the maximal J is 0,
#'                            i.e. no threshold does better than calling everyone positive
#'                            or everyone negative (reason in cutoff_reason),
#'   sensitivity, specificity, youden_index   at the cut-off,
#'   youden_ties              number of thresholds sharing the maximal J,
#'   cutoff_reason            NA, or why cutoff is NA,
#'   curve = data.frame(threshold, fpr, tpr)  every pROC threshold, from (1, 1) at the
#'                            all-positive threshold to (0, 0); fpr = 1 - specificity,
#'                            tpr = sensitivity; thresholds -Inf and +Inf at the ends.
#' )
roc_analysis <- function(df, outcome, score, positive_level = 1, direction = "<",
                         conf_level = 0.95) {
  data <- roc_data(df, outcome, score, positive_level, direction)
  case <- data$case
  require_cases_and_controls(case, outcome, positive_level)
  s <- df[[score]][data$keep]
  curve <- fixed_direction_roc(case, s, direction)
  c(list(n = length(case), n_positive = sum(case), n_negative = sum(!case),
         n_missing_outcome = data$n_missing_outcome, positive_level = positive_level,
         direction = direction, rule = positive_rule(direction)),
    roc_summary(curve, conf_level))
}


#' "score >= cutoff" or "score <= cutoff": who is called positive for a direction.
positive_rule <- function(direction) {
  if (direction == "<") "score >= cutoff" else "score <= cutoff"
}


#' AUC with DeLong CI, Youden cut-off and curve points of a pROC roc object.
roc_summary <- function(curve, conf_level = 0.95) {
  auc <- as.numeric(pROC::auc(curve))
  ci <- as.numeric(pROC::ci.auc(curve, conf.level = conf_level, method = "delong"))
  points <- pROC::coords(curve, x = "all", input = "threshold",
                         ret = c("threshold", "specificity", "sensitivity"),
                         transpose = FALSE)
  c(list(auc = auc, auc_se = sqrt(pROC::var(curve, method = "delong")),
         auc_lower = ci[1], auc_upper = ci[3], ci_method = "DeLong"),
    youden_cutoff(curve),
    list(curve = data.frame(threshold = points$threshold,
                            fpr = 1 - points$specificity,
                            tpr = points$sensitivity)))
}


#' The Youden cut-off of a pROC roc object (see roc_analysis for the tie rule).
#'
#' The criterion is pROC's best.method = "youden" (default best.weights, i.e. plain
#' J = sensitivity + specificity - 1) over pROC's thresholds (pROC::coords); unlike
#' coords(x = "best"), which keeps only the J values exactly equal to the maximum, J values
#' within YOUDEN_TIE_TOLERANCE of it count as ties, so that rounding in se + sp cannot
#' decide between cut-offs that are tied in exact arithmetic.
youden_cutoff <- function(curve) {
  points <- pROC::coords(curve, x = "all", input = "threshold",
                         ret = c("threshold", "specificity", "sensitivity"),
                         transpose = FALSE)
  j <- points$sensitivity + points$specificity - 1
  best <- points[j >= max(j) - YOUDEN_TIE_TOLERANCE & is.finite(points$threshold), ,
                 drop = FALSE]
  ties <- nrow(best)
  if (max(j) <= YOUDEN_TIE_TOLERANCE) {
    # the infinite thresholds (everyone positive / everyone negative) always give J = 0
    return(list(cutoff = NA_real_, sensitivity = NA_real_, specificity = NA_real_,
                youden_index = 0, youden_ties = 0L,
                cutoff_reason = "no finite threshold beats calling everyone positive or everyone negative (maximal Youden J = 0)"))
  }
  # the most sensitive of the tied cut-offs: lowest threshold for "<", highest for ">"
  pick <- if (curve$direction == "<") which.min(best$threshold) else which.max(best$threshold)
  row <- best[pick, ]
  list(cutoff = row$threshold, sensitivity = row$sensitivity,
       specificity = row$specificity,
       youden_index = row$sensitivity + row$specificity - 1,
       youden_ties = ties, cutoff_reason = NA_character_)
}

YOUDEN_TIE_TOLERANCE <- 1e-10


#' A fixed cut-off (e.g. the training cohort's Youden cut-off) applied to a cohort.
#'
#' @param df data.frame with the outcome and the score.
#' @param outcome,score column names (as in roc_analysis).
#' @param cutoff threshold on the score scale.
#' @param positive_level outcome value of the cases (default 1).
#' @param direction "<": called positive when score >= cutoff; ">": when score <= cutoff.
#' @param conf_level confidence level of the exact binomial intervals.
#' @return list(cutoff, direction, rule, n, n_missing_outcome, tp, fp, tn, fn,
#'   metrics = data.frame(metric, estimate, numerator, denominator, lower, upper)) with
#'   metric in sensitivity = tp/(tp+fn), specificity = tn/(tn+fp), ppv = tp/(tp+fp),
#'   npv = tn/(tn+fn), accuracy = (tp+tn)/n; Clopper-Pearson CI; estimate, lower and upper
#'   NA where the denominator is 0.
apply_cutoff <- function(df, outcome, score, cutoff, positive_level = 1, direction = "<",
                         conf_level = 0.95) {
  data <- roc_data(df, outcome, score, positive_level, direction)
  if (length(cutoff) != 1 || !is.numeric(cutoff) || !is.finite(cutoff)) {
    stop("cutoff must be one finite number")
  }
  case <- data$case
  s <- df[[score]][data$keep]
  called <- if (direction == "<") s >= cutoff else s <= cutoff
  tp <- sum(called & case)
  fp <- sum(called & !case)
  tn <- sum(!called & !case)
  fn <- sum(!called & case)
  counts <- rbind(sensitivity = c(tp, tp + fn), specificity = c(tn, tn + fp),
                  ppv = c(tp, tp + fp), npv = c(tn, tn + fn),
                  accuracy = c(tp + tn, length(case)))
  metrics <- do.call(rbind, lapply(rownames(counts), function(metric) {
    proportion_row(metric, counts[metric, 1], counts[metric, 2], conf_level)
  }))
  rownames(metrics) <- NULL
  list(cutoff = cutoff, direction = direction, rule = positive_rule(direction),
       n = length(case), n_missing_outcome = data$n_missing_outcome,
       tp = tp, fp = fp, tn = tn, fn = fn, metrics = metrics)
}


#' One proportion with its exact (Clopper-Pearson) CI; NA when the denominator is 0.
proportion_row <- function(metric, x, n, conf_level) {
  if (n == 0) {
    return(data.frame(metric = metric, estimate = NA_real_, numerator = x, denominator = n,
                      lower = NA_real_, upper = NA_real_, stringsAsFactors = FALSE))
  }
  ci <- stats::binom.test(x, n, conf.level = conf_level)$conf.int
  data.frame(metric = metric, estimate = x / n, numerator = x, denominator = n,
             lower = ci[1], upper = ci[2], stringsAsFactors = FALSE)
}


#' ROC analysis within each level of a subgroup column (e.g. histologic type, binned
#' slice thickness or voxel spacing).
#'
#' @param df data.frame with the outcome, the score and the subgroup column.
#' @param outcome,score,positive_level,direction as in roc_analysis.
#' @param subgroup name of the subgroup column; each distinct non-missing value is a level
#'   (bin a continuous variable first). Rows with a missing subgroup are left out and
#'   counted.
#' @return list(
#'   table = data.frame(subgroup, n, n_positive, n_negative, auc, auc_se, auc_lower,
#'                      auc_upper, cutoff, sensitivity, specificity, youden_index,
#'                      reason)  one row per level (sorted; subgroup as text); a level
#'                      with fewer than 2 positives or 2 negatives has NA statistics and
#'                      the reason; reason also carries a Youden cut-off's NA reason,
#'   curves = data.frame(subgroup, threshold, fpr, tpr)  the ROC curve of each level,
#'   n_missing_outcome, n_missing_subgroup
#' )
roc_subgroups <- function(df, outcome, score, subgroup, positive_level = 1,
                          direction = "<", conf_level = 0.95) {
  require_columns(df, subgroup)
  data <- roc_data(df, outcome, score, positive_level, direction)
  g <- df[[subgroup]][data$keep]
  has_group <- !is.na(g)
  case <- data$case[has_group]
  s <- df[[score]][data$keep][has_group]
  g <- g[has_group]
  levels <- if (is.factor(g)) levels(droplevels(g)) else as.character(sort(unique(g)))
  g <- as.character(g)
  rows <- list()
  curves <- list(data.frame(subgroup = character(0), threshold = numeric(0),
                            fpr = numeric(0), tpr = numeric(0), stringsAsFactors = FALSE))
  for (level in levels) {
    inside <- g == level
    n1 <- sum(case[inside])
    n0 <- sum(!case[inside])
    row <- data.frame(subgroup = level, n = sum(inside), n_positive = n1, n_negative = n0,
                      auc = NA_real_, auc_se = NA_real_, auc_lower = NA_real_,
                      auc_upper = NA_real_, cutoff = NA_real_, sensitivity = NA_real_,
                      specificity = NA_real_, youden_index = NA_real_,
                      reason = NA_character_, stringsAsFactors = FALSE)
    if (n1 < 2 || n0 < 2) {
      row$reason <- sprintf("fewer than 2 positives or 2 negatives (%d positive, %d negative): AUC not estimated",
                            n1, n0)
    } else {
      result <- roc_summary(fixed_direction_roc(case[inside], s[inside], direction),
                            conf_level)
      for (name in c("auc", "auc_se", "auc_lower", "auc_upper", "cutoff", "sensitivity",
                     "specificity", "youden_index")) {
        row[[name]] <- result[[name]]
      }
      row$reason <- result$cutoff_reason
      curves[[length(curves) + 1]] <- data.frame(subgroup = level, result$curve,
                                                 stringsAsFactors = FALSE)
    }
    rows[[length(rows) + 1]] <- row
  }
  table <- if (length(rows) > 0) do.call(rbind, rows) else NULL
  curve_table <- do.call(rbind, curves)
  rownames(curve_table) <- NULL
  list(table = table, curves = curve_table, n_missing_outcome = data$n_missing_outcome,
       n_missing_subgroup = sum(!has_group))
}


#' Paired DeLong test of two scores' AUCs on the same patients.
#'
#' @param df data.frame with the outcome and both scores (no missing score on a row with
#'   a known outcome).
#' @param outcome,positive_level,direction as in roc_analysis (one direction for both).
#' @param score_a,score_b the two score columns.
#' @param conf_level confidence level of the interval of auc_a - auc_b.
#' @return list(n, n_positive, n_negative, n_missing_outcome, auc_a, auc_b, difference,
#'   difference_lower, difference_upper, z, p, method): z = (auc_a - auc_b) / sqrt(var_a +
#'   var_b - 2 cov_ab) with DeLong's variances and covariance (pROC::roc.test(method =
#'   "delong", paired = TRUE)), p two-sided.
compare_auc <- function(df, outcome, score_a, score_b, positive_level = 1, direction = "<",
                        conf_level = 0.95) {
  data <- roc_data(df, outcome, c(score_a, score_b), positive_level, direction)
  case <- data$case
  require_cases_and_controls(case, outcome, positive_level)
  roc_a <- fixed_direction_roc(case, df[[score_a]][data$keep], direction)
  roc_b <- fixed_direction_roc(case, df[[score_b]][data$keep], direction)
  test <- pROC::roc.test(roc_a, roc_b, method = "delong", paired = TRUE,
                         conf.level = conf_level)
  aucs <- unname(test$estimate)
  list(n = length(case), n_positive = sum(case), n_negative = sum(!case),
       n_missing_outcome = data$n_missing_outcome,
       auc_a = aucs[1], auc_b = aucs[2], difference = aucs[1] - aucs[2],
       difference_lower = unname(test$conf.int[1]),
       difference_upper = unname(test$conf.int[2]),
       z = unname(test$statistic), p = unname(test$p.value),
       method = "DeLong paired")
}
