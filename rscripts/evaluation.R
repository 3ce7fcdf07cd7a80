# Evaluation of a continuous risk score and of the two risk groups it defines.
#
# requires: cox.R
#   (surv_outcome, require_columns, stop_on_rows and fit_cox are defined there; in an R
#    session, source("cox.R") before this file.)
#
# Methods:
#   Harrell's C: Harrell FE, Lee KL, Mark DB (1996). Multivariable prognostic models.
#     Stat Med 15:361-387; variance as in survival::concordance (Therneau T, Atkinson E
#     (2023). The concordance statistic. survival package vignette).
#   Log-rank test: Mantel N (1966). Cancer Chemother Rep 50:163-170 (survival::survdiff).
#   Kaplan-Meier: Kaplan EL, Meier P (1958). J Am Stat Assoc 53:457-481, Greenwood variance,
#     confidence intervals on the log scale (survival::survfit default, conf.type = "log").


#' Discrimination and risk-group separation of a risk score.
#'
#' Patients with score > cutoff form the "high" group, the others the "low" group.
#'
#' @param df data.frame with the outcome and the score.
#' @param time,event outcome column names (event 0/1).
#' @param score name of the numeric score column; higher score = higher risk.
#' @param cutoff numeric threshold on the score scale.
#' @param km_times times at which the numbers at risk are tabulated.
#' @return list(
#'   n, n_events,
#'   c_index, c_se, c_lower, c_upper   Harrell's C with concordance(reverse = TRUE) so that
#'                                     a higher score predicts earlier events; 95% CI
#'                                     c +/- 1.96 se, clipped to [0, 1],
#'   groups                            data.frame(group, n, n_events),
#'   hr, hr_lower, hr_upper, hr_p      Cox model high vs low (Wald CI and p), NA with
#'   hr_reason                         the reason when not estimable (NA otherwise),
#'   logrank_chisq, logrank_p          survdiff, 1 degree of freedom (NA with reason when
#'   logrank_reason                    a group is empty),
#'   km = list(low, high)              survfit steps: data.frame(time, surv, lower, upper,
#'                                     n_risk, n_event, n_censor),
#'   risk_table                        data.frame(time, low, high): numbers at risk,
#'                                     i.e. patients with follow-up time >= time.
#' )
evaluate_risk_score <- function(df, time, event, score, cutoff, km_times) {
  y <- surv_outcome(df, time, event)
  require_columns(df, score)
  s <- df[[score]]
  if (!is.numeric(s)) stop(sprintf("column '%s': risk score must be numeric", score))
  stop_on_rows(df, is.na(s), sprintf("column '%s': risk score is missing", score))
  group <- factor(ifelse(s > cutoff, "high", "low"), levels = c("low", "high"))
  event01 <- y[, "status"]

  cc <- survival::concordance(y ~ s, reverse = TRUE)
  c_se <- sqrt(cc$var)
  zq <- stats::qnorm(0.975)

  groups <- data.frame(group = levels(group),
                       n = as.vector(table(group)),
                       n_events = as.vector(tapply(event01, group, sum, default = 0)),
                       stringsAsFactors = FALSE)
  empty <- groups$group[groups$n == 0]
  no_events <- groups$group[groups$n > 0 & groups$n_events == 0]

  hr <- list(hr = NA_real_, hr_lower = NA_real_, hr_upper = NA_real_, hr_p = NA_real_,
             hr_reason = NA_character_)
  logrank <- list(logrank_chisq = NA_real_, logrank_p = NA_real_,
                  logrank_reason = NA_character_)
  if (length(empty) > 0) {
    reason <- sprintf("no patients in the %s-risk group", empty[1])
    hr$hr_reason <- reason
    logrank$logrank_reason <- reason
  } else {
    if (length(no_events) > 0) {
      hr$hr_reason <- sprintf("no events in the %s-risk group: hazard ratio not estimable",
                              no_events[1])
    } else {
      hr <- high_vs_low_hazard_ratio(y, group)
    }
    sd <- survival::survdiff(y ~ group)
    logrank$logrank_chisq <- unname(sd$chisq)
    logrank$logrank_p <- stats::pchisq(sd$chisq, df = 1, lower.tail = FALSE)
  }

  c(list(n = length(s),
         n_events = sum(event01),
         c_index = unname(cc$concordance),
         c_se = c_se,
         c_lower = max(0, unname(cc$concordance) - zq * c_se),
         c_upper = min(1, unname(cc$concordance) + zq * c_se),
         groups = groups),
    hr,
    logrank,
    list(km = list(low = kaplan_meier_steps(y[group == "low"]),
                   high = kaplan_meier_steps(y[group == "high"])),
         risk_table = data.frame(time = km_times,
                                 low = numbers_at_risk(y[group == "low"], km_times),
                                 high = numbers_at_risk(y[group == "high"], km_times))))
}


#' Hazard ratio of the high- versus the low-risk group from a Cox model (fit_cox, cox.R).
high_vs_low_hazard_ratio <- function(y, group) {
  fit <- fit_cox(data.frame(time = y[, "time"], event = y[, "status"],
                            high = as.numeric(group == "high")),
                 "time", "event", "high")
  row <- fit$coefficients[1, ]
  list(hr = row$hr, hr_lower = row$hr_lower, hr_upper = row$hr_upper, hr_p = row$p,
       hr_reason = NA_character_)
}


#' Kaplan-Meier estimate as its step table (one row per distinct time).
#'
#' @param y survival::Surv object of one group (may have length 0).
#' @return data.frame(time, surv, lower, upper, n_risk, n_event, n_censor); zero rows for
#'   an empty group.
kaplan_meier_steps <- function(y) {
  if (length(y) == 0) {
    return(data.frame(time = numeric(0), surv = numeric(0), lower = numeric(0),
                      upper = numeric(0), n_risk = numeric(0), n_event = numeric(0),
                      n_censor = numeric(0)))
  }
  fit <- survival::survfit(y ~ 1, conf.type = "log")
  data.frame(time = fit$time, surv = fit$surv, lower = fit$lower, upper = fit$upper,
             n_risk = fit$n.risk, n_event = fit$n.event, n_censor = fit$n.censor)
}


#' Numbers at risk: patients whose follow-up time is >= each of `times`.
numbers_at_risk <- function(y, times) {
  vapply(times, function(t) sum(y[, "time"] >= t), numeric(1))
}
