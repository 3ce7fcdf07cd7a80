# Supervised principal components for survival: the in-project implementation used when
# the CRAN package superpc is not installed.
#
# Method: Bair E, Tibshirani R (2004). Semi-supervised methods to predict patient survival
#         from gene expression data. PLoS Biol 2(4):e108.
#         Bair E, Hastie T, Paul D, Tibshirani R (2006). Prediction by supervised principal
#         components. J Am Stat Assoc 101:119-137.
#
# 1. Each feature gets its standardised univariate Cox score statistic at beta = 0,
#    s_j = U_j / sqrt(I_j) (the signed square root of coxph's score test, Breslow ties).
# 2. For a threshold th, the features with |s_j| >= th are kept and the first principal
#    component of those (centred) features is the predictor.
# 3. th is chosen on a grid by K-fold cross-validation: in each fold the scores and the
#    principal component are computed on the training part, the test part is projected,
#    and a Cox model of the test part on that predictor gives a likelihood-ratio statistic;
#    the threshold with the largest mean statistic over the folds is chosen (as
#    superpc.cv, n.components = 1).
# requires: coxboost.R


#' Standardised univariate Cox score statistic of every feature, U_j / sqrt(I_j).
#'
#' @return numeric vector (names = column names of x); NA where I_j = 0 (constant feature).
superpc_feature_scores <- function(x, time, event) {
  si <- cox_score_information(as.matrix(x), time, event)
  out <- si$score / sqrt(si$information)
  out[!(si$information > 0)] <- NA_real_
  stats::setNames(out, colnames(x))
}


#' First principal component of the kept features: fitted on `x_train`, applied to `x_new`.
superpc_predictor <- function(x_train, x_new) {
  centre <- colMeans(x_train)
  decomposition <- svd(sweep(x_train, 2, centre), nu = 0, nv = 1)
  drop(sweep(x_new, 2, centre) %*% decomposition$v[, 1])
}


#' Cross-validated likelihood-ratio statistic of the supervised principal component for
#' each threshold of a grid.
#'
#' @param foldid integer fold of each patient.
#' @param thresholds numeric grid of |score| thresholds.
#' @return numeric vector, mean over folds of the test-part likelihood-ratio statistic per
#'   threshold (NA when no feature passes a threshold in some fold).
superpc_cv <- function(x, time, event, foldid, thresholds) {
  x <- as.matrix(x)
  folds <- sort(unique(foldid))
  lr <- matrix(NA_real_, length(folds), length(thresholds))
  for (f in seq_along(folds)) {
    train <- foldid != folds[f]
    scores <- superpc_feature_scores(x[train, , drop = FALSE], time[train], event[train])
    for (t in seq_along(thresholds)) {
      kept <- which(!is.na(scores) & abs(scores) >= thresholds[t])
      if (length(kept) == 0 || sum(event[!train]) == 0) next
      predictor <- superpc_predictor(x[train, kept, drop = FALSE], x[!train, kept, drop = FALSE])
      if (stats::sd(predictor) == 0) next
      fit <- survival::coxph(survival::Surv(time[!train], event[!train]) ~ predictor,
                             ties = "breslow")
      lr[f, t] <- 2 * (fit$loglik[2] - fit$loglik[1])
    }
  }
  colMeans(lr)
}
