# Harrell's C of two risk scores on the same patients, the test of their difference, and
# each patient's mis-ordered pair counts (seed 000 Figure 3C, "the number of patient
# sorting errors").
#
# requires: cox.R
#   (surv_outcome and require_numeric_scores are defined there.)
#
# Methods:
#   Harrell's C and the variance of a difference of C-indices: Harrell FE, Lee KL, Mark DB
#     (1996). Stat Med 15:361-387; Therneau T, Atkinson E (2023). The concordance statistic.
#     survival package vignette (infinitesimal-jackknife variance, joint over predictors).
#
# Conventions: `df` is a data.frame whose row names identify the patients; `time`, `event`
# are column names (event 0 = censored, 1 = event). A higher score means a higher risk.


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
