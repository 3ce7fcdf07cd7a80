# Feature-selection learners for survival data, one function per learner with one contract,
# and `run_learner`, which runs one of them and turns any failure into data.
#
# Contract: select_<name>(df, time, event, features, seed, control = <name>_control())
# returns
#   list(features = selected feature names (character, most important first),
#        importance = data.frame(feature, importance), one row per input feature,
#        implementation = which code ran (package and version, or the in-project method),
#        settings = the settings used (after defaults), details = learner-specific numbers,
#        package_error = the CRAN package's error when it stopped and the in-project
#                        implementation ran instead (NULL otherwise))
# Each learner's tuning settings are one list built by <name>_control(...) with documented
# defaults (as survival::coxph.control); a partial list is completed with the defaults.
# The data are the training cohort, already z-scored and screened; rows must be complete.
# Every learner runs under its own seed (set.seed(seed), Mersenne-Twister / Inversion /
# Rejection) and leaves the caller's random-number state as it was.
#
# Learners (issue 3, seed 001 section 1.3.4):
#   elastic_net, lasso  glmnet Cox (Friedman J, Hastie T, Tibshirani R (2010) J Stat Softw
#                       33(1); Simon N et al. (2011) J Stat Softw 39(5)), alpha 0.5 / 1,
#                       lambda by cv.glmnet with seeded event-stratified folds.
#   coxboost            CoxBoost package when installed, else coxboost.R (Binder &
#                       Schumacher 2008).
#   gbm                 gbm distribution "coxph" (Ridgeway G (1999) Comput Sci Stat 31:172-181;
#                       Friedman JH (2001) Ann Stat 29:1189-1232), iteration by CV or OOB.
#   rsf                 randomForestSRC when installed, else ranger (survival_forest.R)
#                       (Ishwaran et al. 2008).
#   superpc             superpc when installed, else superpc.R (Bair & Tibshirani 2004).
# A CRAN package that is installed but stops with an error is replaced by the in-project
# implementation of the same method; its error is kept (package_or_stand_in).
# requires: cox.R, coxboost.R, survival_forest.R, superpc.R

LEARNERS <- c("elastic_net", "lasso", "coxboost", "gbm", "rsf", "superpc")


#' Run `expr` with R's random numbers seeded by `seed`; restore the caller's state after.
with_seed <- function(seed, expr) {
  had_seed <- exists(".Random.seed", envir = globalenv(), inherits = FALSE)
  if (had_seed) old <- get(".Random.seed", envir = globalenv(), inherits = FALSE)
  old_kind <- RNGkind()
  on.exit({
    RNGkind(old_kind[1], old_kind[2], old_kind[3])
    if (had_seed) assign(".Random.seed", old, envir = globalenv())
    else if (exists(".Random.seed", envir = globalenv(), inherits = FALSE))
      rm(".Random.seed", envir = globalenv())
  })
  set.seed(as.integer(seed), kind = "Mersenne-Twister", normal.kind = "Inversion",
           sample.kind = "Rejection")
  expr
}


#' Checked inputs of a learner: outcome and complete numeric feature matrix.
#'
#' Stops (naming columns and rows) when a feature is missing, not numeric, has missing
#' values or is constant, when fewer than `min_features` features are given, or when the
#' data hold fewer than `min_events` events.
#' @return list(x = n x p matrix (column names = features), time, event).
learner_data <- function(df, time, event, features, min_features = 1, min_events = 2) {
  features <- as.character(unlist(features))
  y <- surv_outcome(df, time, event)
  if (length(features) < min_features) {
    stop(sprintf("needs at least %d feature(s), got %d", min_features, length(features)))
  }
  if (anyDuplicated(features)) {
    stop(sprintf("feature(s) named twice: %s",
                 paste(unique(features[duplicated(features)]), collapse = ", ")))
  }
  require_columns(df, features)
  not_numeric <- features[!vapply(df[features], is.numeric, logical(1))]
  if (length(not_numeric) > 0) {
    stop(sprintf("feature column(s) must be numeric: %s",
                 paste0("'", head(not_numeric, 10), "'", collapse = ", ")))
  }
  x <- as.matrix(df[features])
  colnames(x) <- features
  for (j in which(colSums(!is.finite(x)) > 0)) {
    stop_on_rows(df, !is.finite(x[, j]),
                 sprintf("column '%s': missing or non-finite value", features[j]))
  }
  constant <- features[apply(x, 2, function(v) max(v) - min(v) == 0)]
  if (length(constant) > 0) {
    stop(sprintf("constant feature column(s): %s",
                 paste0("'", head(constant, 10), "'", collapse = ", ")))
  }
  n_events <- sum(y[, "status"] == 1)
  if (n_events < min_events) {
    stop(sprintf("too few events: %d (at least %d needed)", n_events, min_events))
  }
  list(x = x, time = unname(y[, "time"]), event = unname(y[, "status"]))
}


#' Default number of cross-validation folds: 10, or 5 when n < 100.
default_nfolds <- function(n) if (n < 100) 5L else 10L


#' The folds a control list asks for, or default_nfolds(n) when it gives none (NULL).
learner_nfolds <- function(nfolds, n) if (is.null(nfolds)) default_nfolds(n) else nfolds


#' Seeded fold assignment stratified by the event indicator.
#'
#' Events and censored patients are each dealt in turn to folds 1..K after a random
#' permutation, so every fold gets floor or ceiling of its share of events (cv.glmnet and
#' the boosting CV need events in every fold). Uses the current random-number state.
#' @return integer vector of folds, one per patient.
stratified_folds <- function(event, nfolds) {
  nfolds <- as.integer(nfolds)
  if (nfolds < 2 || nfolds > length(event)) {
    stop(sprintf("nfolds must be between 2 and the number of patients (%d), got %d",
                 length(event), nfolds))
  }
  foldid <- integer(length(event))
  offset <- 0L
  for (group in c(1, 0)) {
    members <- which(event == group)
    if (length(members) == 0) next
    shuffled <- members[sample.int(length(members))]
    foldid[shuffled] <- ((seq_along(shuffled) + offset - 1L) %% nfolds) + 1L
    offset <- offset + length(shuffled)
  }
  foldid
}


#' Fold ids from a user-given vector or else seeded stratified folds.
learner_folds <- function(event, nfolds, foldid = NULL) {
  if (!is.null(foldid)) {
    foldid <- as.integer(unlist(foldid))
    if (length(foldid) != length(event)) {
      stop(sprintf("foldid has %d entries for %d patients", length(foldid), length(event)))
    }
    return(foldid)
  }
  stratified_folds(event, nfolds)
}


#' The importance data.frame shared by all learners (input order, 0 where not selected).
importance_frame <- function(features, importance) {
  data.frame(feature = features, importance = unname(as.numeric(importance)),
             stringsAsFactors = FALSE)
}


#' The result list of every learner; selected features sorted by decreasing importance.
learner_result <- function(selected, importance, implementation, settings, details = list(),
                           package_error = NULL) {
  rank <- importance$importance[match(selected, importance$feature)]
  selected <- selected[order(-rank, match(selected, importance$feature))]
  list(features = as.list(selected), importance = importance,
       implementation = implementation, settings = settings, details = details,
       package_error = package_error)
}


package_version_string <- function(package) {
  paste(package, as.character(utils::packageVersion(package)))
}


#' A learner's CRAN-package branch, or the in-project stand-in of the same method.
#'
#' The package runs when `use_package` is TRUE and requireNamespace() finds it; when it
#' stops with an error, the stand-in runs instead and the error is kept, so that a user with
#' the package installed gets the learner's result in any case and the record says why it
#' is not the package's.
#' @param with_package,stand_in functions of no argument, each returning the learner's
#'   numbers as a list (with `implementation`).
#' @return the list of the branch that ran, plus package_error = "<package version>: <its
#'   error message>" or NULL when the package ran or was not tried.
package_or_stand_in <- function(package, use_package, with_package, stand_in) {
  if (isTRUE(use_package) && requireNamespace(package, quietly = TRUE)) {
    value <- tryCatch(with_package(), error = function(e) e)
    if (!inherits(value, "error")) return(c(value, list(package_error = NULL)))
    failure <- sprintf("%s: %s", package_version_string(package), conditionMessage(value))
    return(c(stand_in(), list(package_error = failure)))
  }
  c(stand_in(), list(package_error = NULL))
}


# ------------------------------------------------------------------------------ glmnet

#' Settings of the penalised Cox learners (select_glmnet).
#'
#' @param alpha elastic-net mixing: 1 = lasso, 0.5 = elastic net (glmnet's alpha).
#' @param nfolds cross-validation folds; NULL = 10, or 5 when n < 100 (default_nfolds).
#' @param lambda_rule "lambda.min" (smallest CV deviance) or "lambda.1se" (largest lambda
#'   within one SE of it).
#' @param foldid fold of each patient; NULL = seeded event-stratified folds.
#' @return list(alpha, nfolds, lambda_rule, foldid).
glmnet_control <- function(alpha, nfolds = NULL, lambda_rule = "lambda.min", foldid = NULL) {
  list(alpha = alpha, nfolds = nfolds, lambda_rule = lambda_rule, foldid = foldid)
}


#' Elastic-net settings: glmnet_control with alpha = 0.5 by default.
elastic_net_control <- function(nfolds = NULL, lambda_rule = "lambda.min", foldid = NULL,
                                alpha = 0.5) {
  glmnet_control(alpha, nfolds, lambda_rule, foldid)
}


#' Lasso settings: glmnet_control with alpha fixed at 1.
lasso_control <- function(nfolds = NULL, lambda_rule = "lambda.min", foldid = NULL) {
  glmnet_control(1, nfolds, lambda_rule, foldid)
}


#' Penalised Cox regression (glmnet) with lambda chosen by cross-validation.
#'
#' cv.glmnet(family = "cox", alpha, foldid) with the deviance as CV measure; the model at
#' `lambda_rule` ("lambda.min" or "lambda.1se") selects the features with a non-zero
#' coefficient. Importance = |coefficient| (features are z-scored). glmnet standardises
#' internally (its default) and uses Breslow ties. Friedman J, Hastie T, Tibshirani R
#' (2010). J Stat Softw 33(1); Simon N, Friedman J, Hastie T, Tibshirani R (2011). J Stat
#' Softw 39(5).
#' @param control glmnet_control(...) (alpha is required there).
select_glmnet <- function(df, time, event, features, seed, control) {
  d <- learner_data(df, time, event, features)
  lambda_rule <- match.arg(control$lambda_rule, c("lambda.min", "lambda.1se"))
  nfolds <- learner_nfolds(control$nfolds, nrow(d$x))
  with_seed(seed, {
    folds <- learner_folds(d$event, nfolds, control$foldid)
    y <- survival::Surv(d$time, d$event)
    cv <- glmnet::cv.glmnet(d$x, y, family = "cox", alpha = control$alpha, foldid = folds)
  })
  coefs <- as.matrix(stats::coef(cv, s = lambda_rule))[features, 1]
  importance <- importance_frame(features, abs(coefs))
  learner_result(features[coefs != 0], importance, package_version_string("glmnet"),
                 list(alpha = control$alpha, nfolds = length(unique(folds)),
                      lambda_rule = lambda_rule, type_measure = "deviance"),
                 list(lambda = unname(cv[[lambda_rule]]),
                      coefficients = importance_frame(features, coefs)))
}


#' Elastic net (alpha = 0.5) Cox selection; see select_glmnet.
select_elastic_net <- function(df, time, event, features, seed,
                               control = elastic_net_control()) {
  select_glmnet(df, time, event, features, seed, control)
}


#' Lasso (alpha = 1) Cox selection; see select_glmnet.
select_lasso <- function(df, time, event, features, seed, control = lasso_control()) {
  select_glmnet(df, time, event, features, seed, control)
}


# ---------------------------------------------------------------------------- CoxBoost

#' Settings of select_coxboost.
#'
#' @param nfolds cross-validation folds for the number of steps; NULL = default_nfolds.
#' @param maxstepno largest number of boosting steps considered.
#' @param penalty penalty of every boosting update; NULL = CoxBoost's default for the data
#'   fitted, 9 * number of events, the same in every cross-validation fold.
#' @param foldid fold of each patient; NULL = seeded event-stratified folds.
#' @param use_package use the CoxBoost package when installed (else coxboost.R).
#' @return list(nfolds, maxstepno, penalty, foldid, use_package).
coxboost_control <- function(nfolds = NULL, maxstepno = 100, penalty = NULL, foldid = NULL,
                             use_package = TRUE) {
  list(nfolds = nfolds, maxstepno = maxstepno, penalty = penalty, foldid = foldid,
       use_package = use_package)
}


#' Componentwise likelihood-based boosting (Binder & Schumacher 2008), steps by CV.
#'
#' With the CoxBoost package installed (and use_package TRUE): cv.CoxBoost (type
#' "verweij", the same folds) then CoxBoost with the optimal number of steps. Otherwise
#' coxboost.R's implementation of the same method. Selected = non-zero coefficients at
#' the chosen step; importance = |standardised coefficient|.
#' The penalty is always handed to CoxBoost: its default, 9 * sum(status[subset] == 1), is
#' evaluated after CoxBoost has already cut `status` down to `subset`, so in every
#' cross-validation fold it indexes past the end, the penalty is NA and CoxBoost 1.5.1 stops
#' with "missing value where TRUE/FALSE needed".
#' @param control coxboost_control(...).
select_coxboost <- function(df, time, event, features, seed, control = coxboost_control()) {
  d <- learner_data(df, time, event, features)
  nfolds <- learner_nfolds(control$nfolds, nrow(d$x))
  maxstepno <- control$maxstepno
  penalty <- if (is.null(control$penalty)) 9 * sum(d$event == 1) else control$penalty
  scale <- apply(d$x, 2, stats::sd)
  settings <- list(nfolds = nfolds, maxstepno = maxstepno, penalty = penalty,
                   penalty_rule = if (is.null(control$penalty)) "9 * number of events" else "given",
                   cv_type = "verweij")
  with_seed(seed, {
    folds <- learner_folds(d$event, nfolds, control$foldid)
    fit <- package_or_stand_in("CoxBoost", control$use_package, function() {
      cv <- CoxBoost::cv.CoxBoost(time = d$time, status = d$event, x = d$x, maxstepno = maxstepno,
                                  K = length(unique(folds)), type = "verweij",
                                  folds = split(seq_along(folds), folds), penalty = penalty)
      model <- CoxBoost::CoxBoost(time = d$time, status = d$event, x = d$x,
                                  stepno = cv$optimal.step, penalty = penalty)
      list(steps = cv$optimal.step, coefficients = as.numeric(stats::coef(model)),
           implementation = package_version_string("CoxBoost"))
    }, function() {
      cv <- coxboost_cv(d$x, d$time, d$event, folds, maxstepno, penalty)
      path <- coxboost_path(d$x, d$time, d$event, cv$optimal_step, penalty)
      list(steps = cv$optimal_step, coefficients = path$coefficients[cv$optimal_step + 1, ],
           implementation = paste("studyrunner componentwise likelihood boosting",
                                  "(Binder & Schumacher 2008)"))
    })
  })
  coefs <- stats::setNames(as.numeric(fit$coefficients), features)
  importance <- importance_frame(features, abs(coefs * scale))
  learner_result(features[coefs != 0], importance, fit$implementation, settings,
                 list(steps = fit$steps, coefficients = importance_frame(features, coefs)),
                 fit$package_error)
}


# --------------------------------------------------------------------------------- GBM

#' Settings of select_gbm (gbm's arguments of the same names, with dots).
#'
#' @param n_trees number of trees fitted (n.trees).
#' @param shrinkage learning rate.
#' @param interaction_depth depth of each tree (interaction.depth).
#' @param n_minobsinnode smallest number of patients in a terminal node.
#' @param bag_fraction fraction of patients drawn for each tree (bag.fraction).
#' @param iteration how the number of trees is chosen: "cv" or "OOB".
#' @param nfolds cross-validation folds with iteration "cv"; NULL = default_nfolds.
#' @param top_k NULL: select every feature with relative influence > 0; else at most the
#'   top_k of them.
#' @return list(n_trees, shrinkage, interaction_depth, n_minobsinnode, bag_fraction,
#'   iteration, nfolds, top_k).
gbm_control <- function(n_trees = 1000, shrinkage = 0.01, interaction_depth = 3,
                        n_minobsinnode = 10, bag_fraction = 0.5, iteration = "cv",
                        nfolds = NULL, top_k = NULL) {
  list(n_trees = n_trees, shrinkage = shrinkage, interaction_depth = interaction_depth,
       n_minobsinnode = n_minobsinnode, bag_fraction = bag_fraction, iteration = iteration,
       nfolds = nfolds, top_k = top_k)
}


#' Gradient boosting with the Cox partial likelihood (gbm, distribution "coxph").
#'
#' The number of trees is chosen by `iteration`: "cv" = minimum of gbm's cv.folds-fold
#' cross-validated error, "OOB" = gbm's out-of-bag estimate. Importance = relative
#' influence (summary.gbm) at that number of trees. Selected = relative influence > 0
#' (default) or, when `top_k` is given, the top_k features by relative influence (those
#' with influence > 0 only).
#' @param control gbm_control(...).
select_gbm <- function(df, time, event, features, seed, control = gbm_control()) {
  d <- learner_data(df, time, event, features)
  iteration <- match.arg(control$iteration, c("cv", "OOB"))
  top_k <- control$top_k
  if (iteration == "cv" && length(features) < 2) {
    # gbm 2.1.8's cross-validation subsets its predictors with drop = TRUE and stops with
    # "incorrect number of dimensions" for a single predictor.
    stop("gbm cross-validation needs at least 2 features (use iteration = 'OOB' for one)")
  }
  nfolds <- learner_nfolds(control$nfolds, nrow(d$x))
  data <- as.data.frame(d$x)
  names(data) <- paste0("v", seq_along(features))   # syntactic names for gbm's formula
  data$.time <- d$time
  data$.event <- d$event
  suppressPackageStartupMessages(requireNamespace("gbm", quietly = TRUE))
  with_seed(seed, {
    # gbm attaches itself and prints "CV: k" in its cross-validation: keep the console quiet.
    utils::capture.output(fit <- suppressPackageStartupMessages(gbm::gbm(
      survival::Surv(.time, .event) ~ ., data = data, distribution = "coxph",
      n.trees = control$n_trees, shrinkage = control$shrinkage,
      interaction.depth = control$interaction_depth, n.minobsinnode = control$n_minobsinnode,
      bag.fraction = control$bag_fraction,
      cv.folds = if (iteration == "cv") nfolds else 0, n.cores = 1, keep.data = FALSE,
      verbose = FALSE)))
    best <- suppressWarnings(suppressMessages(
      gbm::gbm.perf(fit, method = iteration, plot.it = FALSE)))
  })
  influence <- gbm::relative.influence(fit, n.trees = best)
  influence <- stats::setNames(unname(influence[paste0("v", seq_along(features))]), features)
  importance <- importance_frame(features, influence)
  selected <- features[influence > 0]
  if (!is.null(top_k)) {
    selected <- head(selected[order(-influence[selected])], as.integer(top_k))
  }
  learner_result(selected, importance, package_version_string("gbm"),
                 list(n_trees = control$n_trees, shrinkage = control$shrinkage,
                      interaction_depth = control$interaction_depth,
                      n_minobsinnode = control$n_minobsinnode,
                      bag_fraction = control$bag_fraction, iteration = iteration,
                      nfolds = if (iteration == "cv") nfolds else NULL,
                      rule = if (is.null(top_k)) "relative influence > 0"
                             else sprintf("top %d by relative influence (> 0)", top_k)),
                 list(best_iteration = unname(best)))
}


# --------------------------------------------------------------------------------- RSF

#' Settings of select_rsf.
#'
#' @param num_trees number of trees.
#' @param node_size smallest terminal node (patients).
#' @param mtry features tried at each split; NULL = the package's default (sqrt(p)).
#' @param top_k NULL: select every feature with permutation importance > 0; else at most
#'   the top_k of them.
#' @param use_package use randomForestSRC when installed (else ranger, survival_forest.R).
#' @return list(num_trees, node_size, mtry, top_k, use_package).
rsf_control <- function(num_trees = 1000, node_size = 5, mtry = NULL, top_k = NULL,
                        use_package = TRUE) {
  list(num_trees = num_trees, node_size = node_size, mtry = mtry, top_k = top_k,
       use_package = use_package)
}


#' Random survival forest with permutation variable importance (Ishwaran H, Kogalur UB,
#' Blackstone EH, Lauer MS (2008). Ann Appl Stat 2:841-860).
#'
#' randomForestSRC::rfsrc (log-rank splitting, importance "permute") when installed and
#' use_package is TRUE; otherwise ranger (survival_forest.R). Selected = importance > 0
#' (default) or the top_k by importance (those > 0 only).
#' @param control rsf_control(...).
select_rsf <- function(df, time, event, features, seed, control = rsf_control()) {
  d <- learner_data(df, time, event, features)
  num_trees <- control$num_trees
  node_size <- control$node_size
  mtry <- control$mtry
  top_k <- control$top_k
  fit <- package_or_stand_in("randomForestSRC", control$use_package, function() {
    data <- as.data.frame(d$x)
    names(data) <- paste0("v", seq_along(features))
    data$.time <- d$time
    data$.event <- d$event
    # rfsrc reads the outcome's names off the formula and needs it written Surv(time, status)
    # ("formula is incorrectly specified" for survival::Surv(...)); it does not call Surv.
    # One thread (option rf.cores), as ranger below: with more, the same seed gives other
    # importances from one run to the next.
    cores <- options(rf.cores = 1L)
    on.exit(options(cores), add = TRUE)
    forest <- randomForestSRC::rfsrc(stats::as.formula("Surv(.time, .event) ~ ."), data = data,
                                     ntree = num_trees, nodesize = node_size, mtry = mtry,
                                     splitrule = "logrank", importance = "permute",
                                     seed = -abs(as.integer(seed)))
    list(vimp = stats::setNames(unname(forest$importance[paste0("v", seq_along(features))]),
                                features),
         implementation = paste(package_version_string("randomForestSRC"),
                                "random survival forest with permutation importance"),
         oob_error = utils::tail(forest$err.rate[!is.na(forest$err.rate)], 1))
  }, function() {
    forest <- ranger_survival_forest(d$x, d$time, d$event, seed, num_trees, node_size, mtry)
    list(vimp = forest$importance,
         implementation = sprintf("ranger %s survival forest with permutation importance",
                                  forest$version),
         oob_error = forest$oob_error)
  })
  vimp <- fit$vimp
  importance <- importance_frame(features, vimp)
  selected <- features[vimp > 0]
  if (!is.null(top_k)) selected <- head(selected[order(-vimp[selected])], as.integer(top_k))
  learner_result(selected, importance, fit$implementation,
                 list(num_trees = num_trees, node_size = node_size, mtry = mtry,
                      splitrule = "logrank",
                      rule = if (is.null(top_k)) "permutation importance > 0"
                             else sprintf("top %d by permutation importance (> 0)", top_k)),
                 list(oob_error = unname(fit$oob_error)), fit$package_error)
}


# ----------------------------------------------------------------------------- SuperPC

#' Settings of select_superpc.
#'
#' @param nfolds cross-validation folds for the threshold; NULL = default_nfolds.
#' @param n_threshold number of thresholds tried.
#' @param min_features the largest threshold keeps at least this many features.
#' @param n_top at most this many features are selected (seed 001: the top 50).
#' @param foldid fold of each patient; NULL = seeded event-stratified folds.
#' @param use_package use superpc when installed (else superpc.R).
#' @return list(nfolds, n_threshold, min_features, n_top, foldid, use_package).
superpc_control <- function(nfolds = NULL, n_threshold = 20, min_features = 5, n_top = 50,
                            foldid = NULL, use_package = TRUE) {
  list(nfolds = nfolds, n_threshold = n_threshold, min_features = min_features,
       n_top = n_top, foldid = foldid, use_package = use_package)
}


#' Supervised principal components (Bair E, Tibshirani R (2004). PLoS Biol 2:e108): top
#' features by score.
#'
#' The threshold on superpc's |regularised univariate Cox score| is chosen by CV over
#' `n_threshold` values from the smallest |score| to the quantile at 1 - min_features / p
#' (superpc.cv with max.features = p; superpc when installed and use_package is TRUE, else
#' superpc.R, which follows it step by step); selected = the `n_top` features with the
#' largest |score| among those at or above the chosen threshold (as superpc.predict; seed
#' 001: "SuperPC selects the Top 50 feature scores"). Importance = |score| on all the data.
#' @param control superpc_control(...).
select_superpc <- function(df, time, event, features, seed, control = superpc_control()) {
  if (length(unlist(features)) < 2) {
    stop(sprintf(paste("superpc needs at least 2 features (its cross-validation keeps a",
                       "threshold only where more than one feature passes it), got %d"),
                 length(unlist(features))))
  }
  d <- learner_data(df, time, event, features)
  n_threshold <- control$n_threshold
  min_features <- min(control$min_features, length(features))
  n_top <- control$n_top
  nfolds <- learner_nfolds(control$nfolds, nrow(d$x))
  with_seed(seed, {
    folds <- learner_folds(d$event, nfolds, control$foldid)
    fit <- package_or_stand_in("superpc", control$use_package, function() {
      data <- list(x = t(d$x), y = d$time, censoring.status = d$event, featurenames = features)
      train <- superpc::superpc.train(data, type = "survival")
      cv <- superpc::superpc.cv(train, data, n.threshold = n_threshold,
                                folds = split(seq_along(folds), folds), n.components = 1,
                                min.features = min_features, max.features = length(features),
                                compute.preval = FALSE)
      list(scores = stats::setNames(as.numeric(train$feature.scores), features),
           thresholds = cv$thresholds, statistic = cv$scor[1, ],
           implementation = package_version_string("superpc"))
    }, function() {
      scores <- superpc_regularised_scores(d$x, d$time, d$event)
      thresholds <- superpc_thresholds(scores, n_threshold, min_features)
      list(scores = scores, thresholds = thresholds,
           statistic = superpc_cv(d$x, d$time, d$event, folds, thresholds),
           implementation = "studyrunner supervised principal components (Bair & Tibshirani 2004)")
    })
  })
  scores <- fit$scores
  if (all(is.na(fit$statistic))) stop("no threshold gave a cross-validated statistic")
  threshold <- fit$thresholds[which.max(fit$statistic)]
  above <- features[abs(scores) >= threshold]
  selected <- head(above[order(-abs(scores[above]))], as.integer(n_top))
  learner_result(selected, importance_frame(features, abs(scores)), fit$implementation,
                 list(nfolds = length(unique(folds)), n_threshold = n_threshold,
                      min_features = min_features, n_top = n_top, n_components = 1),
                 list(threshold = threshold, n_above_threshold = length(above),
                      cv = data.frame(threshold = fit$thresholds, statistic = fit$statistic),
                      scores = importance_frame(features, scores)),
                 fit$package_error)
}


# ------------------------------------------------------------------------------- runner

#' Run one learner; any error becomes data, never stops the caller.
#'
#' @param name one of LEARNERS.
#' @param settings named list of arguments of <name>_control (unknown names are an error,
#'   recorded like any other); the learner runs with do.call(<name>_control, settings).
#' @return list(name, ok, features, importance, implementation, settings, details,
#'   package_error (see package_or_stand_in), error (NULL when ok), warnings (character)).
run_learner <- function(name, df, time, event, features, seed, settings = list()) {
  seen <- character(0)
  settings <- as.list(settings)
  result <- tryCatch(
    withCallingHandlers({
      if (!(name %in% LEARNERS)) {
        stop(sprintf("unknown learner '%s' (known: %s)", name, paste(LEARNERS, collapse = ", ")))
      }
      control <- get(paste0(name, "_control"), mode = "function")
      unknown <- setdiff(names(settings), names(formals(control)))
      if (length(unknown) > 0) {
        stop(sprintf("unknown setting(s) for learner '%s': %s", name,
                     paste(unknown, collapse = ", ")))
      }
      fn <- get(paste0("select_", name), mode = "function")
      fn(df, time, event, features, seed, do.call(control, settings))
    }, warning = function(w) {
      seen <<- c(seen, conditionMessage(w))
      invokeRestart("muffleWarning")
    }),
    error = function(e) structure(list(message = conditionMessage(e)), class = "learner_error"))
  if (inherits(result, "learner_error")) {
    return(list(name = name, ok = FALSE, features = list(), importance = NULL,
                implementation = NULL, settings = settings, details = NULL,
                package_error = NULL, error = result$message, warnings = as.list(unique(seen))))
  }
  c(list(name = name, ok = TRUE), result,
    list(error = NULL, warnings = as.list(unique(seen))))
}
