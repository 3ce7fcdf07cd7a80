# Between-group tests for the baseline characteristics table ("Table 1").
#
# Methods:
#   Pearson's chi-squared test of independence, without Yates' continuity correction
#     (Pearson K (1900). Phil Mag 50:157-175). Yates' correction is known to be
#     over-conservative (Haviland MG (1990). Stat Med 9:363-367) and the uncorrected
#     statistic is the "Pearson Chi-Square" most clinical papers report.
#   Fisher's exact test (Fisher RA (1922). J R Stat Soc 85:87-94) replaces it whenever an
#     expected cell count is below 5 (Cochran WG (1954). Biometrics 10:417-451).
#   Mann-Whitney U / Wilcoxon rank-sum test (Mann HB, Whitney DR (1947). Ann Math Stat
#     18:50-60) with the normal approximation, tie-corrected variance and continuity
#     correction (stats::wilcox.test(exact = FALSE, correct = TRUE)).
# Missing values are left out of the tests (they are shown as "Unknown" in the table).
#
# requires: cox.R
#   (require_columns is defined there; in an R session, source("cox.R") before this file.)


#' Compare two groups on categorical and continuous variables.
#'
#' @param df data.frame.
#' @param group name of the column holding the group of each row; exactly two distinct
#'   non-missing values. The first group is the first factor level (for a factor) or
#'   the first in sorted order.
#' @param categorical character vector of categorical column names.
#' @param continuous character vector of numeric column names.
#' @return data.frame(variable, type, test, statistic, p, message), one row per variable
#'   (categorical first, then continuous, in the order given); p = NA with the reason in
#'   `message` when the test cannot be done.
compare_groups <- function(df, group, categorical, continuous) {
  require_columns(df, c(group, categorical, continuous))
  g <- df[[group]]
  g <- if (is.factor(g)) droplevels(g) else factor(g)
  if (nlevels(g) != 2) {
    stop(sprintf("column '%s' must hold exactly two groups, found %d", group, nlevels(g)))
  }
  rows <- c(lapply(categorical, function(v) test_categorical(df[[v]], g, v)),
            lapply(continuous, function(v) test_continuous(df[[v]], g, v)))
  out <- do.call(rbind, c(list(empty_test_row()), rows))
  rownames(out) <- NULL
  out
}


#' Zero-row template of the result table (fixes the column types).
empty_test_row <- function() {
  data.frame(variable = character(0), type = character(0), test = character(0),
             statistic = numeric(0), p = numeric(0), message = character(0),
             stringsAsFactors = FALSE)
}


#' One row of the result table.
test_row <- function(variable, type, test, statistic, p, message = NA_character_) {
  data.frame(variable = variable, type = type, test = test, statistic = statistic, p = p,
             message = message, stringsAsFactors = FALSE)
}


#' Pearson chi-squared (no continuity correction), or Fisher's exact test when any
#' expected count is < 5. `statistic` is the chi-squared value (NA for Fisher).
test_categorical <- function(x, g, variable) {
  keep <- !is.na(x) & !is.na(g)
  tab <- table(as.character(x[keep]), droplevels(g[keep]))
  if (nrow(tab) < 2 || ncol(tab) < 2) {
    return(test_row(variable, "categorical", "none", NA_real_, NA_real_,
                    "fewer than two observed levels or groups"))
  }
  expected <- outer(rowSums(tab), colSums(tab)) / sum(tab)
  if (any(expected < 5)) {
    ft <- stats::fisher.test(tab, workspace = 2e7)
    return(test_row(variable, "categorical", "Fisher's exact test", NA_real_, ft$p.value))
  }
  ct <- stats::chisq.test(tab, correct = FALSE)
  test_row(variable, "categorical", "Pearson's chi-squared test", unname(ct$statistic),
           ct$p.value)
}


#' Mann-Whitney U test (normal approximation with continuity correction).
#' `statistic` is W = U of the first group.
test_continuous <- function(x, g, variable) {
  if (!is.numeric(x)) {
    return(test_row(variable, "continuous", "none", NA_real_, NA_real_,
                    "variable is not numeric"))
  }
  keep <- !is.na(x) & !is.na(g)
  x <- x[keep]
  g <- g[keep]
  first <- x[g == levels(g)[1]]
  second <- x[g == levels(g)[2]]
  if (length(first) == 0 || length(second) == 0) {
    return(test_row(variable, "continuous", "none", NA_real_, NA_real_,
                    "no observed values in one of the groups"))
  }
  wt <- stats::wilcox.test(first, second, exact = FALSE, correct = TRUE)
  test_row(variable, "continuous", "Mann-Whitney U test", unname(wt$statistic), wt$p.value)
}


# Time-to-event columns. A median (IQR) of the observed times mixes event and censoring
# times and estimates nothing; instead:
#   the Kaplan-Meier median with its 95% CI (Brookmeyer R, Crowley J (1982). Biometrics
#     38:29-41: the times where the pointwise CI of S(t) contains 0.5; survival::survfit,
#     conf.type "log" as elsewhere in this project, or "log-log"), and
#   the median follow-up by the reverse Kaplan-Meier method, the censorings taken as the
#     events (Schemper M, Smith TL (1996). Control Clin Trials 17:343-346).


#' Kaplan-Meier median and reverse Kaplan-Meier median follow-up of one group.
#'
#' @param df data.frame with the outcome columns (rows with a missing time or event must be
#'   removed by the caller).
#' @param time,event outcome column names (event 0 = censored, 1 = event).
#' @param conf_type survfit's conf.type for the intervals ("log" or "log-log").
#' @return data.frame(n, events, median, lower, upper, followup_median, followup_lower,
#'   followup_upper), one row; NA where a curve (or a confidence limit) does not reach 0.5.
survival_summary <- function(df, time, event, conf_type = "log") {
  y <- surv_outcome(df, time, event)
  if (nrow(df) == 0) {
    return(data.frame(n = 0, events = 0, median = NA_real_, lower = NA_real_, upper = NA_real_,
                      followup_median = NA_real_, followup_lower = NA_real_, followup_upper = NA_real_))
  }
  km <- km_median(y, conf_type)
  reverse <- km_median(survival::Surv(y[, "time"], 1 - y[, "status"]), conf_type)
  data.frame(n = nrow(df), events = sum(y[, "status"]), median = km[1], lower = km[2], upper = km[3],
             followup_median = reverse[1], followup_lower = reverse[2], followup_upper = reverse[3])
}


#' c(median, lower, upper) of a Kaplan-Meier fit (survfit's summary table).
km_median <- function(y, conf_type) {
  table <- summary(survival::survfit(y ~ 1, conf.type = conf_type))$table
  unname(table[c("median", "0.95LCL", "0.95UCL")])
}


#' Log-rank test of a time-to-event column between the two groups (survival::survdiff,
#' Mantel N (1966). Cancer Chemother Rep 50:163-170).
#' @return the test_row of compare_groups: statistic = chi-square (1 df), p.
test_survival <- function(df, time, event, group, variable) {
  y <- surv_outcome(df, time, event)
  g <- df[[group]]
  g <- if (is.factor(g)) droplevels(g) else factor(g)
  if (nlevels(g) != 2) {
    return(test_row(variable, "time_to_event", "none", NA_real_, NA_real_,
                    "fewer than two groups with observations"))
  }
  if (sum(y[, "status"]) == 0) {
    return(test_row(variable, "time_to_event", "none", NA_real_, NA_real_, "no event"))
  }
  test <- survival::survdiff(y ~ g)
  test_row(variable, "time_to_event", "Log-rank test", unname(test$chisq),
           stats::pchisq(test$chisq, df = 1, lower.tail = FALSE))
}
