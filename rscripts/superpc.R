# Supervised principal components for survival: the in-project implementation used when
# the CRAN package superpc is not installed (or stops with an error: learners.R).
#
# Method: Bair E, Tibshirani R (2004). Semi-supervised methods to predict patient survival
#         from gene expression data. PLoS Biol 2(4):e108.
#         Bair E, Hastie T, Paul D, Tibshirani R (2006). Prediction by supervised principal
#         components. J Am Stat Assoc 101:119-137.
#
# What the superpc package (1.12: superpc.train, superpc.cv) does, step by step, so that the two
# select the same features from the same data and folds:
# 1. Each feature gets superpc's regularised univariate Cox score statistic
#    s_j = U_j / (sqrt(I_j) + s0), U_j and I_j the partial-likelihood score and information
#    at beta = 0 (Breslow ties), s0 = the median of sqrt(I_j) over the features (superpc.train
#    with s0.perc = NULL, its default; the SAM-type fudge of Tusher VG, Tibshirani R, Chu G (2001),
#    PNAS 98:5116-5121).
# 2. For a threshold th, the features with |s_j| > th are kept (more than one is needed) and the
#    first principal component of those (centred) features is the predictor.
# 3. The threshold grid has n_threshold equally spaced values from the quantile of |s| at
#    1 - max_features / p to the quantile at 1 - min_features / p (R's default quantile type 7;
#    max_features = p gives the smallest |s|).
# 4. th is chosen by K-fold cross-validation: in each fold the scores (with their own s0) and
#    the principal component are computed on the training part, the test part is projected,
#    and a Cox model (Efron ties, at most 10 iterations) of the test part on that predictor
#    gives a likelihood-ratio statistic; a threshold's criterion is the geometric mean of its
#    statistics over the folds where it kept more than one feature; the largest is chosen.
# requires: coxboost.R


#' superpc's regularised Cox score statistic of every feature, U_j / (sqrt(I_j) + s0),
#' s0 = median_j sqrt(I_j) (superpc.train, type "survival", s0.perc = NULL).
#'
#' @return numeric vector (names = column names of x).
superpc_regularised_scores <- function(x, time, event) {
  si <- cox_score_information(as.matrix(x), time, event)
  sd <- sqrt(pmax(si$information, 0))
  stats::setNames(si$score / (sd + stats::median(sd)), colnames(x))
}


#' superpc.cv's threshold grid: `n_threshold` values from the quantile of |scores| at
#' 1 - max_features / p to the quantile at 1 - min_features / p.
superpc_thresholds <- function(scores, n_threshold, min_features, max_features = length(scores)) {
  p <- length(scores)
  lower <- stats::quantile(abs(scores), 1 - max_features / p, names = FALSE)
  upper <- stats::quantile(abs(scores), 1 - min_features / p, names = FALSE)
  seq(lower, upper, length.out = n_threshold)
}


#' First principal component of the kept features: fitted on `x_train`, applied to `x_new`.
superpc_predictor <- function(x_train, x_new) {
  centre <- colMeans(x_train)
  decomposition <- svd(sweep(x_train, 2, centre), nu = 0, nv = 1)
  drop(sweep(x_new, 2, centre) %*% decomposition$v[, 1])
}


#' Cross-validated likelihood-ratio statistic of the supervised principal component for
#' each threshold of a grid (superpc.cv, n.components = 1).
#'
#' @param foldid integer fold of each patient.
#' @param thresholds numeric grid of |score| thresholds.
#' @return numeric vector, per threshold the geometric mean over the folds of the test-part
#'   likelihood-ratio statistic, folds where at most one feature passed the threshold left
#'   out (NaN when that is every fold).
superpc_cv <- function(x, time, event, foldid, thresholds) {
  x <- as.matrix(x)
  folds <- sort(unique(foldid))
  lr <- matrix(NA_real_, length(folds), length(thresholds))
  for (f in seq_along(folds)) {
    train <- foldid != folds[f]
    scores <- superpc_regularised_scores(x[train, , drop = FALSE], time[train], event[train])
    for (t in seq_along(thresholds)) {
      kept <- which(abs(scores) > thresholds[t])
      if (length(kept) < 2) next
      predictor <- superpc_predictor(x[train, kept, drop = FALSE], x[!train, kept, drop = FALSE])
      fit <- survival::coxph(survival::Surv(time[!train], event[!train]) ~ predictor,
                             control = survival::coxph.control(iter.max = 10))
      lr[f, t] <- 2 * (fit$loglik[2] - fit$loglik[1])
    }
  }
  # superpc averages log(statistic): a statistic of exactly 0 gives -Inf (criterion 0), a
  # negative rounding error NaN, which is left out like a fold without features.
  logged <- suppressWarnings(log(lr))
  exp(apply(logged, 2, function(v) mean(v[!is.na(v)])))
}
