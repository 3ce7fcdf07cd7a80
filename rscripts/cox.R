# Cox proportional hazards models: univariate screening, multivariable fit, and
# applying a frozen model to new data.
#
# Method: Cox DR (1972). Regression models and life-tables. J R Stat Soc B 34:187-220.
# Ties: Efron B (1977). The efficiency of Cox's likelihood function for censored data.
#       J Am Stat Assoc 72:557-565.
# Engine: survival::coxph (Therneau TM, Grambsch PM (2000). Modeling Survival Data:
#         Extending the Cox Model. Springer).
#
# Conventions used by every function here:
#   - `df` is a data.frame; `time`, `event` are column names (strings).
#   - `event` is coded 0 = censored, 1 = event (or FALSE/TRUE).
#   - Row names of `df` are the patient identifiers and are quoted in error messages.


#' Build the survival outcome after checking the time and event columns.
#'
#' Stops with a message naming the column and the offending rows when a column is
#' missing, a time is missing or negative, or an event is not 0/1.
#'
#' @param df data.frame.
#' @param time name of the follow-up time column (non-negative numbers).
#' @param event name of the event indicator column (0/1 or FALSE/TRUE).
#' @return a survival::Surv object with one entry per row of `df`.
surv_outcome <- function(df, time, event) {
  require_columns(df, c(time, event))
  t <- df[[time]]
  e <- df[[event]]
  if (!is.numeric(t)) {
    stop(sprintf("column '%s': follow-up time must be numeric", time))
  }
  stop_on_rows(df, is.na(t), sprintf("column '%s': follow-up time is missing", time))
  stop_on_rows(df, t < 0, sprintf("column '%s': follow-up time is negative", time))
  if (is.logical(e)) e <- as.integer(e)
  stop_on_rows(df, is.na(e), sprintf("column '%s': event indicator is missing", event))
  stop_on_rows(df, !(e %in% c(0, 1)),
               sprintf("column '%s': event indicator must be 0 (censored) or 1 (event)", event))
  survival::Surv(t, e)
}


#' Stop unless every named column is present in `df`.
require_columns <- function(df, columns) {
  missing <- setdiff(columns, names(df))
  if (length(missing) > 0) {
    stop(sprintf("column(s) not found in data: %s", paste0("'", missing, "'", collapse = ", ")))
  }
}


#' Stop with `message` and the row names of `df` where `bad` is TRUE (first 10 shown).
stop_on_rows <- function(df, bad, message) {
  bad <- which(bad)
  if (length(bad) > 0) {
    shown <- head(rownames(df)[bad], 10)
    more <- if (length(bad) > 10) sprintf(" and %d more", length(bad) - 10) else ""
    stop(sprintf("%s in row(s) %s%s", message, paste(shown, collapse = ", "), more))
  }
}


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


#' Quote column names with backticks so that any name can be used in a formula.
backquote <- function(names) {
  paste0("`", gsub("`", "\\\\`", names), "`")
}


#' Univariate Cox screening: one Cox model per feature.
#'
#' Each feature is fitted alone, `Surv(time, event) ~ feature`, with Efron ties. The
#' p-value is the Wald test of the single coefficient and the confidence interval is
#' the Wald interval exp(coef +/- 1.96 se). A feature is kept when p < p_threshold.
#' A feature that is constant, or whose fit fails, gets p = NA, kept = FALSE and the
#' reason in `message`; a fit that only warns (e.g. monotone likelihood) keeps its
#' estimate and records the warning in `message`.
#'
#' @param df data.frame with the outcome and the features.
#' @param time,event outcome column names.
#' @param features character vector of numeric feature column names.
#' @param p_threshold features with Wald p below this value are kept.
#' @return data.frame(feature, coef, hr, hr_lower, hr_upper, p, kept, message),
#'   one row per feature, in the order given.
univariate_cox_screen <- function(df, time, event, features, p_threshold = 0.05) {
  y <- surv_outcome(df, time, event)
  require_columns(df, features)
  rows <- lapply(features, function(feature) {
    screen_one_feature(y, df[[feature]], feature)
  })
  out <- do.call(rbind, c(list(empty_screen_row()), rows))
  out$kept <- !is.na(out$p) & out$p < p_threshold
  rownames(out) <- NULL
  out[c("feature", "coef", "hr", "hr_lower", "hr_upper", "p", "kept", "message")]
}


#' Zero-row template of the screening table (fixes the column types).
empty_screen_row <- function() {
  data.frame(feature = character(0), coef = numeric(0), hr = numeric(0),
             hr_lower = numeric(0), hr_upper = numeric(0), p = numeric(0),
             message = character(0), stringsAsFactors = FALSE)
}


#' Fit `y ~ x` for one feature; never stops, the failure reason goes into `message`.
screen_one_feature <- function(y, x, feature) {
  failed <- function(reason) {
    data.frame(feature = feature, coef = NA_real_, hr = NA_real_, hr_lower = NA_real_,
               hr_upper = NA_real_, p = NA_real_, message = reason,
               stringsAsFactors = FALSE)
  }
  if (!is.numeric(x)) return(failed("feature is not numeric"))
  if (length(unique(x[!is.na(x)])) < 2) return(failed("feature is constant"))
  warning_text <- NA_character_
  fit <- tryCatch(
    withCallingHandlers(
      survival::coxph(y ~ x, ties = "efron"),
      warning = function(w) {
        warning_text <<- conditionMessage(w)
        invokeRestart("muffleWarning")
      }),
    error = function(e) e)
  if (inherits(fit, "error")) return(failed(conditionMessage(fit)))
  s <- summary(fit)$coefficients
  coef <- unname(s[1, "coef"])
  se <- unname(s[1, "se(coef)"])
  z <- stats::qnorm(0.975)
  data.frame(feature = feature, coef = coef, hr = exp(coef),
             hr_lower = exp(coef - z * se), hr_upper = exp(coef + z * se),
             p = unname(s[1, "Pr(>|z|)"]), message = warning_text,
             stringsAsFactors = FALSE)
}


#' Multivariable Cox proportional hazards model.
#'
#' Fits `Surv(time, event) ~ covariates` with survival::coxph, Efron ties. Rows with a
#' missing covariate are left out by coxph (complete cases); `n` reports how many rows
#' were used. Confidence intervals are Wald intervals exp(coef +/- 1.96 se); p-values are
#' Wald tests. `concordance` is Harrell's C of the fitted linear predictor on the data it
#' was fitted on (apparent, optimistic), with its standard error from coxph.
#'
#' @param df data.frame.
#' @param time,event outcome column names.
#' @param covariates character vector of covariate column names (numeric or factor).
#' @return list(coefficients = data.frame(term, coef, se, hr, hr_lower, hr_upper, z, p),
#'   concordance, concordance_se, loglik (at the estimate), loglik_null, aic, n, n_events).
fit_cox <- function(df, time, event, covariates) {
  y <- surv_outcome(df, time, event)
  require_columns(df, covariates)
  model_data <- df[covariates]
  model_data$.surv <- y
  formula <- stats::as.formula(paste(".surv ~", paste(backquote(covariates), collapse = " + ")))
  fit <- survival::coxph(formula, data = model_data, ties = "efron")
  s <- summary(fit)$coefficients
  z <- stats::qnorm(0.975)
  coefficients <- data.frame(
    term = gsub("`", "", rownames(s)),
    coef = unname(s[, "coef"]),
    se = unname(s[, "se(coef)"]),
    hr = unname(s[, "exp(coef)"]),
    hr_lower = exp(unname(s[, "coef"]) - z * unname(s[, "se(coef)"])),
    hr_upper = exp(unname(s[, "coef"]) + z * unname(s[, "se(coef)"])),
    z = unname(s[, "z"]),
    p = unname(s[, "Pr(>|z|)"]),
    stringsAsFactors = FALSE)
  list(
    coefficients = coefficients,
    concordance = unname(fit$concordance["concordance"]),
    concordance_se = unname(fit$concordance["std"]),
    loglik = fit$loglik[length(fit$loglik)],
    loglik_null = fit$loglik[1],
    aic = stats::AIC(fit),
    n = fit$n,
    n_events = fit$nevent)
}


#' Linear predictor of a frozen Cox model on new data.
#'
#' lp_i = sum_j coef_j * x_ij, on the raw (uncentered) covariate scale. This differs from
#' predict.coxph(type = "lp"), which subtracts the training means; the difference is a
#' constant shift, so hazard ratios and C-index are unchanged, but any risk-group cut-off
#' must be defined on this same uncentered scale (studyrunner derives cut-offs from this
#' function's output on the training cohort).
#'
#' @param coefs named numeric vector; names are column names of `newdata`.
#' @param newdata data.frame with a numeric column for every coefficient.
#' @return numeric vector, one value per row (NA where a covariate is missing).
cox_linear_predictor <- function(coefs, newdata) {
  if (is.null(names(coefs)) || any(names(coefs) == "")) {
    stop("coefficients must be a named numeric vector")
  }
  require_columns(newdata, names(coefs))
  x <- newdata[names(coefs)]
  not_numeric <- names(x)[!vapply(x, is.numeric, logical(1))]
  if (length(not_numeric) > 0) {
    stop(sprintf("column(s) must be numeric: %s", paste0("'", not_numeric, "'", collapse = ", ")))
  }
  unname(drop(as.matrix(x) %*% unname(coefs)))
}
