# Likelihood-based componentwise boosting for the Cox model: the in-project implementation
# used when the CRAN package CoxBoost is not installed (or stops with an error: learners.R);
# it follows CoxBoost 1.5.1 step by step (benchmarks/cran_agreement.md).
#
# Method: Binder H, Schumacher M (2008). Allowing for mandatory covariates in boosting
#         estimation of sparse high-dimensional survival models. BMC Bioinformatics 9:14.
#         Tutz G, Binder H (2006). Generalized additive modelling with implicit variable
#         selection by likelihood-based boosting. Biometrics 62:961-971.
# Cross-validated partial likelihood: Verweij PJM, van Houwelingen HC (1993).
#         Cross-validation in survival analysis. Stat Med 12:2305-2314.
#
# The algorithm (all covariates penalised, CoxBoost's defaults):
#   covariates are standardised (mean 0, SD 1) on the data being fitted; beta = 0;
#   for step m = 1..stepno, with the current linear predictor eta as offset, every
#   covariate j gets the partial-likelihood score U_j and Fisher information I_j of a
#   one-parameter Cox model x_j * gamma + eta at gamma = 0; the covariate with the largest
#   penalised score statistic U_j^2 / (I_j + penalty) is updated by one penalised Newton
#   step gamma_j = U_j / (I_j + penalty) (CoxBoost's criterion = "pscore").
#   The default penalty is CoxBoost's: 9 * (number of events in the data being fitted).
#   The number of steps is chosen by K-fold cross-validation of the partial log-likelihood
#   (Verweij & van Houwelingen, CoxBoost's cv.CoxBoost type = "verweij", maxstepno = 100):
#   cvpl(m) = sum_k [ l(beta_-k(m)) - l_-k(beta_-k(m)) ], l = partial log-likelihood on all
#   data, l_-k on the data without fold k, beta_-k(m) fitted without fold k; the step
#   maximising cvpl is used (0 steps = empty model).
# Ties: Efron's approximation, as CoxBoost (its weight matrix); Breslow's on request.


#' Efron's handling of the events tied at one time: the l-th of d tied events (l = 0..d-1)
#' sees the risk set less l/d of the tied events (Efron B (1977). The efficiency of Cox's
#' likelihood function for censored data. JASA 72:557-565).
#'
#' @param event_times the times of the events (any order).
#' @return list(group = index of each event's time among the distinct ones, fraction = l/d).
efron_ties <- function(event_times) {
  group <- match(event_times, unique(event_times))
  rank <- stats::ave(seq_along(group), group, FUN = seq_along) - 1
  size <- stats::ave(rep(1, length(group)), group, FUN = length)
  list(group = group, fraction = rank / size)
}


#' Partial-likelihood score and Fisher information of each covariate at gamma = 0.
#'
#' For covariate j, with offset eta and risk sets R(t) = {l : time_l >= t}:
#'   U_j = sum_{events i} [x_ij - S1_j(t_i) / S0(t_i)],
#'   I_j = sum_{events i} [S2_j(t_i) / S0(t_i) - (S1_j(t_i) / S0(t_i))^2],
#' with S0 = sum_R exp(eta), S1_j = sum_R exp(eta) x_j, S2_j = sum_R exp(eta) x_j^2
#' (Breslow); with ties = "efron" each of d events tied at t_i has the sums less l/d of
#' those over the tied events (efron_ties), as CoxBoost's weight matrix does.
#'
#' @param x numeric matrix, n x p.
#' @param time,event numeric vectors of length n (event 0/1).
#' @param offset linear predictor eta (length n), 0 for the null model.
#' @param ties "breslow" or "efron".
#' @return list(score = numeric p, information = numeric p).
cox_score_information <- function(x, time, event, offset = rep(0, length(time)),
                                  ties = "breslow") {
  ties <- match.arg(ties, c("breslow", "efron"))
  x <- as.matrix(x)
  w <- exp(offset - max(offset))          # a common factor cancels in every ratio
  ord <- order(time, decreasing = TRUE)
  t_ord <- time[ord]
  # Position of the last patient (in decreasing time) tied with each patient: the
  # cumulative sums up to there cover exactly the risk set {time >= t}.
  last <- length(t_ord) - match(t_ord, rev(t_ord)) + 1L
  x_ord <- x[ord, , drop = FALSE]
  xw <- x_ord * w[ord]
  d <- event[ord] == 1
  s0 <- cumsum(w[ord])[last][d]
  s1 <- matrix(apply(xw, 2, cumsum), ncol = ncol(x))[last, , drop = FALSE][d, , drop = FALSE]
  s2 <- matrix(apply(xw * x_ord, 2, cumsum), ncol = ncol(x))[last, , drop = FALSE][d, , drop = FALSE]
  if (ties == "efron") {
    tie <- efron_ties(t_ord[d])
    s0 <- s0 - tie$fraction * rowsum(w[ord][d], tie$group)[tie$group]
    s1 <- s1 - tie$fraction * rowsum(xw[d, , drop = FALSE], tie$group)[tie$group, , drop = FALSE]
    s2 <- s2 - tie$fraction *
      rowsum((xw * x_ord)[d, , drop = FALSE], tie$group)[tie$group, , drop = FALSE]
  }
  mean_x <- s1 / s0
  score <- colSums(x_ord[d, , drop = FALSE] - mean_x)
  information <- colSums(s2 / s0 - mean_x^2)
  list(score = unname(score), information = unname(information))
}


#' Cox partial log-likelihood of a linear predictor, Breslow or Efron ties.
cox_partial_loglik <- function(eta, time, event, ties = "breslow") {
  ties <- match.arg(ties, c("breslow", "efron"))
  ord <- order(time, decreasing = TRUE)
  t_ord <- time[ord]
  last <- length(t_ord) - match(t_ord, rev(t_ord)) + 1L
  m <- max(eta)
  risk <- exp(eta[ord] - m)
  d <- event[ord] == 1
  s0 <- cumsum(risk)[last][d]
  if (ties == "efron") {
    tie <- efron_ties(t_ord[d])
    s0 <- s0 - tie$fraction * rowsum(risk[d], tie$group)[tie$group]
  }
  sum(eta[ord][d] - log(s0) - m)
}


#' Componentwise likelihood-based boosting path (Binder & Schumacher 2008).
#'
#' @param x numeric matrix n x p (column names = covariate names).
#' @param time,event outcome vectors.
#' @param stepno number of boosting steps.
#' @param penalty penalty of each update; NULL = 9 * number of events (CoxBoost default).
#' @param ties "efron" (CoxBoost's) or "breslow", for the score and information.
#' @return list(coefficients = (stepno + 1) x p matrix on the original covariate scale,
#'   row m + 1 = after m steps; standardised = same on the standardised scale;
#'   selected = index of the covariate updated at each step; penalty).
coxboost_path <- function(x, time, event, stepno = 100, penalty = NULL, ties = "efron") {
  x <- as.matrix(x)
  if (is.null(penalty)) penalty <- 9 * sum(event == 1)
  centre <- colMeans(x)
  scale <- apply(x, 2, stats::sd)
  scale[!is.finite(scale) | scale == 0] <- 1
  z <- sweep(sweep(x, 2, centre), 2, scale, "/")
  beta <- rep(0, ncol(z))
  eta <- rep(0, nrow(z))
  path <- matrix(0, stepno + 1, ncol(z), dimnames = list(NULL, colnames(x)))
  chosen <- integer(stepno)
  for (m in seq_len(stepno)) {
    si <- cox_score_information(z, time, event, eta, ties)
    pscore <- si$score^2 / (si$information + penalty)
    j <- which.max(pscore)
    gamma <- si$score[j] / (si$information[j] + penalty)
    beta[j] <- beta[j] + gamma
    eta <- eta + gamma * z[, j]
    path[m + 1, ] <- beta
    chosen[m] <- j
  }
  list(coefficients = sweep(path, 2, scale, "/"), standardised = path, selected = chosen,
       penalty = penalty)
}


#' Number of boosting steps by K-fold cross-validated partial log-likelihood
#' (Verweij & van Houwelingen 1993).
#'
#' @param foldid integer fold of each patient (1..K).
#' @param maxstepno largest number of steps considered.
#' @param penalty as in coxboost_path (NULL: 9 * events of each training part).
#' @param ties as in coxboost_path, also for the partial log-likelihoods.
#' @return list(optimal_step, cvpl = numeric maxstepno + 1 for steps 0..maxstepno).
coxboost_cv <- function(x, time, event, foldid, maxstepno = 100, penalty = NULL,
                        ties = "efron") {
  x <- as.matrix(x)
  cvpl <- rep(0, maxstepno + 1)
  for (k in sort(unique(foldid))) {
    train <- foldid != k
    path <- coxboost_path(x[train, , drop = FALSE], time[train], event[train],
                          maxstepno, penalty, ties)$coefficients
    eta_all <- x %*% t(path)                  # n x (maxstepno + 1)
    for (m in seq_len(maxstepno + 1)) {
      cvpl[m] <- cvpl[m] + cox_partial_loglik(eta_all[, m], time, event, ties) -
        cox_partial_loglik(eta_all[train, m], time[train], event[train], ties)
    }
  }
  list(optimal_step = which.max(cvpl) - 1L, cvpl = cvpl)
}
