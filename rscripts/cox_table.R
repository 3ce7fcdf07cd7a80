# Univariate and multivariable Cox tables of clinical covariates and risk scores (seed 000:
# "univariate analysis of clinical characteristics and multivariate analysis combined with
# MOSRS"), with categorical covariates as indicator columns against a reference level.
#
# requires: cox.R
#   (surv_outcome, require_columns, stop_on_rows and fit_cox are defined there.)
#
# Methods:
#   Cox model, Wald tests and intervals: Cox DR (1972). J R Stat Soc B 34:187-220; Efron
#     ties (Efron B (1977). J Am Stat Assoc 72:557-565); survival::coxph via fit_cox.
#   Likelihood-ratio test over the levels of a categorical covariate (chi-square with as
#     many df as estimated levels): Wilks SS (1938). Ann Math Stat 9:60-62.
#
# Conventions: `df` is a data.frame whose row names identify the patients; `time`, `event`
# are column names (event 0 = censored, 1 = event).


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
