# Performance of a risk score within subgroups (centres, sex, age groups) and whether its
# association with the outcome differs between them.
#
# requires: cox.R
#   (surv_outcome, require_columns and stop_on_rows are defined there.)
#
# Methods:
#   Harrell's C per subgroup: Harrell FE, Lee KL, Mark DB (1996). Stat Med 15:361-387;
#     variance as in survival::concordance (Therneau T, Atkinson E, "The concordance
#     statistic", survival package vignette); 95% CI c +/- 1.96 se clipped to [0, 1].
#   Score x subgroup interaction: likelihood-ratio test of the Cox model
#     Surv ~ score * group against Surv ~ score + group (Efron ties), df = number of groups - 1
#     (Riley RD et al. (2019). Stat Med 38:1276-1296 on heterogeneity of prediction-model
#     performance across clusters; Debray TPA et al. (2017) BMJ 356:i6460).


#' Harrell's C of `score` within each level of `group`.
#'
#' @return data.frame(group, n, n_events, c_index, c_se, c_lower, c_upper, reason): one row per
#'   level in the order of `levels`; c_* are NA with a reason when the level has fewer than two
#'   patients, no event, or so few comparable pairs that the variance is 0 (no interval).
subgroup_concordance <- function(df, time, event, score, group, levels) {
  y <- surv_outcome(df, time, event)
  require_columns(df, c(score, group))
  s <- df[[score]]
  stop_on_rows(df, is.na(s), sprintf("column '%s': risk score is missing", score))
  g <- as.character(df[[group]])
  zq <- stats::qnorm(0.975)
  rows <- lapply(levels, function(level) {
    keep <- !is.na(g) & g == level
    n <- sum(keep)
    n_events <- sum(y[keep, "status"])
    out <- data.frame(group = level, n = n, n_events = n_events, c_index = NA_real_, c_se = NA_real_,
                      c_lower = NA_real_, c_upper = NA_real_, reason = NA_character_, stringsAsFactors = FALSE)
    if (n < 2 || n_events < 1) {
      out$reason <- if (n < 2) "fewer than two patients" else "no event"
      return(out)
    }
    cc <- survival::concordance(y[keep] ~ s[keep], reverse = TRUE)
    se <- sqrt(cc$var)
    if (!is.finite(se) || se <= 0) {
      out$reason <- "too few comparable pairs"
      return(out)
    }
    out$c_index <- unname(cc$concordance)
    out$c_se <- se
    out$c_lower <- max(0, out$c_index - zq * se)
    out$c_upper <- min(1, out$c_index + zq * se)
    out
  })
  do.call(rbind, rows)
}


#' Likelihood-ratio test of the score x group interaction in a Cox model.
#'
#' Patients with a missing group are left out; levels without patients are dropped.
#' @return list(statistic, df, p, loglik_main, loglik_interaction, n, reason): reason is NA
#'   unless the test could not be done (one group only, a model that does not converge).
subgroup_interaction <- function(df, time, event, score, group) {
  y <- surv_outcome(df, time, event)
  require_columns(df, c(score, group))
  g <- df[[group]]
  keep <- !is.na(g)
  data <- data.frame(score = df[[score]][keep], group = factor(as.character(g[keep])))
  yk <- y[keep]
  none <- list(statistic = NA_real_, df = NA_real_, p = NA_real_, loglik_main = NA_real_,
               loglik_interaction = NA_real_, n = sum(keep), reason = NA_character_)
  if (nlevels(data$group) < 2) {
    none$reason <- "only one group has patients"
    return(none)
  }
  fits <- tryCatch(list(
    main = survival::coxph(yk ~ score + group, data = data, ties = "efron"),
    full = survival::coxph(yk ~ score * group, data = data, ties = "efron")
  ), warning = function(w) "the interaction model did not converge: too few events in a subgroup",
  error = function(e) sprintf("the Cox model failed: %s", trimws(conditionMessage(e))))
  if (is.character(fits)) {
    none$reason <- fits
    return(none)
  }
  lm <- fits$main$loglik[2]
  lf <- fits$full$loglik[2]
  dof <- length(stats::coef(fits$full)) - length(stats::coef(fits$main))
  stat <- 2 * (lf - lm)
  list(statistic = stat, df = dof, p = stats::pchisq(stat, dof, lower.tail = FALSE), loglik_main = lm,
       loglik_interaction = lf, n = sum(keep), reason = NA_character_)
}
