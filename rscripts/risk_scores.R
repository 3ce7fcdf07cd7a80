# Survival statistics of deep-learning risk scores (seed 000: He et al. (2022), Transl Lung
# Cancer Res 11:670-685): backward Cox selection over a network's risk vector (OSRS, PFSRS),
# Cox fusion of two scores (MOSRS) with each score's share, the X-tile cut-off, the
# comparison of two C-indices with mis-ordered pair counts, univariate and multivariable Cox
# tables, the nomogram as drawable numbers, and subgroup hazard ratios.
#
# requires: cox.R, evaluation.R, cutpoint.R
#   (surv_outcome, require_columns, stop_on_rows, backquote, fit_cox, cox_linear_predictor
#    from cox.R; evaluate_risk_score from evaluation.R; maxstat_cutpoint from cutpoint.R.)
#
# Methods:
#   Cox model, Wald tests and intervals: Cox DR (1972). J R Stat Soc B 34:187-220; Efron
#     ties (Efron B (1977). J Am Stat Assoc 72:557-565); survival::coxph via fit_cox.
#   Backward elimination by Wald p-value: Hosmer DW, Lemeshow S, May S (2008). Applied
#     Survival Analysis, 2nd ed., Wiley, Section 5.3.
#   X-tile: Camp RL, Dolled-Filhart M, Rimm DL (2004). X-tile: a new bio-informatics tool for
#     biomarker assessment and outcome-based cut-point optimization. Clin Cancer Res
#     10:7252-7259. Log-rank test: Mantel N (1966). Cancer Chemother Rep 50:163-170
#     (survival::survdiff). Correction for the search over cut-offs: Lausen B, Sauerbrei W,
#     Schumacher M (1994), in Computational Statistics, Physica, 483-496 ("Lau94", maxstat).
#   Harrell's C and the variance of a difference of C-indices: Harrell FE, Lee KL, Mark DB
#     (1996). Stat Med 15:361-387; Therneau T, Atkinson E (2023). The concordance statistic.
#     survival package vignette (infinitesimal-jackknife variance, joint over predictors).
#   Nomogram: Harrell FE (2015). Regression Modeling Strategies, 2nd ed., Springer,
#     Section 10.9 and 20.1; rms::cph, rms::nomogram, rms::Survival, rms::survest.
#
# Conventions: `df` is a data.frame whose row names identify the patients (quoted in error
# messages); `time`, `event` are column names (event 0 = censored, 1 = event). A higher
# score means a higher risk everywhere.


#' Stop unless each named column is numeric, has no missing value and is not constant.
require_numeric_scores <- function(df, columns, why) {
  require_columns(df, columns)
  for (column in columns) {
    x <- df[[column]]
    if (!is.numeric(x)) stop(sprintf("column '%s': score must be numeric", column))
    stop_on_rows(df, is.na(x), sprintf("column '%s': score is missing (%s)", column, why))
    if (length(unique(x)) < 2) stop(sprintf("column '%s': score is constant", column))
  }
}


# ------------------------------------------------------------------ 1. backward selection

#' Backward elimination of risk-vector scores in a Cox model, by Wald p-value.
#'
#' Starts from the Cox model with all candidates (Efron ties, fit_cox) and repeatedly
#' refits after dropping the term with the largest Wald p-value while that p-value exceeds
#' `p_threshold` (a term whose coefficient is not estimable, NA, is dropped first). At
#' least one term is always kept: when the last remaining term still has p > p_threshold it
#' is kept anyway (it had the smaller p in the last two-term model) and `note` says so.
#' All candidates must be complete (the models compared are fitted on the same rows).
#' Seed 000: "OS risk vector ... for backward selection via the Cox regression model. In
#' the end, only OS score 3 was retained and formed into OSRS".
#'
#' @param df data.frame; @param time,event outcome columns.
#' @param candidates character vector of score columns (e.g. os_score_1..3).
#' @param p_threshold a term is dropped while its p-value is > p_threshold.
#' @return list(
#'   kept                 character, the kept terms (candidate order),
#'   coefficients         data.frame(term, coef, se, hr, hr_lower, hr_upper, z, p) of the
#'                        final model (95% Wald limits),
#'   steps                data.frame(step, dropped, p, n_terms): the term dropped at each
#'                        step, its p-value in the model it was dropped from, and that
#'                        model's number of terms (zero rows when nothing was dropped),
#'   lp_coefficients      named numeric: the combined score of any cohort is
#'                        sum_k coef_k * score_k (uncentred; cox_linear_predictor in cox.R),
#'   score                the combined score of each row of `df`,
#'   note                 NA, or why a term with p > p_threshold was kept,
#'   concordance, n, n_events, p_threshold).
backward_cox_selection <- function(df, time, event, candidates, p_threshold = 0.05) {
  candidates <- unique(as.character(unlist(candidates)))
  if (length(candidates) == 0) stop("backward selection needs at least one candidate score")
  surv_outcome(df, time, event)
  require_numeric_scores(df, candidates, "backward selection compares models on the same rows")
  terms <- candidates
  steps <- data.frame(step = integer(0), dropped = character(0), p = numeric(0),
                      n_terms = integer(0), stringsAsFactors = FALSE)
  repeat {
    fit <- fit_cox(df, time, event, terms)
    table <- fit$coefficients
    p <- ifelse(is.na(table$coef), Inf, table$p)
    worst <- which.max(p)
    if (length(terms) == 1 || p[worst] <= p_threshold) break
    steps <- rbind(steps, data.frame(step = nrow(steps) + 1L, dropped = table$term[worst],
                                     p = table$p[worst], n_terms = length(terms),
                                     stringsAsFactors = FALSE))
    terms <- setdiff(terms, table$term[worst])
  }
  if (anyNA(table$coef)) {
    stop(sprintf("column '%s': Cox coefficient not estimable", table$term[is.na(table$coef)][1]))
  }
  note <- NA_character_
  if (table$p[1] > p_threshold && length(terms) == 1) {
    note <- if (length(candidates) == 1) {
      sprintf("only one candidate ('%s'); kept although p = %.3g > %g", terms, table$p[1],
              p_threshold)
    } else {
      sprintf(paste("no candidate reached p <= %g; kept '%s' (the smaller p in the last",
                    "two-term model), p = %.3g in its own model"), p_threshold, terms,
              table$p[1])
    }
  }
  lp_coefficients <- stats::setNames(table$coef, table$term)
  list(kept = table$term, coefficients = table, steps = steps,
       lp_coefficients = lp_coefficients,
       score = cox_linear_predictor(lp_coefficients, df),
       note = note, concordance = fit$concordance, n = fit$n, n_events = fit$n_events,
       p_threshold = p_threshold)
}


# ------------------------------------------------------------------ 2. Cox fusion

#' Cox fusion of scores (seed 000: MOSRS = Cox model of OS on OSRS and PFSRS).
#'
#' Fits Surv(time, event) ~ score_1 + ... + score_K (Efron ties) on the rows given (the
#' training cohort); the fused score is the uncentred linear predictor sum_k coef_k score_k.
#' The share of score k in the fused score (seed Figure 3: "the proportion of PFSRS in
#' MOSRS") is defined as
#'     share_k = |coef_k| SD(score_k) / sum_j |coef_j| SD(score_j),
#' the part of the fused score's spread carried by score k when the scores are put on a
#' common (1 SD) scale; SD is the sample standard deviation over these rows (the
#' denominator n - 1 cancels in the ratio). Fitting the same function to the PFS outcome
#' gives the seed's check of OSRS in a PFS model (the p-value of OSRS in `coefficients`).
#'
#' @param df data.frame; @param time,event outcome columns.
#' @param scores character vector of (complete, numeric) score columns.
#' @return list(coefficients = data.frame(term, coef, se, hr, hr_lower, hr_upper, z, p),
#'   fused_coefficients (named numeric), shares = data.frame(term, coef, sd, contribution,
#'   share), score (fused score of each row), concordance (apparent), n, n_events).
fuse_scores <- function(df, time, event, scores) {
  scores <- unique(as.character(unlist(scores)))
  if (length(scores) == 0) stop("fusion needs at least one score")
  surv_outcome(df, time, event)
  require_numeric_scores(df, scores, "the fused model needs every score")
  fit <- fit_cox(df, time, event, scores)
  table <- fit$coefficients
  if (anyNA(table$coef)) {
    stop(sprintf("column '%s': Cox coefficient not estimable (collinear scores?)",
                 table$term[is.na(table$coef)][1]))
  }
  coefs <- stats::setNames(table$coef, table$term)
  sds <- vapply(table$term, function(s) stats::sd(df[[s]]), numeric(1))
  contribution <- abs(table$coef) * unname(sds)
  shares <- data.frame(term = table$term, coef = table$coef, sd = unname(sds),
                       contribution = contribution,
                       share = contribution / sum(contribution), stringsAsFactors = FALSE)
  list(coefficients = table, fused_coefficients = coefs, shares = shares,
       score = cox_linear_predictor(coefs, df), concordance = fit$concordance,
       n = fit$n, n_events = fit$n_events)
}


# ------------------------------------------------------------------ 3. X-tile cut-off

#' X-tile-style optimal cut-off: the split maximising the log-rank chi-square.
#'
#' Every distinct marker value c with at least ceiling(min_prop * n) patients in each group
#' (low: marker <= c, high: marker > c) is a candidate; the log-rank chi-square (survdiff,
#' 1 df) of each split is computed and the largest wins (on ties, the smallest cut-off).
#' The cut-off is the largest marker value of the low group, as in cutpoint.R.
#'
#' The naive p-value of the winning chi-square is optimistic: it ignores that the best of
#' `n_cutoffs` splits was chosen. X-tile (Camp et al. 2004) corrects it by a Monte-Carlo
#' p-value or a training/validation split; here the corrected p-value is instead maxstat's
#' Lau94 approximation (Lausen, Sauerbrei & Schumacher 1994) for the maximally selected
#' standardised log-rank statistic over the cut-offs between the min_prop and 1 - min_prop
#' quantiles (maxstat_cutpoint, cutpoint.R). That statistic uses the permutation variance
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


# ------------------------------------------------------------------ 4. two C-indices

#' Harrell's C of two scores on the same patients and the test of their difference.
#'
#' Each C is survival::concordancefit(y, score, reverse = TRUE) (a higher score predicts an
#' earlier event; Harrell's weighting, timewt = "n"; tied times made exact by aeqSurv). With
#' influence = 1 it returns each patient's infinitesimal-jackknife influence on C; the joint
#' variance matrix of (C_a, C_b) is crossprod of the two influence vectors, which is what
#' survival::concordance(fit_a, fit_b) reports (Therneau & Atkinson, concordance vignette),
#' so var(C_a - C_b) = V_aa + V_bb - 2 V_ab and z = (C_a - C_b) / se_diff, two-sided p.
#'
#' Comparable pair: patient i has an event at t_i and patient j was still followed after
#' t_i (t_j > t_i, or t_j = t_i and j censored); pairs of events at the same time are not
#' comparable. The pair is mis-ordered when score_i < score_j and counts 1/2 when
#' score_i = score_j, so misordered = discordant + tied.x / 2 and
#' C = 1 - misordered / comparable_pairs. A patient's mis-ordered count (seed Figure 3C,
#' "the number of patient sorting errors") is the number of mis-ordered comparable pairs
#' that involve them, as the earlier or the later member (computed in O(n x events)).
#'
#' @param df data.frame; @param time,event outcome columns.
#' @param score_a,score_b numeric, complete score columns.
#' @return list(c_a, c_b, se_a, se_b, cov_ab, diff (c_a - c_b), se_diff, z, p,
#'   test_reason (NA, or why z/p are NA), comparable_pairs, misordered_a, misordered_b,
#'   counts = data.frame(score, concordant, discordant, tied_x, tied_y, tied_xy),
#'   per_patient = data.frame(row, misordered_a, misordered_b, comparable), n, n_events).
compare_concordance <- function(df, time, event, score_a, score_b) {
  y <- surv_outcome(df, time, event)
  require_numeric_scores(df, unique(c(score_a, score_b)), "C-indices are compared on the same patients")
  a <- df[[score_a]]
  b <- df[[score_b]]
  fa <- survival::concordancefit(y, a, reverse = TRUE, influence = 1)
  fb <- survival::concordancefit(y, b, reverse = TRUE, influence = 1)
  v <- crossprod(cbind(fa$dfbeta, fb$dfbeta))
  diff <- unname(fa$concordance - fb$concordance)
  var_diff <- v[1, 1] + v[2, 2] - 2 * v[1, 2]
  se_diff <- sqrt(max(var_diff, 0))
  reason <- NA_character_
  z <- p <- NA_real_
  if (se_diff > 1e-12) {
    z <- diff / se_diff
    p <- 2 * stats::pnorm(-abs(z))
  } else {
    reason <- "the two scores order every comparable pair alike: the difference has no variance"
  }
  counts <- as.data.frame(rbind(fa$count, fb$count))
  names(counts) <- c("concordant", "discordant", "tied_x", "tied_y", "tied_xy")
  counts <- cbind(score = c(score_a, score_b), counts, stringsAsFactors = FALSE)
  per <- misordered_per_patient(y, list(a, b))
  list(c_a = unname(fa$concordance), c_b = unname(fb$concordance),
       se_a = sqrt(v[1, 1]), se_b = sqrt(v[2, 2]), cov_ab = v[1, 2],
       diff = diff, se_diff = se_diff, z = z, p = p, test_reason = reason,
       comparable_pairs = unname(fa$count["concordant"] + fa$count["discordant"] +
                                   fa$count["tied.x"]),
       misordered_a = unname(fa$count["discordant"] + fa$count["tied.x"] / 2),
       misordered_b = unname(fb$count["discordant"] + fb$count["tied.x"] / 2),
       counts = counts,
       per_patient = data.frame(row = rownames(df), misordered_a = per$misordered[, 1],
                                misordered_b = per$misordered[, 2],
                                comparable = per$comparable, stringsAsFactors = FALSE),
       n = nrow(df), n_events = sum(y[, "status"]))
}


#' Per-patient counts of comparable pairs and of mis-ordered ones (ties in score = 1/2).
#'
#' @param y survival::Surv object; @param scores list of numeric vectors (same length).
#' @return list(misordered = matrix (patients x scores), comparable = numeric).
misordered_per_patient <- function(y, scores) {
  y <- survival::aeqSurv(y)
  t <- y[, "time"]
  d <- y[, "status"]
  n <- length(t)
  misordered <- matrix(0, n, length(scores))
  comparable <- numeric(n)
  for (i in which(d == 1)) {
    later <- which(t > t[i] | (t == t[i] & d == 0))
    if (length(later) == 0) next
    comparable[i] <- comparable[i] + length(later)
    comparable[later] <- comparable[later] + 1
    for (k in seq_along(scores)) {
      s <- scores[[k]]
      wrong <- (s[i] < s[later]) + 0.5 * (s[i] == s[later])
      misordered[i, k] <- misordered[i, k] + sum(wrong)
      misordered[later, k] <- misordered[later, k] + wrong
    }
  }
  list(misordered = misordered, comparable = comparable)
}


# ------------------------------------------------------------------ 5. Cox table

#' Design columns of one covariate: itself when numeric, one 0/1 column per non-reference
#' level when categorical (`levels` given, first = reference).
#'
#' @return list(columns = data.frame (names "covariate" or "covariate=level"),
#'   rows = data.frame(covariate, level, reference, n_level, column)).
covariate_design <- function(df, covariate, levels) {
  x <- df[[covariate]]
  if (is.null(levels)) {
    if (!is.numeric(x)) {
      stop(sprintf("column '%s': not numeric; give its levels (first = reference) to use it as categorical",
                   covariate))
    }
    columns <- data.frame(x)
    names(columns) <- covariate
    return(list(columns = columns,
                rows = data.frame(covariate = covariate, level = NA_character_,
                                  reference = NA_character_, n_level = NA_real_,
                                  column = covariate, stringsAsFactors = FALSE)))
  }
  levels <- as.character(unlist(levels))
  if (length(levels) < 2 || anyDuplicated(levels)) {
    stop(sprintf("column '%s': give at least two distinct levels (first = reference)", covariate))
  }
  value <- as.character(x)
  stop_on_rows(df, !is.na(value) & !(value %in% levels),
               sprintf("column '%s': value not among the levels %s", covariate,
                       paste(levels, collapse = ", ")))
  if (!any(value == levels[1], na.rm = TRUE)) {
    stop(sprintf("column '%s': no patient at the reference level '%s'", covariate, levels[1]))
  }
  others <- levels[-1]
  columns <- as.data.frame(lapply(others, function(l) ifelse(is.na(value), NA, as.numeric(value == l))))
  names(columns) <- paste0(covariate, "=", others)
  n_level <- vapply(others, function(l) sum(value == l, na.rm = TRUE), numeric(1))
  list(columns = columns,
       rows = data.frame(covariate = covariate, level = others, reference = levels[1],
                         n_level = unname(n_level), column = names(columns),
                         stringsAsFactors = FALSE))
}


#' Fit a Cox model on design columns (fit_cox); NULL and the message when it fails or when
#' no column is left. Empty level columns (no patient) are left out.
fit_design <- function(frame, columns) {
  columns <- columns[vapply(columns, function(c) any(frame[[c]] != 0, na.rm = TRUE), logical(1))]
  if (length(columns) == 0) return(list(fit = NULL, message = "no patient at any non-reference level"))
  fit <- tryCatch(fit_cox(frame, ".time", ".event", columns), error = function(e) e)
  if (inherits(fit, "error")) return(list(fit = NULL, message = conditionMessage(fit)))
  list(fit = fit, message = NA_character_)
}


#' Univariate Cox models of each covariate and a multivariable model of those that pass.
#'
#' Numeric covariates enter as they are (per-unit hazard ratio); a covariate named in
#' `categorical_levels` enters as one indicator per non-reference level (the first level is
#' the reference). Each univariate model uses the rows where that covariate is known. A
#' covariate enters the multivariable model when its univariate p < p_enter, where p is the
#' Wald p-value for a one-row covariate and the likelihood-ratio test over all its levels
#' for a categorical covariate with more than two levels; covariates in `force` always
#' enter (e.g. the risk score). The multivariable model uses complete cases over the
#' entered covariates (n reported). Levels without patients get an NA row with a message.
#' Seed 000: "univariate analysis of clinical characteristics and multivariate analysis
#' combined with MOSRS".
#'
#' @param df data.frame; @param time,event outcome columns.
#' @param covariates character vector of covariate columns.
#' @param categorical_levels named list: column -> its levels, reference first (may be NULL).
#' @param p_enter entry threshold for the multivariable model.
#' @param force covariates entered regardless of their univariate p.
#' @return list(univariate = data.frame(covariate, level, reference, n_level, n, n_events,
#'   coef, se, hr, hr_lower, hr_upper, p, p_overall, p_overall_test, entered, message),
#'   multivariable = data.frame(covariate, level, reference, coef, se, hr, hr_lower,
#'   hr_upper, p, message), entered (character), n, n_events, n_excluded (rows left out
#'   for a missing value), p_enter, note).
cox_table <- function(df, time, event, covariates, categorical_levels = NULL, p_enter = 0.05,
                      force = NULL) {
  covariates <- unique(as.character(unlist(covariates)))
  force <- unique(as.character(unlist(force)))
  if (length(covariates) == 0) stop("the Cox table needs at least one covariate")
  y <- surv_outcome(df, time, event)
  require_columns(df, covariates)
  if (length(setdiff(force, covariates)) > 0) {
    stop(sprintf("forced covariate(s) not among the covariates: %s",
                 paste0("'", setdiff(force, covariates), "'", collapse = ", ")))
  }
  designs <- lapply(covariates, function(cov) {
    levels <- if (cov %in% names(categorical_levels)) categorical_levels[[cov]] else NULL
    covariate_design(df, cov, levels)
  })
  names(designs) <- covariates
  frame <- do.call(cbind, c(list(data.frame(.time = y[, "time"], .event = y[, "status"])),
                            lapply(designs, `[[`, "columns")))
  names(frame) <- c(".time", ".event", unlist(lapply(designs, function(d) names(d$columns)),
                                               use.names = FALSE))
  univariate <- do.call(rbind, lapply(designs, function(d) univariate_rows(frame, d$rows)))
  rownames(univariate) <- NULL
  p_cov <- tapply(univariate$p_overall, univariate$covariate, function(p) p[1])
  entered <- covariates[covariates %in% force |
                          (!is.na(p_cov[covariates]) & p_cov[covariates] < p_enter)]
  univariate$entered <- univariate$covariate %in% entered
  multi <- data.frame(covariate = character(0), level = character(0),
                      reference = character(0), coef = numeric(0), se = numeric(0),
                      hr = numeric(0), hr_lower = numeric(0), hr_upper = numeric(0),
                      p = numeric(0), message = character(0), stringsAsFactors = FALSE)
  n <- n_events <- NA_real_
  note <- NA_character_
  if (length(entered) == 0) {
    note <- sprintf("no covariate had a univariate p < %g: no multivariable model", p_enter)
  } else {
    rows <- do.call(rbind, lapply(designs[entered], `[[`, "rows"))
    complete <- stats::complete.cases(frame[rows$column])
    sub <- frame[complete, , drop = FALSE]
    fitted <- fit_design(sub, rows$column)
    if (is.null(fitted$fit)) {
      note <- sprintf("multivariable model failed: %s", fitted$message)
    } else {
      multi <- design_rows(rows, fitted$fit$coefficients)
      n <- fitted$fit$n
      n_events <- fitted$fit$n_events
    }
  }
  list(univariate = univariate, multivariable = multi, entered = entered, n = n,
       n_events = n_events, n_excluded = if (is.na(n)) NA_real_ else nrow(df) - n,
       p_enter = p_enter, note = note)
}


#' Rows of a coefficient table per design row (covariate, level, reference), NA with a
#' message where the coefficient is missing or not estimable.
design_rows <- function(rows, coefficients) {
  at <- match(rows$column, coefficients$term)
  pick <- function(name) if (is.null(coefficients)) rep(NA_real_, nrow(rows)) else coefficients[[name]][at]
  out <- data.frame(covariate = rows$covariate, level = rows$level, reference = rows$reference,
                    coef = pick("coef"), se = pick("se"), hr = pick("hr"),
                    hr_lower = pick("hr_lower"), hr_upper = pick("hr_upper"), p = pick("p"),
                    stringsAsFactors = FALSE)
  out$message <- ifelse(is.na(out$coef),
                        ifelse(!is.na(rows$n_level) & rows$n_level == 0,
                               "no patient at this level", "coefficient not estimable"),
                        NA_character_)
  out
}


#' Univariate Cox rows of one covariate (all its design columns in one model).
univariate_rows <- function(frame, rows) {
  fitted <- fit_design(frame, rows$column)
  fit <- fitted$fit
  out <- design_rows(rows, if (is.null(fit)) NULL else fit$coefficients)
  out <- cbind(out[1:3], n_level = rows$n_level,
               n = if (is.null(fit)) NA_real_ else fit$n,
               n_events = if (is.null(fit)) NA_real_ else fit$n_events, out[-(1:3)])
  if (is.null(fit)) {
    out$message <- fitted$message
    out$p_overall <- NA_real_
    out$p_overall_test <- NA_character_
  } else if (sum(!is.na(out$coef)) <= 1) {
    out$p_overall <- out$p[!is.na(out$coef)][1]
    out$p_overall_test <- "Wald"
  } else {
    k <- sum(!is.na(out$coef))
    out$p_overall <- stats::pchisq(2 * (fit$loglik - fit$loglik_null), df = k,
                                   lower.tail = FALSE)
    out$p_overall_test <- sprintf("likelihood ratio (%d df)", k)
  }
  out$entered <- FALSE
  out[c("covariate", "level", "reference", "n_level", "n", "n_events", "coef", "se", "hr",
        "hr_lower", "hr_upper", "p", "p_overall", "p_overall_test", "entered", "message")]
}


# ------------------------------------------------------------------ 6. nomogram

#' A Cox nomogram for survival at given times, as the numbers needed to draw it.
#'
#' Fits rms::cph(Surv(time, event) ~ covariates, x = TRUE, y = TRUE, surv = TRUE) (Efron
#' ties) on the complete cases and builds rms::nomogram with one survival-probability axis
#' per time (rms::Survival). rms finds the predictor ranges through
#' options(datadist = ...); the datadist object (computed from these rows, q.display =
#' c(0, 1)) is put in the option itself, not in a global variable, only while this function
#' runs, and the previous option is restored on exit, so nothing is left behind in the
#' global environment or options. Each numeric axis is given explicitly (numeric_axis) so
#' that it spans every patient's value. Covariates are renamed to syntactic names inside
#' (make.names) and reported under their own names.
#'
#' Points: predictor j at value x gets sc * (beta_j x - min over its axis of beta_j x), sc
#' chosen so that the widest predictor spans 0..100; total points = sum of the predictors'
#' points = sc * (lp - intercept), lp being rms's centred linear predictor
#' (predict(fit, type = "lp")). So lp = total_points / sc + intercept, and the survival
#' probability at t for given total points is Survival(fit)(t, lp).
#'
#' @param df data.frame; @param time,event outcome columns.
#' @param covariates character vector of covariate columns (linear terms).
#' @param times survival times of the probability axes (time unit of `time`).
#' @param categorical_levels named list: column -> levels (first = reference), or NULL.
#' @param funlabels one axis label per time (default "Survival probability at <t>").
#' @param fun_at probabilities marked on the survival axes (those in range are kept).
#' @param grid_size number of points of the fine total-points -> survival grid.
#' @return list(
#'   predictors  data.frame(predictor, value (text), value_numeric (NA for a factor),
#'               xbeta, points): each axis' tick values and their points,
#'   total_points numeric, the total-points axis ticks,
#'   lp_axis     data.frame(lp, total_points): the linear-predictor axis,
#'   survival_axes data.frame(time, label, survival, total_points): the tick marks of
#'               each survival axis,
#'   survival_grid data.frame(time, total_points, lp, survival): fine grid over
#'               0..max total points for drawing or reading an axis,
#'   points_scale (sc), points_intercept (intercept): lp = total_points / sc + intercept,
#'   coefficients data.frame(term, coef), center (rms's centring constant),
#'   patients    data.frame(row, lp, total_points): the model's rows,
#'   patient_survival data.frame(row, time, survival): rms::survest at each time,
#'   n, n_events, n_excluded (rows with a missing covariate)).
nomogram_points <- function(df, time, event, covariates, times, categorical_levels = NULL,
                            funlabels = NULL, fun_at = c(0.05, seq(0.1, 0.9, by = 0.1), 0.95),
                            grid_size = 201) {
  covariates <- unique(as.character(unlist(covariates)))
  times <- as.numeric(unlist(times))
  if (length(covariates) == 0) stop("the nomogram needs at least one covariate")
  if (length(times) == 0 || anyNA(times) || any(times <= 0)) stop("times must be positive numbers")
  if (is.null(funlabels)) funlabels <- sprintf("Survival probability at %g", times)
  funlabels <- as.character(unlist(funlabels))
  if (length(funlabels) != length(times) || anyDuplicated(funlabels)) {
    stop("give one distinct label per time")
  }
  y <- surv_outcome(df, time, event)
  require_columns(df, covariates)
  internal <- make.names(covariates, unique = TRUE)
  internal <- make.names(c(".time", ".event", internal), unique = TRUE)[-(1:2)]
  data <- data.frame(.time = y[, "time"], .event = y[, "status"])
  for (k in seq_along(covariates)) {
    cov <- covariates[k]
    x <- df[[cov]]
    if (cov %in% names(categorical_levels)) {
      levels <- as.character(unlist(categorical_levels[[cov]]))
      value <- as.character(x)
      stop_on_rows(df, !is.na(value) & !(value %in% levels),
                   sprintf("column '%s': value not among the levels %s", cov,
                           paste(levels, collapse = ", ")))
      data[[internal[k]]] <- factor(value, levels = levels)
    } else {
      if (!is.numeric(x)) {
        stop(sprintf("column '%s': not numeric; give its levels to use it as categorical", cov))
      }
      data[[internal[k]]] <- x
    }
  }
  rownames(data) <- rownames(df)
  data <- data[stats::complete.cases(data), , drop = FALSE]
  for (k in seq_along(covariates)) {
    if (is.factor(data[[internal[k]]])) data[[internal[k]]] <- droplevels(data[[internal[k]]])
  }

  dd <- rms::datadist(data[internal], q.display = c(0, 1))
  old <- options(datadist = dd)
  on.exit(options(old), add = TRUE)
  formula <- stats::as.formula(paste("survival::Surv(.time, .event) ~",
                                     paste(internal, collapse = " + ")))
  fit <- rms::cph(formula, data = data, x = TRUE, y = TRUE, surv = TRUE)
  S <- rms::Survival(fit)
  funs <- lapply(times, function(t) {
    force(t)
    function(lp) S(t, lp)
  })
  axes <- lapply(internal, function(v) numeric_axis(data[[v]]))
  names(axes) <- internal
  axes <- axes[!vapply(axes, is.null, logical(1))]
  nom <- do.call(rms::nomogram,
                 c(list(fit, fun = funs, funlabel = funlabels,
                        fun.at = rep(list(fun_at), length(times)), lp = TRUE), axes))
  info <- attr(nom, "info")
  sc <- info$sc
  intercept <- info$Intercept

  predictors <- do.call(rbind, lapply(seq_along(internal), function(k) {
    axis <- nom[[internal[k]]]
    values <- axis[[internal[k]]]
    data.frame(predictor = covariates[k], value = as.character(values),
               value_numeric = if (is.numeric(values)) as.numeric(values) else NA_real_,
               xbeta = unname(axis$Xbeta), points = unname(axis$points),
               stringsAsFactors = FALSE)
  }))
  max_points <- sum(tapply(predictors$points, predictors$predictor, max))
  survival_axes <- do.call(rbind, lapply(seq_along(times), function(k) {
    axis <- nom[[funlabels[k]]]
    data.frame(time = rep(times[k], length(axis$x)), label = rep(funlabels[k], length(axis$x)),
               survival = as.numeric(axis$x.real), total_points = as.numeric(axis$x),
               stringsAsFactors = FALSE)
  }))
  grid_points <- seq(0, max_points, length.out = grid_size)
  survival_grid <- do.call(rbind, lapply(times, function(t) {
    lp <- grid_points / sc + intercept
    data.frame(time = t, total_points = grid_points, lp = lp, survival = as.numeric(S(t, lp)))
  }))
  lp <- unname(stats::predict(fit, type = "lp"))
  estimate <- rms::survest(fit, newdata = data, times = times, conf.int = FALSE)
  surv <- matrix(estimate$surv, nrow = nrow(data))
  patient_survival <- data.frame(row = rep(rownames(data), times = length(times)),
                                 time = rep(times, each = nrow(data)),
                                 survival = as.vector(surv), stringsAsFactors = FALSE)
  term_names <- names(stats::coef(fit))
  for (k in seq_along(internal)) {
    term_names <- sub(paste0("^", internal[k], "(=|$)"), paste0(covariates[k], "\\1"), term_names)
  }
  list(predictors = predictors,
       total_points = as.numeric(nom$total.points$x),
       lp_axis = data.frame(lp = as.numeric(nom$lp$x.real), total_points = as.numeric(nom$lp$x)),
       survival_axes = survival_axes, survival_grid = survival_grid,
       points_scale = sc, points_intercept = intercept,
       coefficients = data.frame(term = term_names, coef = unname(stats::coef(fit)),
                                 stringsAsFactors = FALSE),
       center = unname(fit$center),
       patients = data.frame(row = rownames(data), lp = lp, total_points = sc * (lp - intercept),
                             stringsAsFactors = FALSE),
       patient_survival = patient_survival,
       n = nrow(data), n_events = sum(data$.event), n_excluded = nrow(df) - nrow(data))
}


#' Tick values of a numeric predictor's nomogram axis: its distinct values when there are
#' at most 10, otherwise pretty() values spanning its whole range (so that every patient's
#' value lies on the axis); NULL for a factor (rms lists its levels).
numeric_axis <- function(x) {
  if (!is.numeric(x)) return(NULL)
  values <- sort(unique(x))
  if (length(values) <= 10) values else pretty(range(x), n = 10)
}


# ------------------------------------------------------------------ 7. subgroups

#' Hazard ratio of high versus low score within each level of a subgroup column.
#'
#' For each level (factor levels in order, otherwise the sorted distinct values; rows with
#' a missing subgroup are left out and counted), evaluate_risk_score (evaluation.R) on that
#' level's rows with the common cut-off: high = score > cutoff. Where a risk group is empty
#' or has no events, evaluate_risk_score gives the reason; a level where the evaluation
#' fails altogether (e.g. one patient) gets NA values and the error message as `reason`.
#' Seed 000 Figure 4C/D: MOSRS by histologic type and by tumour size (3D maximum diameter
#' above/below its median: build that column before calling).
#'
#' @param df data.frame; @param time,event outcome columns; @param score score column.
#' @param cutoff common cut-off; @param subgroup column of the subgroup labels.
#' @param km_times times at which numbers at risk are tabulated.
#' @return list(table = data.frame(level, n, n_events, n_low, n_high, events_low,
#'   events_high, hr, hr_lower, hr_upper, hr_p, hr_reason, logrank_chisq, logrank_p,
#'   logrank_reason, c_index, reason), results = named list (level -> evaluate_risk_score's
#'   list, NULL where it failed), n_missing).
subgroup_hazard <- function(df, time, event, score, cutoff, subgroup, km_times = numeric(0)) {
  surv_outcome(df, time, event)
  require_columns(df, c(score, subgroup))
  g <- df[[subgroup]]
  levels <- if (is.factor(g)) levels(g) else as.character(sort(unique(g[!is.na(g)])))
  g <- as.character(g)
  if (length(levels) == 0) stop(sprintf("column '%s': no subgroup label", subgroup))
  km_times <- as.numeric(unlist(km_times))
  results <- list()
  rows <- lapply(levels, function(level) {
    sub <- df[!is.na(g) & g == level, , drop = FALSE]
    res <- tryCatch(evaluate_risk_score(sub, time, event, score, cutoff, km_times),
                    error = function(e) e)
    if (inherits(res, "error")) {
      results[level] <<- list(NULL)
      return(data.frame(level = level, n = nrow(sub), n_events = sum(sub[[event]] == 1),
                        n_low = NA_real_, n_high = NA_real_, events_low = NA_real_,
                        events_high = NA_real_, hr = NA_real_, hr_lower = NA_real_,
                        hr_upper = NA_real_, hr_p = NA_real_, hr_reason = NA_character_,
                        logrank_chisq = NA_real_, logrank_p = NA_real_,
                        logrank_reason = NA_character_, c_index = NA_real_,
                        reason = conditionMessage(res), stringsAsFactors = FALSE))
    }
    results[[level]] <<- res
    groups <- res$groups
    data.frame(level = level, n = res$n, n_events = res$n_events,
               n_low = groups$n[groups$group == "low"], n_high = groups$n[groups$group == "high"],
               events_low = groups$n_events[groups$group == "low"],
               events_high = groups$n_events[groups$group == "high"],
               hr = res$hr, hr_lower = res$hr_lower, hr_upper = res$hr_upper, hr_p = res$hr_p,
               hr_reason = res$hr_reason, logrank_chisq = res$logrank_chisq,
               logrank_p = res$logrank_p, logrank_reason = res$logrank_reason,
               c_index = res$c_index, reason = NA_character_, stringsAsFactors = FALSE)
  })
  table <- do.call(rbind, rows)
  rownames(table) <- NULL
  list(table = table, results = results, n_missing = sum(is.na(g)))
}
