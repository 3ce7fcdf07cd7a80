# Random survival forest through ranger: the in-project engine used when the CRAN package
# randomForestSRC is not installed (or stops with an error: learners.R, package_or_stand_in).
#
# Method: Ishwaran H, Kogalur UB, Blackstone EH, Lauer MS (2008). Random survival forests.
#         Ann Appl Stat 2:841-860 (log-rank splitting, permutation variable importance).
# Engine: Wright MN, Ziegler A (2017). ranger: a fast implementation of random forests for
#         high dimensional data in C++ and R. J Stat Softw 77(1); survival trees with
#         log-rank splitting, importance = "permutation" (Breiman 2001): the increase of the
#         out-of-bag prediction error (1 - Harrell's C) when a variable is permuted.
# Single-threaded (num.threads = 1) with ranger's own seed, so results depend only on the
# seed and the data.


#' Fit a survival forest with ranger and return the permutation importance.
#'
#' @param x data.frame or matrix of numeric predictors (any column names).
#' @param time,event outcome vectors (event 0/1).
#' @param seed integer seed passed to ranger.
#' @param num_trees number of trees.
#' @param node_size minimal terminal node size (ranger `min.node.size`).
#' @param mtry predictors tried at each split; NULL = ranger's default floor(sqrt(p)).
#' @return list(importance = named numeric vector (names = columns of x), oob_error =
#'   out-of-bag 1 - C, version).
ranger_survival_forest <- function(x, time, event, seed, num_trees = 1000, node_size = 5,
                                   mtry = NULL) {
  x <- as.data.frame(x, check.names = FALSE)
  original <- names(x)
  names(x) <- paste0("v", seq_along(original))   # ranger needs syntactic names
  data <- cbind(x, .time = time, .event = event)
  fit <- ranger::ranger(dependent.variable.name = ".time", status.variable.name = ".event",
                        data = data, num.trees = num_trees, splitrule = "logrank",
                        importance = "permutation", min.node.size = node_size, mtry = mtry,
                        num.threads = 1, seed = seed, write.forest = FALSE)
  importance <- ranger::importance(fit)[names(x)]
  list(importance = stats::setNames(unname(importance), original),
       oob_error = fit$prediction.error,
       version = as.character(utils::packageVersion("ranger")))
}
