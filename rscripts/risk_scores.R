# Survival statistics of deep-learning risk scores (seed 000: He et al. (2022), Transl Lung
# Cancer Res 11:670-685): backward Cox selection over a network's risk vector (OSRS, PFSRS),
# Cox fusion of two scores (MOSRS) with each score's share, and subgroup hazard ratios. The
# other statistics of the risk scores have their own files: the X-tile cut-off is in
# cutpoint.R, the comparison of two C-indices in concordance.R, the univariate and
# multivariable Cox tables in cox_table.R and the nomogram in nomogram.R.
#
# requires: cox.R, evaluation.R
#   (surv_outcome, require_columns, require_numeric_scores, fit_cox, cox_linear_predictor
#    from cox.R; evaluate_risk_score from evaluation.R.)
#
# Methods:
#   Cox model, Wald tests and intervals: Cox DR (1972). J R Stat Soc B 34:187-220; Efron
#     ties (Efron B (1977). J Am Stat Assoc 72:557-565); survival::coxph via fit_cox.
#   Backward elimination by Wald p-value: Hosmer DW, Lemeshow S, May S (2008). Applied
#     Survival Analysis, 2nd ed., Wiley, Section 5.3.
#   Subgroups: Kaplan-Meier, log-rank and Cox hazard ratio per level (evaluation.R).
#
# Conventions: `df` is a data.frame whose row names identify the patients (quoted in error
# messages); `time`, `event` are column names (event 0 = censored, 1 = event). A higher
# score means a higher risk everywhere.


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



# ------------------------------------------------------------------ 3. subgroups

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
