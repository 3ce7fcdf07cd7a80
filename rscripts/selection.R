# Feature selection helpers used after univariate screening.

#' Greedy correlation pruning of ranked features.
#'
#' Walks the features in rank order (best first, e.g. by univariate Cox p-value) and keeps
#' a feature only if its absolute Pearson correlation with every feature already kept is
#' at most `threshold`; stops after `max_features`. This is the usual redundancy filter of
#' radiomics pipelines (e.g. Aerts et al., Nat Commun 2014), applied on the training cohort.
#'
#' @param df data.frame with the candidate feature columns (training cohort only)
#' @param ranked character vector of feature names, best first
#' @param threshold maximum allowed |r| between two kept features
#' @param max_features maximum number of features returned
#' @return list of kept feature names, in rank order (a list, so one name stays a list in Python)
prune_correlated <- function(df, ranked, threshold, max_features) {
  kept <- character(0)
  for (feature in ranked) {
    if (length(kept) >= max_features) break
    if (length(kept) == 0) {
      kept <- feature
      next
    }
    r <- abs(stats::cor(df[[feature]], as.matrix(df[, kept, drop = FALSE]),
                        use = "pairwise.complete.obs"))
    if (all(is.na(r) | r <= threshold)) kept <- c(kept, feature)
  }
  as.list(kept)
}
