# Multivariable Cox model with stepwise variable selection by AIC.
#
# Method: Akaike H (1974). A new look at the statistical model identification. IEEE Trans
#         Automat Control 19:716-723. Engine: MASS::stepAIC (Venables WN, Ripley BD (2002).
#         Modern Applied Statistics with S, 4th ed., Springer), survival::coxph (Efron ties).
# Seed 001 (Table 2): coef, exp(coef), exp(-coef), lower and upper 95% limits of exp(coef).
# requires: cox.R


#' Backward-and-forward stepwise Cox regression from the full model, minimising the AIC.
#'
#' Starts from `Surv(time, event) ~ all features` and runs MASS::stepAIC(direction =
#' "both", k = 2): at each step every single-term drop and every re-addition of a dropped
#' term is tried, and the move lowering the AIC most is made, until none lowers it.
#' direction = "none" returns the full model (no search), in the same layout.
#' Rows must be complete (stepAIC compares models fitted to the same rows).
#'
#' @param df data.frame; @param time,event outcome columns; @param features candidates.
#' @return list(features (kept, model order), coefficients = data.frame(term, coef,
#'   exp_coef, exp_neg_coef, lower, upper, se, p) (95% Wald limits of exp(coef)), aic (of
#'   the final model), aic_full (of the starting model), steps = data.frame(step, df,
#'   deviance, resid_df, resid_deviance, aic) from stepAIC's anova, concordance, n,
#'   n_events).
stepwise_cox <- function(df, time, event, features, k = 2, direction = "both") {
  direction <- match.arg(direction, c("both", "backward", "forward", "none"))
  features <- as.character(unlist(features))
  if (length(features) == 0) stop("stepwise Cox needs at least one feature")
  y <- surv_outcome(df, time, event)
  require_columns(df, features)
  for (feature in features) {
    stop_on_rows(df, is.na(df[[feature]]),
                 sprintf("column '%s': missing value (stepwise AIC needs complete rows)",
                         feature))
  }
  model_data <- df[features]
  model_data$.surv <- y
  formula <- stats::as.formula(paste(".surv ~", paste(backquote(features), collapse = " + ")))
  # do.call puts the data itself into the model call, so that stepAIC's update() calls
  # can refit the model wherever they are evaluated.
  full <- do.call(survival::coxph, list(formula = formula, data = model_data,
                                        ties = "efron"))
  final <- if (direction == "none") full else
    MASS::stepAIC(full, direction = direction, trace = 0, k = k)
  kept <- gsub("`", "", attr(stats::terms(final), "term.labels"))
  z <- stats::qnorm(0.975)
  if (length(kept) > 0) {
    s <- summary(final)$coefficients
    coefficients <- data.frame(
      term = gsub("`", "", rownames(s)), coef = unname(s[, "coef"]),
      exp_coef = exp(unname(s[, "coef"])), exp_neg_coef = exp(-unname(s[, "coef"])),
      lower = exp(unname(s[, "coef"]) - z * unname(s[, "se(coef)"])),
      upper = exp(unname(s[, "coef"]) + z * unname(s[, "se(coef)"])),
      se = unname(s[, "se(coef)"]), p = unname(s[, "Pr(>|z|)"]), stringsAsFactors = FALSE)
  } else {
    coefficients <- data.frame(term = character(0), coef = numeric(0), exp_coef = numeric(0),
                               exp_neg_coef = numeric(0), lower = numeric(0),
                               upper = numeric(0), se = numeric(0), p = numeric(0))
  }
  a <- final$anova
  if (is.null(a)) {  # direction "none": no search
    a <- data.frame(Step = character(0), Df = numeric(0), Deviance = numeric(0),
                    `Resid. Df` = numeric(0), `Resid. Dev` = numeric(0), AIC = numeric(0),
                    check.names = FALSE)
  }
  steps <- data.frame(step = trimws(as.character(a$Step)), df = a$Df, deviance = a$Deviance,
                      resid_df = a$`Resid. Df`, resid_deviance = a$`Resid. Dev`, aic = a$AIC,
                      stringsAsFactors = FALSE)
  list(features = as.list(kept), coefficients = coefficients,
       aic = stats::extractAIC(final, k = k)[2], aic_full = stats::extractAIC(full, k = k)[2],
       steps = steps,
       concordance = if (length(kept) > 0) unname(final$concordance["concordance"]) else NA_real_,
       n = final$n, n_events = final$nevent)
}
