# A Cox nomogram for survival at given times, as the numbers needed to draw it (seed 000:
# the nomogram of MOSRS and the clinical covariates).
#
# requires: cox.R
#   (surv_outcome, require_columns and stop_on_rows are defined there.)
#
# Method: Harrell FE (2015). Regression Modeling Strategies, 2nd ed., Springer, Sections
#   10.9 and 20.1; engine rms::cph, rms::nomogram, rms::Survival, rms::survest (Harrell FE,
#   rms package). Cox model with Efron ties: Cox DR (1972). J R Stat Soc B 34:187-220;
#   Efron B (1977). J Am Stat Assoc 72:557-565.
#
# Conventions: `df` is a data.frame whose row names identify the patients (quoted in error
# messages); `time`, `event` are column names (event 0 = censored, 1 = event).


#' Tuning settings of nomogram_points, with their defaults (as survival::coxph.control).
#'
#' @param funlabels one label per time for the survival axes; NULL gives
#'   "Survival probability at <t>".
#' @param fun_at survival probabilities marked on the survival axes (those in range are kept).
#' @param grid_size number of points of the fine total-points -> survival grid.
#' @param axis_ticks a numeric predictor with at most this many distinct values gets one
#'   tick per value; otherwise about this many pretty() ticks over its range.
#' @param q_display quantiles of each predictor that rms::datadist displays (c(0, 1): the
#'   whole range).
#' @return list(funlabels, fun_at, grid_size, axis_ticks, q_display).
nomogram_control <- function(funlabels = NULL,
                             fun_at = c(0.05, seq(0.1, 0.9, by = 0.1), 0.95),
                             grid_size = 201, axis_ticks = 10, q_display = c(0, 1)) {
  if (!is.null(funlabels)) funlabels <- as.character(unlist(funlabels))
  list(funlabels = funlabels, fun_at = as.numeric(unlist(fun_at)), grid_size = grid_size,
       axis_ticks = axis_ticks, q_display = as.numeric(unlist(q_display)))
}


#' A Cox nomogram for survival at given times, as the numbers needed to draw it.
#'
#' Fits rms::cph(Surv(time, event) ~ covariates, x = TRUE, y = TRUE, surv = TRUE) (Efron
#' ties) on the complete cases and builds rms::nomogram with one survival-probability axis
#' per time (rms::Survival). rms finds the predictor ranges through
#' options(datadist = ...); the datadist object (computed from these rows, q.display =
#' control$q_display) is put in the option itself, not in a global variable, only while
#' this function runs, and the previous option is restored on exit, so nothing is left
#' behind in the global environment or options. Each numeric axis is given explicitly
#' (numeric_axis) so that it spans every patient's value. Covariates are renamed to
#' syntactic names inside (make.names) and reported under their own names.
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
#' @param control nomogram_control(...), or a list of some of its arguments.
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
                            control = nomogram_control()) {
  control <- do.call(nomogram_control, as.list(control))
  covariates <- unique(as.character(unlist(covariates)))
  times <- as.numeric(unlist(times))
  if (length(covariates) == 0) stop("the nomogram needs at least one covariate")
  if (length(times) == 0 || anyNA(times) || any(times <= 0)) stop("times must be positive numbers")
  labels <- nomogram_labels(times, control$funlabels)
  model <- nomogram_model_frame(df, time, event, covariates, categorical_levels)
  data <- model$data
  old <- options(datadist = rms::datadist(data[model$internal], q.display = control$q_display))
  on.exit(options(old), add = TRUE)
  fit <- rms::cph(stats::as.formula(paste("survival::Surv(.time, .event) ~",
                                          paste(model$internal, collapse = " + "))),
                  data = data, x = TRUE, y = TRUE, surv = TRUE)
  S <- rms::Survival(fit)
  nom <- nomogram_axes(fit, S, data, model$internal, times, labels, control)
  info <- attr(nom, "info")
  predictors <- nomogram_predictor_table(nom, model$internal, covariates)
  max_points <- sum(tapply(predictors$points, predictors$predictor, max))
  c(list(predictors = predictors,
         total_points = as.numeric(nom$total.points$x),
         lp_axis = data.frame(lp = as.numeric(nom$lp$x.real), total_points = as.numeric(nom$lp$x)),
         survival_axes = nomogram_survival_axes(nom, times, labels),
         survival_grid = nomogram_survival_grid(S, times, max_points, info$sc, info$Intercept,
                                                control$grid_size),
         points_scale = info$sc, points_intercept = info$Intercept,
         coefficients = data.frame(term = nomogram_term_names(fit, model$internal, covariates),
                                   coef = unname(stats::coef(fit)), stringsAsFactors = FALSE),
         center = unname(fit$center)),
    nomogram_patients(fit, data, times, info$sc, info$Intercept),
    list(n = nrow(data), n_events = sum(data$.event), n_excluded = nrow(df) - nrow(data)))
}


#' One distinct label per time: `funlabels`, or "Survival probability at <t>" when NULL.
nomogram_labels <- function(times, funlabels) {
  if (is.null(funlabels)) funlabels <- sprintf("Survival probability at %g", times)
  funlabels <- as.character(unlist(funlabels))
  if (length(funlabels) != length(times) || anyDuplicated(funlabels)) {
    stop("give one distinct label per time")
  }
  funlabels
}


#' The model's data: .time, .event and each covariate under a syntactic name (a factor for
#' a column with given levels), complete cases only, patients' ids as row names.
#'
#' @return list(data = data.frame, internal = the covariates' names in `data`).
nomogram_model_frame <- function(df, time, event, covariates, categorical_levels) {
  y <- surv_outcome(df, time, event)
  require_columns(df, covariates)
  internal <- make.names(covariates, unique = TRUE)
  internal <- make.names(c(".time", ".event", internal), unique = TRUE)[-(1:2)]
  data <- data.frame(.time = y[, "time"], .event = y[, "status"])
  for (k in seq_along(covariates)) {
    data[[internal[k]]] <- nomogram_covariate(df, covariates[k], categorical_levels)
  }
  rownames(data) <- rownames(df)
  data <- data[stats::complete.cases(data), , drop = FALSE]
  for (k in seq_along(covariates)) {
    if (is.factor(data[[internal[k]]])) data[[internal[k]]] <- droplevels(data[[internal[k]]])
  }
  list(data = data, internal = internal)
}


#' One covariate column for the model: a factor on its given levels, else numeric.
nomogram_covariate <- function(df, cov, categorical_levels) {
  x <- df[[cov]]
  if (cov %in% names(categorical_levels)) {
    levels <- as.character(unlist(categorical_levels[[cov]]))
    value <- as.character(x)
    stop_on_rows(df, !is.na(value) & !(value %in% levels),
                 sprintf("column '%s': value not among the levels %s", cov,
                         paste(levels, collapse = ", ")))
    return(factor(value, levels = levels))
  }
  if (!is.numeric(x)) {
    stop(sprintf("column '%s': not numeric; give its levels to use it as categorical", cov))
  }
  x
}


#' rms::nomogram of the fit, with one survival axis per time and explicit numeric axes.
nomogram_axes <- function(fit, S, data, internal, times, labels, control) {
  funs <- lapply(times, function(t) {
    force(t)
    function(lp) S(t, lp)
  })
  axes <- lapply(internal, function(v) numeric_axis(data[[v]], control$axis_ticks))
  names(axes) <- internal
  axes <- axes[!vapply(axes, is.null, logical(1))]
  do.call(rms::nomogram,
          c(list(fit, fun = funs, funlabel = labels,
                 fun.at = rep(list(control$fun_at), length(times)), lp = TRUE), axes))
}


#' Each predictor axis' tick values and their points, under the covariates' own names.
nomogram_predictor_table <- function(nom, internal, covariates) {
  do.call(rbind, lapply(seq_along(internal), function(k) {
    axis <- nom[[internal[k]]]
    values <- axis[[internal[k]]]
    data.frame(predictor = covariates[k], value = as.character(values),
               value_numeric = if (is.numeric(values)) as.numeric(values) else NA_real_,
               xbeta = unname(axis$Xbeta), points = unname(axis$points),
               stringsAsFactors = FALSE)
  }))
}


#' The tick marks of each survival axis: survival probability and its total points.
nomogram_survival_axes <- function(nom, times, labels) {
  do.call(rbind, lapply(seq_along(times), function(k) {
    axis <- nom[[labels[k]]]
    data.frame(time = rep(times[k], length(axis$x)), label = rep(labels[k], length(axis$x)),
               survival = as.numeric(axis$x.real), total_points = as.numeric(axis$x),
               stringsAsFactors = FALSE)
  }))
}


#' Survival at each time on `grid_size` equally spaced total points over 0..max_points.
nomogram_survival_grid <- function(S, times, max_points, sc, intercept, grid_size) {
  grid_points <- seq(0, max_points, length.out = grid_size)
  do.call(rbind, lapply(times, function(t) {
    lp <- grid_points / sc + intercept
    data.frame(time = t, total_points = grid_points, lp = lp, survival = as.numeric(S(t, lp)))
  }))
}


#' Each patient's linear predictor and total points, and rms::survest at each time.
nomogram_patients <- function(fit, data, times, sc, intercept) {
  lp <- unname(stats::predict(fit, type = "lp"))
  estimate <- rms::survest(fit, newdata = data, times = times, conf.int = FALSE)
  surv <- matrix(estimate$surv, nrow = nrow(data))
  list(patients = data.frame(row = rownames(data), lp = lp, total_points = sc * (lp - intercept),
                             stringsAsFactors = FALSE),
       patient_survival = data.frame(row = rep(rownames(data), times = length(times)),
                                     time = rep(times, each = nrow(data)),
                                     survival = as.vector(surv), stringsAsFactors = FALSE))
}


#' The fit's coefficient names with the covariates' own names ("sex=male", "age").
nomogram_term_names <- function(fit, internal, covariates) {
  term_names <- names(stats::coef(fit))
  for (k in seq_along(internal)) {
    term_names <- sub(paste0("^", internal[k], "(=|$)"), paste0(covariates[k], "\\1"), term_names)
  }
  term_names
}


#' Tick values of a numeric predictor's nomogram axis: its distinct values when there are
#' at most `ticks`, otherwise pretty() values spanning its whole range (so that every
#' patient's value lies on the axis); NULL for a factor (rms lists its levels).
numeric_axis <- function(x, ticks = 10) {
  if (!is.numeric(x)) return(NULL)
  values <- sort(unique(x))
  if (length(values) <= ticks) values else pretty(range(x), n = ticks)
}
