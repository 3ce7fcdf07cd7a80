# Feature-selection learners for survival data, one function per learner with one contract,
# and `run_learner`, which runs one of them and turns any failure into data.
#
# Contract: select_<name>(df, time, event, features, seed, ...) returns
#   list(features = selected feature names (character, most important first),
#        importance = data.frame(feature, importance), one row per input feature,
#        implementation = which code ran (package and version, or the in-project method),
#        settings = the settings used (after defaults), details = learner-specific numbers)
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
learner_result <- function(selected, importance, implementation, settings, details = list()) {
  rank <- importance$importance[match(selected, importance$feature)]
  selected <- selected[order(-rank, match(selected, importance$feature))]
  list(features = as.list(selected), importance = importance,
       implementation = implementation, settings = settings, details = details)
}


package_version_string <- function(package) {
  paste(package, as.character(utils::packageVersion(package)))
}


# ------------------------------------------------------------------------------ glmnet

#' Penalised Cox regression (glmnet) with lambda chosen by cross-validation.
#'
#' cv.glmnet(family = "cox", alpha, foldid) with the deviance as CV measure; the model at
#' `lambda_rule` ("lambda.min" or "lambda.1se") selects the features with a non-zero
#' coefficient. Importance = |coefficient| (features are z-scored). glmnet standardises
#' internally (its default) and uses Breslow ties.
select_glmnet <- function(df, time, event, features, seed, alpha, nfolds = NULL,
                          lambda_rule = "lambda.min", foldid = NULL) {
  d <- learner_data(df, time, event, features)
  lambda_rule <- match.arg(lambda_rule, c("lambda.min", "lambda.1se"))
  if (is.null(nfolds)) nfolds <- default_nfolds(nrow(d$x))
  with_seed(seed, {
    folds <- learner_folds(d$event, nfolds, foldid)
    y <- survival::Surv(d$time, d$event)
    cv <- glmnet::cv.glmnet(d$x, y, family = "cox", alpha = alpha, foldid = folds)
  })
  coefs <- as.matrix(stats::coef(cv, s = lambda_rule))[features, 1]
  importance <- importance_frame(features, abs(coefs))
  learner_result(features[coefs != 0], importance, package_version_string("glmnet"),
                 list(alpha = alpha, nfolds = length(unique(folds)), lambda_rule = lambda_rule,
                      type_measure = "deviance"),
                 list(lambda = unname(cv[[lambda_rule]]),
                      coefficients = importance_frame(features, coefs)))
}


#' Elastic net (alpha = 0.5) Cox selection; see select_glmnet.
select_elastic_net <- function(df, time, event, features, seed, nfolds = NULL,
                               lambda_rule = "lambda.min", foldid = NULL, alpha = 0.5) {
  select_glmnet(df, time, event, features, seed, alpha, nfolds, lambda_rule, foldid)
}


#' Lasso (alpha = 1) Cox selection; see select_glmnet.
select_lasso <- function(df, time, event, features, seed, nfolds = NULL,
                         lambda_rule = "lambda.min", foldid = NULL) {
  select_glmnet(df, time, event, features, seed, 1, nfolds, lambda_rule, foldid)
}


# ---------------------------------------------------------------------------- CoxBoost

#' Componentwise likelihood-based boosting (Binder & Schumacher 2008), steps by CV.
#'
#' With the CoxBoost package installed (and use_package TRUE): cv.CoxBoost (type
#' "verweij", the same folds) then CoxBoost with the optimal number of steps. Otherwise
#' coxboost.R's implementation of the same method. Selected = non-zero coefficients at
#' the chosen step; importance = |standardised coefficient|.
#' @param penalty NULL for CoxBoost's default, 9 * number of events of the data fitted.
select_coxboost <- function(df, time, event, features, seed, nfolds = NULL, maxstepno = 100,
                            penalty = NULL, foldid = NULL, use_package = TRUE) {
  d <- learner_data(df, time, event, features)
  if (is.null(nfolds)) nfolds <- default_nfolds(nrow(d$x))
  scale <- apply(d$x, 2, stats::sd)
  settings <- list(nfolds = nfolds, maxstepno = maxstepno,
                   penalty = if (is.null(penalty)) "9 * number of events" else penalty,
                   cv_type = "verweij")
  with_seed(seed, {
    folds <- learner_folds(d$event, nfolds, foldid)
    if (isTRUE(use_package) && requireNamespace("CoxBoost", quietly = TRUE)) {
      extra <- if (is.null(penalty)) list() else list(penalty = penalty)
      cv <- do.call(CoxBoost::cv.CoxBoost,
                    c(list(time = d$time, status = d$event, x = d$x, maxstepno = maxstepno,
                           K = length(unique(folds)), type = "verweij",
                           folds = split(seq_along(folds), folds)), extra))
      fit <- do.call(CoxBoost::CoxBoost,
                     c(list(time = d$time, status = d$event, x = d$x,
                            stepno = cv$optimal.step), extra))
      coefs <- stats::setNames(as.numeric(stats::coef(fit)), features)
      steps <- cv$optimal.step
      implementation <- package_version_string("CoxBoost")
    } else {
      cv <- coxboost_cv(d$x, d$time, d$event, folds, maxstepno, penalty)
      steps <- cv$optimal_step
      fit <- coxboost_path(d$x, d$time, d$event, steps, penalty)
      coefs <- fit$coefficients[steps + 1, ]
      implementation <- paste("studyrunner componentwise likelihood boosting",
                              "(Binder & Schumacher 2008)")
    }
  })
  importance <- importance_frame(features, abs(coefs * scale))
  learner_result(features[coefs != 0], importance, implementation, settings,
                 list(steps = steps, coefficients = importance_frame(features, coefs)))
}


# --------------------------------------------------------------------------------- GBM

#' Gradient boosting with the Cox partial likelihood (gbm, distribution "coxph").
#'
#' The number of trees is chosen by `iteration`: "cv" = minimum of gbm's cv.folds-fold
#' cross-validated error, "OOB" = gbm's out-of-bag estimate. Importance = relative
#' influence (summary.gbm) at that number of trees. Selected = relative influence > 0
#' (default) or, when `top_k` is given, the top_k features by relative influence (those
#' with influence > 0 only).
select_gbm <- function(df, time, event, features, seed, n_trees = 1000, shrinkage = 0.01,
                       interaction_depth = 3, n_minobsinnode = 10, bag_fraction = 0.5,
                       iteration = "cv", nfolds = NULL, top_k = NULL) {
  d <- learner_data(df, time, event, features)
  iteration <- match.arg(iteration, c("cv", "OOB"))
  if (iteration == "cv" && length(features) < 2) {
    # gbm 2.1.8's cross-validation subsets its predictors with drop = TRUE and stops with
    # "incorrect number of dimensions" for a single predictor.
    stop("gbm cross-validation needs at least 2 features (use iteration = 'OOB' for one)")
  }
  if (is.null(nfolds)) nfolds <- default_nfolds(nrow(d$x))
  data <- as.data.frame(d$x)
  names(data) <- paste0("v", seq_along(features))   # syntactic names for gbm's formula
  data$.time <- d$time
  data$.event <- d$event
  suppressPackageStartupMessages(requireNamespace("gbm", quietly = TRUE))
  with_seed(seed, {
    # gbm attaches itself and prints "CV: k" in its cross-validation: keep the console quiet.
    utils::capture.output(fit <- suppressPackageStartupMessages(gbm::gbm(
      survival::Surv(.time, .event) ~ ., data = data, distribution = "coxph",
      n.trees = n_trees, shrinkage = shrinkage, interaction.depth = interaction_depth,
      n.minobsinnode = n_minobsinnode, bag.fraction = bag_fraction,
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
                 list(n_trees = n_trees, shrinkage = shrinkage,
                      interaction_depth = interaction_depth, n_minobsinnode = n_minobsinnode,
                      bag_fraction = bag_fraction, iteration = iteration,
                      nfolds = if (iteration == "cv") nfolds else NULL,
                      rule = if (is.null(top_k)) "relative influence > 0"
                             else sprintf("top %d by relative influence (> 0)", top_k)),
                 list(best_iteration = unname(best)))
}


# --------------------------------------------------------------------------------- RSF

#' Random survival forest with permutation variable importance.
#'
#' randomForestSRC::rfsrc (log-rank splitting, importance "permute") when installed and
#' use_package is TRUE; otherwise ranger (survival_forest.R). Selected = importance > 0
#' (default) or the top_k by importance (those > 0 only).
select_rsf <- function(df, time, event, features, seed, num_trees = 1000, node_size = 5,
                       mtry = NULL, top_k = NULL, use_package = TRUE) {
  d <- learner_data(df, time, event, features)
  if (isTRUE(use_package) && requireNamespace("randomForestSRC", quietly = TRUE)) {
    data <- as.data.frame(d$x)
    names(data) <- paste0("v", seq_along(features))
    data$.time <- d$time
    data$.event <- d$event
    fit <- randomForestSRC::rfsrc(survival::Surv(.time, .event) ~ ., data = data,
                                  ntree = num_trees, nodesize = node_size, mtry = mtry,
                                  splitrule = "logrank", importance = "permute",
                                  seed = -abs(as.integer(seed)))
    vimp <- stats::setNames(unname(fit$importance[paste0("v", seq_along(features))]),
                            features)
    implementation <- paste(package_version_string("randomForestSRC"),
                            "random survival forest with permutation importance")
    oob_error <- utils::tail(fit$err.rate[!is.na(fit$err.rate)], 1)
  } else {
    forest <- ranger_survival_forest(d$x, d$time, d$event, seed, num_trees, node_size, mtry)
    vimp <- forest$importance
    implementation <- sprintf("ranger %s survival forest with permutation importance",
                              forest$version)
    oob_error <- forest$oob_error
  }
  importance <- importance_frame(features, vimp)
  selected <- features[vimp > 0]
  if (!is.null(top_k)) selected <- head(selected[order(-vimp[selected])], as.integer(top_k))
  learner_result(selected, importance, implementation,
                 list(num_trees = num_trees, node_size = node_size, mtry = mtry,
                      splitrule = "logrank",
                      rule = if (is.null(top_k)) "permutation importance > 0"
                             else sprintf("top %d by permutation importance (> 0)", top_k)),
                 list(oob_error = unname(oob_error)))
}


# ----------------------------------------------------------------------------- SuperPC

#' Supervised principal components (Bair & Tibshirani 2004): top features by score.
#'
#' The |univariate Cox score| threshold is chosen by CV over `n_threshold` values from 0 to
#' the `min_features`-th largest |score| (superpc when installed and use_package is TRUE,
#' else superpc.R); selected = the `n_top` features with the largest |score| among those
#' at or above the chosen threshold (seed 001: "SuperPC selects the Top 50 feature scores").
#' Importance = |standardised score statistic| on all the data.
select_superpc <- function(df, time, event, features, seed, nfolds = NULL, n_threshold = 20,
                           min_features = 5, n_top = 50, foldid = NULL, use_package = TRUE) {
  d <- learner_data(df, time, event, features)
  if (is.null(nfolds)) nfolds <- default_nfolds(nrow(d$x))
  with_seed(seed, {
    folds <- learner_folds(d$event, nfolds, foldid)
    if (isTRUE(use_package) && requireNamespace("superpc", quietly = TRUE)) {
      data <- list(x = t(d$x), y = d$time, censoring.status = d$event,
                   featurenames = features)
      fit <- superpc::superpc.train(data, type = "survival")
      scores <- stats::setNames(as.numeric(fit$feature.scores), features)
      cv <- superpc::superpc.cv(fit, data, n.threshold = n_threshold,
                                folds = split(seq_along(folds), folds), n.components = 1,
                                min.features = min(min_features, length(features)),
                                max.features = length(features))
      thresholds <- if (!is.null(cv$thresholds)) cv$thresholds else cv$threshold
      cv_statistic <- cv$scor[1, ]
      implementation <- package_version_string("superpc")
    } else {
      scores <- superpc_feature_scores(d$x, d$time, d$event)
      ranked <- sort(abs(scores), decreasing = TRUE)
      top <- ranked[min(min_features, length(ranked))]
      thresholds <- seq(0, top, length.out = n_threshold)
      cv_statistic <- superpc_cv(d$x, d$time, d$event, folds, thresholds)
      implementation <- "studyrunner supervised principal components (Bair & Tibshirani 2004)"
    }
  })
  if (all(is.na(cv_statistic))) stop("no threshold gave a cross-validated statistic")
  threshold <- thresholds[which.max(cv_statistic)]
  above <- features[!is.na(scores) & abs(scores) >= threshold]
  selected <- head(above[order(-abs(scores[above]))], as.integer(n_top))
  learner_result(selected, importance_frame(features, abs(scores)), implementation,
                 list(nfolds = length(unique(folds)), n_threshold = n_threshold,
                      min_features = min_features, n_top = n_top, n_components = 1),
                 list(threshold = threshold, n_above_threshold = length(above),
                      cv = data.frame(threshold = thresholds, statistic = cv_statistic),
                      scores = importance_frame(features, scores)))
}


# ------------------------------------------------------------------------------- runner

#' Run one learner; any error becomes data, never stops the caller.
#'
#' @param name one of LEARNERS.
#' @param settings named list of extra arguments of select_<name> (unknown names are an
#'   error, recorded like any other).
#' @return list(name, ok, features, importance, implementation, settings, details,
#'   error (NULL when ok), warnings (character)).
run_learner <- function(name, df, time, event, features, seed, settings = list()) {
  seen <- character(0)
  settings <- as.list(settings)
  result <- tryCatch(
    withCallingHandlers({
      if (!(name %in% LEARNERS)) {
        stop(sprintf("unknown learner '%s' (known: %s)", name, paste(LEARNERS, collapse = ", ")))
      }
      fn <- get(paste0("select_", name), mode = "function")
      unknown <- setdiff(names(settings), setdiff(names(formals(fn)), c("df", "time", "event",
                                                                        "features", "seed")))
      if (length(unknown) > 0) {
        stop(sprintf("unknown setting(s) for learner '%s': %s", name,
                     paste(unknown, collapse = ", ")))
      }
      do.call(fn, c(list(df = df, time = time, event = event, features = features,
                         seed = seed), settings))
    }, warning = function(w) {
      seen <<- c(seen, conditionMessage(w))
      invokeRestart("muffleWarning")
    }),
    error = function(e) structure(list(message = conditionMessage(e)), class = "learner_error"))
  if (inherits(result, "learner_error")) {
    return(list(name = name, ok = FALSE, features = list(), importance = NULL,
                implementation = NULL, settings = settings, details = NULL,
                error = result$message, warnings = as.list(unique(seen))))
  }
  c(list(name = name, ok = TRUE), result,
    list(error = NULL, warnings = as.list(unique(seen))))
}
